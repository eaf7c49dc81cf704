package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// streamLayer carries Raft's NetworkTransport over the node's own
// listener and dialler, with TLS on top when configured. The listener's
// TLS config decides whom it lets in (gust's requires a node
// certificate); the dialler verifies the server against the same CA, by
// the host of the Raft address it dials.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	dial      func(ctx context.Context, addr string) (net.Conn, error)
	dialTLS   *tls.Config
}

func (s *streamLayer) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *streamLayer) Close() error              { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr            { return s.advertise }

// Dial completes any handshake within timeout, so a peer that is up but
// refuses us fails here rather than on the first RPC.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := s.dial(ctx, string(address))
	if err != nil || s.dialTLS == nil {
		return conn, err
	}
	cfg := s.dialTLS.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			conn.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// newTransport is NewTCPTransport generalised: the listener and dialler
// may be the node's, and TLS may run over them; same pool and timeout.
func newTransport(cfg Config, advertise *net.TCPAddr, log hclog.Logger) (*raft.NetworkTransport, error) {
	if (cfg.ListenTLS == nil) != (cfg.DialTLS == nil) {
		return nil, fmt.Errorf("raft TLS needs both a listener and a dialer config")
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return nil, err
		}
	}
	if cfg.ListenTLS != nil {
		ln = tls.NewListener(ln, cfg.ListenTLS)
	}
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	var adv net.Addr = advertise
	if advertise == nil || advertise.IP.IsUnspecified() || advertise.Port == 0 {
		adv = ln.Addr()
	}
	layer := &streamLayer{ln: ln, advertise: adv, dial: dial, dialTLS: cfg.DialTLS}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 4, Timeout: 5 * time.Second, Logger: log,
	}), nil
}
