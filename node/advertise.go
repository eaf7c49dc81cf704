package node

import (
	"fmt"
	"net"
)

// advertised returns the address other nodes dial for a listener bound
// at bound (host:port, the port as bound): host with bound's port when
// host is set (--advertise), else bound itself. A listener on every
// interface with no host to advertise is refused, since the others would
// dial 0.0.0.0, which is each of them.
func advertised(flag, bound, host string) (string, error) {
	h, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("--%s %q: %w", flag, bound, err)
	}
	if host != "" {
		return net.JoinHostPort(host, port), nil
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("--%s %s listens on every interface, which other nodes cannot dial: "+
			"give --advertise HOST, the address they reach this node at, or listen on that address", flag, bound)
	}
	return bound, nil
}
