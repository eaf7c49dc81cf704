package raftstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// tlsStreamLayer carries Raft's NetworkTransport over TLS. The listener's
// config decides whom it lets in (gust's requires a node certificate); the
// dialer verifies the server against the same CA, by the host of the
// Raft address it dials.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	dial      *tls.Config
}

func (s *tlsStreamLayer) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *tlsStreamLayer) Close() error              { return s.ln.Close() }
func (s *tlsStreamLayer) Addr() net.Addr            { return s.advertise }

// Dial completes the handshake within timeout, so a peer that is up but
// refuses our certificate fails here rather than on the first RPC.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	cfg := s.dial.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), cfg)
}

// newTLSTransport is NewTCPTransport's TLS twin: same pool and timeout.
func newTLSTransport(bind string, advertise *net.TCPAddr, listen, dial *tls.Config, log hclog.Logger) (*raft.NetworkTransport, error) {
	if listen == nil || dial == nil {
		return nil, fmt.Errorf("raft TLS needs both a listener and a dialer config")
	}
	ln, err := tls.Listen("tcp", bind, listen)
	if err != nil {
		return nil, err
	}
	var adv net.Addr = advertise
	if advertise == nil || advertise.IP.IsUnspecified() || advertise.Port == 0 {
		adv = ln.Addr()
	}
	layer := &tlsStreamLayer{ln: ln, advertise: adv, dial: dial}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 4, Timeout: 5 * time.Second, Logger: log,
	}), nil
}
