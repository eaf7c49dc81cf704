package gossip

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// errStaleSelf means a peer still has this node's name at an older address
// (the node restarted elsewhere). memberlist refuses the new address until
// the old one is dead, so the join is repeated until the peer has caught up.
var errStaleSelf = errors.New("gossip: peers still list this node at its old address")

// selfView collects what peers said about this node during one Join.
type selfView struct{ stale bool }

// failedMember is a dead member still worth reconnecting to.
type failedMember struct {
	addr  string
	since time.Time
}

// joinLoop joins through seeds with backoff until one answers, then keeps
// the cluster whole, which memberlist alone does not:
//   - it never contacts a member again once it is dead, so a seed that
//     crashed and came back without Join addresses would stay on its own
//     (reconnect), as would this node if every peer had failed;
//   - a member restarted at the same address is revived by its refutation
//     reaching us, yet may itself know nobody until an anti-entropy
//     push/pull picks it (every 30 s by default), so we push/pull with it
//     as soon as it is back (pushReturned).
func (n *Node) joinLoop(seeds []string, first chan<- error) {
	if len(seeds) > 0 {
		backoff := n.tm.joinMin
		targets := seeds
		for failures := 0; ; failures++ {
			err := n.joinOnce(targets)
			if first != nil {
				first <- err
				first = nil
			}
			if err == nil {
				n.log.Info("joined cluster", "via", seeds)
				break
			}
			switch {
			case errors.Is(err, ErrShutdown):
				return
			case errors.Is(err, ErrNameConflict):
				n.log.Error("not joining: name conflict", "err", err)
				return
			case errors.Is(err, errStaleSelf):
				// Every member must take the new address, not just the
				// seeds: one that still suspects the old address refuses
				// it, and would otherwise wait for anti-entropy.
				targets = append(slices.Clone(seeds), n.peerAddrs()...)
				n.log.Debug("rejoining until peers drop this node's old address")
			case failures == 0:
				n.log.Info("join addresses not answering yet; retrying", "join", seeds, "err", err)
			case failures%20 == 0:
				n.log.Warn("still unable to join", "join", seeds, "attempts", failures+1, "err", err)
			}
			if !n.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, n.tm.joinMax)
		}
	}
	t := time.NewTicker(n.tm.reconnectEvery)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			n.reconnect(seeds)
		case <-n.resync:
			n.pushReturned()
		}
	}
}

// pushReturned runs a push/pull with each member that came back, so it
// learns the whole cluster at once.
func (n *Node) pushReturned() {
	n.mu.Lock()
	addrs := make([]string, 0, len(n.returned))
	for name, a := range n.returned {
		addrs = append(addrs, a)
		delete(n.returned, name)
	}
	n.mu.Unlock()
	for _, a := range addrs {
		if n.isStopped() {
			return
		}
		if _, err := n.ml().Join([]string{a}); err != nil {
			n.log.Debug("push/pull with returned member failed", "addr", a, "err", err)
		}
	}
}

// peerAddrs returns the addresses of the other members that are up.
func (n *Node) peerAddrs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name, m := range n.members {
		if name != n.cfg.Name && m.Status.up() {
			out = append(out, m.Addr)
		}
	}
	return out
}

// joinOnce runs one memberlist Join (a push/pull with each address). It
// fails on a name conflict, when no address answered, or when a peer still
// lists this node at another address.
func (n *Node) joinOnce(addrs []string) error {
	if n.isStopped() {
		return ErrShutdown
	}
	view := &selfView{}
	n.mu.Lock()
	n.joinView = view
	n.mu.Unlock()
	ok, err := n.ml().Join(addrs)
	n.mu.Lock()
	n.joinView = nil
	conflict, stale := n.conflict, view.stale
	n.mu.Unlock()
	switch {
	case conflict != nil:
		return conflict
	case ok == 0 && err == nil:
		return errors.New("gossip: no join address answered")
	case ok == 0:
		return err
	case stale:
		return errStaleSelf
	}
	return nil
}

// reconnect retries members that died recently and, if no other member is
// up, the Join addresses.
func (n *Node) reconnect(seeds []string) {
	now := time.Now()
	var addrs []string
	alone := true
	n.mu.Lock()
	for name, f := range n.failed {
		if now.Sub(f.since) > n.tm.reconnectFor {
			delete(n.failed, name)
			continue
		}
		addrs = append(addrs, f.addr)
	}
	for name, m := range n.members {
		if name != n.cfg.Name && m.Status.up() {
			alone = false
			break
		}
	}
	n.mu.Unlock()

	for _, a := range addrs {
		if n.isStopped() {
			return
		}
		// A failed member that is back merges views with us here; one
		// still down costs a refused connection.
		if _, err := n.ml().Join([]string{a}); err == nil {
			n.log.Info("reached a member seen dead", "addr", a)
			n.kick()
		}
	}
	if alone && len(seeds) > 0 {
		switch err := n.joinOnce(seeds); {
		case err == nil:
			n.log.Info("rejoined cluster", "via", seeds)
		case errors.Is(err, ErrNameConflict):
			n.log.Error("name conflict", "err", err)
		}
	}
}

// onMerge sees every join push/pull, ours and our peers', before memberlist
// merges it. It is where a duplicate name is caught: a peer listing our name
// at another address that answers pings addressed to our name means a second
// live process uses it, and the merge is refused. Anything else is a stale
// entry from a previous run of this node, which memberlist sorts out once
// the old address is dead; while our own Join runs it makes joinLoop retry.
func (n *Node) onMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if p.Name != n.cfg.Name {
			continue
		}
		addr := hostPort(p.Addr, p.Port)
		if n.isSelfAddr(addr) || p.State == memberlist.StateLeft {
			// A left member's name may move at once.
			continue
		}
		if p.State != memberlist.StateDead && n.answersAs(addr) {
			err := fmt.Errorf("%w: %q answers at %s too (this node is at %s)",
				ErrNameConflict, n.cfg.Name, addr, n.self)
			n.mu.Lock()
			if n.joinView != nil && n.conflict == nil {
				// We are the newcomer.
				n.conflict = err
			}
			n.mu.Unlock()
			return err
		}
		n.mu.Lock()
		if n.joinView != nil {
			n.joinView.stale = true
		}
		n.mu.Unlock()
	}
	return nil
}

// onConflict runs when memberlist refuses an alive message for a name it
// has at another address. memberlist already logs it. For our own name it
// is usually a stale entry from a previous run of this node, or a newcomer
// that will find the conflict itself and stop (its pings carry its alive
// message here); a duplicate that still answers after a grace period is
// recorded for Err. Checked off memberlist's lock, which it is called with.
func (n *Node) onConflict(existing, other *memberlist.Node) {
	if existing.Name != n.cfg.Name {
		return
	}
	addr := hostPort(other.Addr, other.Port)
	if n.isSelfAddr(addr) {
		return
	}
	n.mu.Lock()
	if n.checking || n.conflict != nil {
		n.mu.Unlock()
		return
	}
	n.checking = true
	n.mu.Unlock()
	go func() {
		dup := !n.isStopped() && n.answersAs(addr) &&
			n.sleep(n.tm.conflictGrace) && n.answersAs(addr)
		n.mu.Lock()
		n.checking = false
		if dup && n.conflict == nil {
			n.conflict = fmt.Errorf("%w: %q answers at %s too (this node is at %s)",
				ErrNameConflict, n.cfg.Name, addr, n.self)
			n.log.Error("name conflict", "err", n.conflict)
		}
		n.mu.Unlock()
	}()
}

// answersAs reports whether a live memberlist at addr calls itself by our
// name: memberlist only acks a ping whose target name is its own. A crashed
// previous run of this node does not answer, a node now using that address
// under another name does not either.
func (n *Node) answersAs(addr string) bool {
	ml := n.ml()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if ml == nil || err != nil {
		// Not started yet: a duplicate will be caught by its own join.
		return false
	}
	for range 2 { // UDP: one lost packet must not hide a duplicate
		if _, err := ml.Ping(n.cfg.Name, ua); err == nil {
			return true
		}
	}
	return false
}

// isSelfAddr reports whether addr (IP:port) reaches this node.
func (n *Node) isSelfAddr(addr string) bool {
	if addr == n.self {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	selfHost, selfPort, _ := net.SplitHostPort(n.self)
	ip := net.ParseIP(host)
	if port != selfPort || ip == nil {
		return false
	}
	if ip.Equal(net.ParseIP(selfHost)) {
		return true
	}
	return n.allIfs && isLocalIP(ip)
}

func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// seeds drops blank entries and this node's own address from the Join
// list, so one static list can be given to every node: a push/pull with
// itself would only feed the node its own view back.
func (n *Node) seeds(join []string) []string {
	var out []string
	for _, a := range join {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		hp := a
		if i := strings.LastIndex(a, "/"); i >= 0 { // memberlist's name/host:port form
			if a[:i] == n.cfg.Name {
				continue
			}
			hp = a[i+1:]
		}
		if host, port, err := net.SplitHostPort(hp); err == nil {
			if net.ParseIP(host) == nil {
				if ips, err := net.LookupIP(host); err == nil && len(ips) > 0 {
					host = ips[0].String()
				}
			}
			if n.isSelfAddr(net.JoinHostPort(host, port)) {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func (n *Node) isStopped() bool {
	n.life.RLock()
	defer n.life.RUnlock()
	return n.stopped
}

// sleep waits d or until shutdown; false means shut down.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.done:
		return false
	case <-t.C:
		return true
	}
}
