package nodeauth

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func serveMux(t *testing.T, s Secret, protos ...Proto) *Mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(ln, s, nil, protos...)
	go m.Serve()
	t.Cleanup(func() { m.Close() })
	return m
}

// echo answers each connection on l with what it reads, once.
func echo(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err == nil {
				c.Write(buf)
			}
		}()
	}
}

func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	return string(buf)
}

func TestHandshakeRoutesByProtocol(t *testing.T) {
	secret := Secret("0123456789abcdef0123")
	m := serveMux(t, secret, Raft, GRPC)
	go echo(m.Listener(Raft))
	grpcLn := m.Listener(GRPC)
	got := make(chan net.Conn, 1)
	go func() {
		c, err := grpcLn.Accept()
		if err == nil {
			got <- c
		}
	}()
	ctx := context.Background()
	c, err := Dial(ctx, m.Addr().String(), secret, Raft)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := roundTrip(t, c, "hello"); s != "hello" {
		t.Fatalf("raft share echoed %q", s)
	}
	g, err := Dial(ctx, m.Addr().String(), secret, GRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	select {
	case sc := <-got:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the gRPC share never got its connection")
	}
}

func TestWrongSecretRefusedBothWays(t *testing.T) {
	m := serveMux(t, Secret("the-cluster-secret-1"), GRPC)
	go echo(m.Listener(GRPC))
	for _, s := range []Secret{Secret("another-secret-0000"), nil} {
		_, err := Dial(context.Background(), m.Addr().String(), s, GRPC)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("dial with secret %q: %v, want ErrRefused", s, err)
		}
	}
	// A dialler that holds the secret refuses a port that does not: an
	// impostor on a node's address learns nothing and gets nothing.
	open := serveMux(t, nil, GRPC)
	go echo(open.Listener(GRPC))
	if _, err := Dial(context.Background(), open.Addr().String(), Secret("the-cluster-secret-1"), GRPC); !errors.Is(err, ErrRefused) {
		t.Fatalf("dial to a port without the secret: %v, want ErrRefused", err)
	}
}

func TestRawBytesNeverReachAShare(t *testing.T) {
	m := serveMux(t, Secret("the-cluster-secret-1"), Raft, GRPC)
	accepted := make(chan struct{}, 2)
	for _, p := range []Proto{Raft, GRPC} {
		l := m.Listener(p)
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
				accepted <- struct{}{}
			}
		}()
	}
	// What an attacker without the secret sends: gRPC's preface, or a
	// Raft AppendEntries byte, straight away.
	for _, raw := range []string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "\x00\x00\x00\x00"} {
		c, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(raw + string(make([]byte, 80))))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until the mux hangs up
		c.Close()
	}
	select {
	case <-accepted:
		t.Fatal("a connection without the handshake reached a protocol")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestClosingOneShareKeepsTheOther(t *testing.T) {
	secret := Secret("0123456789abcdef0123")
	m := serveMux(t, secret, Raft, GRPC)
	m.Listener(GRPC).Close()
	go echo(m.Listener(Raft))
	c, err := Dial(context.Background(), m.Addr().String(), secret, Raft)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := roundTrip(t, c, "still"); s != "still" {
		t.Fatalf("echoed %q", s)
	}
	m.Listener(Raft).Close()
	if _, err := net.DialTimeout("tcp", m.Addr().String(), time.Second); err == nil {
		// The port may take a moment to refuse; Accept must fail at once.
		if _, err := m.Listener(Raft).Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after close: %v", err)
		}
	}
}

func TestShortSecretRefused(t *testing.T) {
	if err := Secret("short").Check(); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
	if err := Secret(nil).Check(); err != nil {
		t.Fatalf("no secret: %v", err)
	}
}
