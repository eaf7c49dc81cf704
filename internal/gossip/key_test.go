package gossip

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestParseKey(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ParseKey(k); err != nil || len(b) != 32 {
		t.Fatalf("NewKey's key: %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParseKey(bad); err == nil {
			t.Fatalf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := ParseKey("AAAAAAAAAAAAAAAAAAAAAA=="); err != nil {
		t.Fatalf("16-byte key: %v", err)
	}
	if _, err := ParseKey("AAAAAAAA"); !errors.Is(err, ErrKeySize) {
		t.Fatalf("6-byte key: %v, want ErrKeySize", err)
	}
}

// With a key, members with the key see each other with real states (the
// in-process state read speaks encrypted too); a node with another key or
// none is refused and never becomes a member.
func TestEncryptedGossip(t *testing.T) {
	key, _ := ParseKey("c2VjcmV0LWtleS0xMjM0NTY3ODkwYWJjZGVmZ2hpams=")
	other, _ := ParseKey("b3RoZXIta2V5LTEyMzQ1Njc4OTBhYmNkZWZnaGlqa2w=")
	var alog lockedBuffer
	acfg := fastConfig("a", "127.0.0.1:0", coordMeta)
	acfg.SecretKey = key
	acfg.Logger = slog.New(slog.NewTextHandler(&alog, nil))
	a := start(t, acfg)
	with := func(name string, k []byte) Config {
		c := fastConfig(name, "127.0.0.1:0", w1Meta, a.LocalAddr())
		c.SecretKey = k
		return c
	}
	b := start(t, with("b", key))
	wrong := start(t, with("wrong", other))
	none := start(t, with("none", nil))
	// a logs each refused stream; once both are there, both joins failed.
	eventually(t, 10*time.Second, func() string {
		s := alog.String()
		if !strings.Contains(s, "no installed keys could decrypt") || !strings.Contains(s, "not encrypted") {
			return "a has not refused both intruders yet:\n" + s
		}
		return ""
	})
	// A member with the key joining after them is seen: gossip went round.
	late := start(t, with("late", key))
	eventually(t, 5*time.Second, func() string {
		for _, n := range []*Node{a, b, late} {
			if why := sees(n, StatusAlive, map[string]Meta{"a": coordMeta, "b": w1Meta, "late": w1Meta}); why != "" {
				return why
			}
		}
		return ""
	})
	for _, n := range []*Node{a, b, late} {
		for _, intruder := range []string{"wrong", "none"} {
			if _, ok := memberOf(n, intruder); ok {
				t.Fatalf("%s knows %s: %v", n.cfg.Name, intruder, n.Members())
			}
		}
	}
	for _, n := range []*Node{wrong, none} {
		if got := len(n.Members()); got != 1 {
			t.Fatalf("%s has %d members: %v", n.cfg.Name, got, n.Members())
		}
	}
}
