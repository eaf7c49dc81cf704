package egress

// Abandon closes the Network's sockets and removes nothing, as a killed
// worker would.
func (n *Network) Abandon() {
	n.life.Lock()
	defer n.life.Unlock()
	n.closed = true
	n.closeSockets()
}
