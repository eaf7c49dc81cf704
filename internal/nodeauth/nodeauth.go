package nodeauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Proto names what a connection carries once the handshake is done.
type Proto byte

const (
	// Raft is hashicorp/raft's NetworkTransport.
	Raft Proto = 'r'
	// GRPC is HTTP/2 for the node-internal gRPC services.
	GRPC Proto = 'g'
)

// MinSecretLen is the shortest cluster secret accepted: guessing it must
// be out of reach (`gustd keygen` makes 32 random bytes).
const MinSecretLen = 16

// ErrRefused is a handshake the other end refused or could not prove:
// it holds another cluster secret, or none where one is needed.
var ErrRefused = errors.New("node handshake refused: the nodes do not share one cluster secret (give every node the same --cluster-secret)")

const (
	magic     = "GUSTNODE1"
	nonceLen  = 32
	macLen    = sha256.Size
	statusOK  = 0
	statusBad = 1
	// Timeout bounds a handshake: a connection that stalls in it is
	// closed rather than held.
	Timeout = 10 * time.Second
	// maxPending bounds handshakes under way at once per listener, so a
	// flood of half-open connections cannot pile up goroutines.
	maxPending = 256
)

// Secret is the cluster secret. The zero Secret is "none": both ends
// still run the handshake (one wire format), which then proves nothing.
type Secret []byte

// Check refuses a secret too short to be one.
func (s Secret) Check() error {
	if len(s) > 0 && len(s) < MinSecretLen {
		return fmt.Errorf("cluster secret is %d bytes; at least %d are needed (gustd keygen makes one)", len(s), MinSecretLen)
	}
	return nil
}

func (s Secret) mac(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, s)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Dial connects to a node-internal port at addr, runs the handshake as the
// dialler and announces p. The connection is ready for p's own traffic
// (TLS, if used, starts on it next).
func Dial(ctx context.Context, addr string, s Secret, p Proto) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	if err := clientHandshake(conn, s, p); err != nil {
		conn.Close()
		return nil, fmt.Errorf("node handshake with %s: %w", addr, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// clientHandshake: read the server's nonce, answer with ours, the protocol
// and our proof, then check the server's status and its proof.
func clientHandshake(conn net.Conn, s Secret, p Proto) error {
	hello := make([]byte, len(magic)+nonceLen)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return fmt.Errorf("read greeting (is this a gust node-internal port?): %w", err)
	}
	if !bytes.Equal(hello[:len(magic)], []byte(magic)) {
		return errors.New("not a gust node-internal port")
	}
	serverNonce := hello[len(magic):]
	ours := make([]byte, nonceLen)
	rand.Read(ours)
	msg := append([]byte{byte(p)}, ours...)
	msg = append(msg, s.mac([]byte("client"), serverNonce, ours, []byte{byte(p)})...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	reply := make([]byte, 1+macLen)
	if _, err := io.ReadFull(conn, reply[:1]); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if reply[0] != statusOK {
		return ErrRefused
	}
	if _, err := io.ReadFull(conn, reply[1:]); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if !hmac.Equal(reply[1:], s.mac([]byte("server"), ours, serverNonce)) {
		return ErrRefused
	}
	return nil
}

// serverHandshake greets, checks the dialler's proof and proves itself.
func serverHandshake(conn net.Conn, s Secret) (Proto, error) {
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	if _, err := conn.Write(append([]byte(magic), nonce...)); err != nil {
		return 0, err
	}
	msg := make([]byte, 1+nonceLen+macLen)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return 0, err
	}
	p, theirs, proof := Proto(msg[0]), msg[1:1+nonceLen], msg[1+nonceLen:]
	if !hmac.Equal(proof, s.mac([]byte("client"), nonce, theirs, []byte{byte(p)})) {
		conn.Write([]byte{statusBad})
		return 0, ErrRefused
	}
	reply := append([]byte{statusOK}, s.mac([]byte("server"), theirs, nonce)...)
	if _, err := conn.Write(reply); err != nil {
		return 0, err
	}
	return p, nil
}

// Mux accepts on a node-internal port, runs the handshake on each
// connection and hands it to the listener of the protocol it announced.
// Connections that fail the handshake, or announce a protocol nobody
// listens for, are closed.
type Mux struct {
	ln     net.Listener
	secret Secret
	log    *slog.Logger
	subs   map[Proto]*listener
	slots  chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewMux serves the handshake on ln for the protocols given; Listener
// returns each one's share. Serve must run for anything to be accepted.
func NewMux(ln net.Listener, s Secret, log *slog.Logger, protos ...Proto) *Mux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mux{ln: ln, secret: s, log: log, subs: map[Proto]*listener{}, slots: make(chan struct{}, maxPending), done: make(chan struct{})}
	for _, p := range protos {
		m.subs[p] = &listener{m: m, conns: make(chan net.Conn), closed: make(chan struct{})}
	}
	return m
}

// Listen is a Mux with one protocol, serving at once: what a worker's
// gRPC port needs.
func Listen(ln net.Listener, s Secret, log *slog.Logger, p Proto) net.Listener {
	m := NewMux(ln, s, log, p)
	go m.Serve()
	return m.Listener(p)
}

// Listener is p's share of the port.
func (m *Mux) Listener(p Proto) net.Listener { return m.subs[p] }

// Addr is the port's address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Serve accepts until the port is closed.
func (m *Mux) Serve() error {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				m.Close()
				return err
			}
			// Out of descriptors, say: wait rather than spin or give up.
			m.log.Warn("node-internal port: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case m.slots <- struct{}{}:
			go m.handshake(conn)
		default:
			conn.Close() // too many handshakes under way
		}
	}
}

func (m *Mux) handshake(conn net.Conn) {
	defer func() { <-m.slots }()
	conn.SetDeadline(time.Now().Add(Timeout))
	p, err := serverHandshake(conn, m.secret)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			m.log.Warn("node-internal connection refused: it did not prove the cluster secret", "remote", conn.RemoteAddr())
		}
		conn.Close()
		return
	}
	sub, ok := m.subs[p]
	if !ok {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	select {
	case sub.conns <- conn:
	case <-sub.closed:
		conn.Close()
	case <-m.done:
		conn.Close()
	}
}

// Close closes the port and every share of it. Closing a share alone
// leaves the others serving; the port closes with the last of them.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// listener is one protocol's share of a Mux.
type listener struct {
	m      *Mux
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	for _, sub := range l.m.subs {
		select {
		case <-sub.closed:
		default:
			return nil // another share still serves
		}
	}
	return l.m.Close()
}

func (l *listener) Addr() net.Addr { return l.m.ln.Addr() }

// Dialer is Dial as a dial function (grpc.WithContextDialer's shape).
func Dialer(s Secret, p Proto) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) { return Dial(ctx, addr, s, p) }
}
