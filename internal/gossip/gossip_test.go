package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every test runs real memberlists on 127.0.0.1 with Fast timings and waits
// for conditions by polling with a deadline, never by sleeping.

var (
	coordMeta = Meta{Role: RoleCoordinator, GRPC: "127.0.0.1:9001", Raft: "127.0.0.1:9002", HTTP: "127.0.0.1:9000"}
	w1Meta    = Meta{Role: RoleWorker, GRPC: "127.0.0.1:9101", MemoryMB: 2048}
	w2Meta    = Meta{Role: RoleWorker, GRPC: "127.0.0.1:9201", MemoryMB: 4096}
)

// testLogger shows memberlist's warnings only under -v, and everything with
// GOSSIP_TEST_DEBUG=1; a t.Log based logger would panic when memberlist
// goroutines log after the test ends.
func testLogger() *slog.Logger {
	if os.Getenv("GOSSIP_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func fastConfig(name, bind string, meta Meta, join ...string) Config {
	return Config{Name: name, BindAddr: bind, Meta: meta, Join: join, Fast: true, Logger: testLogger()}
}

func start(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// eventually polls cond every 20 ms until it returns "" or the deadline
// passes, then fails with cond's last explanation.
func eventually(t *testing.T, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func memberOf(n *Node, name string) (Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// sees checks that n sees every want member with that status and meta.
func sees(n *Node, status Status, want map[string]Meta) string {
	for name, meta := range want {
		m, ok := memberOf(n, name)
		if !ok {
			return fmt.Sprintf("%s does not know %s: %v", n.cfg.Name, name, n.Members())
		}
		if m.Status != status || m.Meta != meta {
			return fmt.Sprintf("%s sees %+v, want status %s meta %+v", n.cfg.Name, m, status, meta)
		}
	}
	return ""
}

func statusIn(n *Node, name string, statuses ...Status) string {
	m, ok := memberOf(n, name)
	if !ok {
		return fmt.Sprintf("%s does not know %s", n.cfg.Name, name)
	}
	for _, s := range statuses {
		if m.Status == s {
			return ""
		}
	}
	return fmt.Sprintf("%s sees %s as %s, want %v", n.cfg.Name, name, m.Status, statuses)
}

// freeAddr returns a loopback address whose port is free for TCP and UDP
// right now, for a node that must be joined before it exists.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// recorder collects events; it is safe to read while events arrive.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) has(kind EventKind, name string, statuses ...Status) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.evs {
		if e.Kind != kind || e.Member.Name != name {
			continue
		}
		for _, s := range statuses {
			if e.Member.Status == s {
				return true
			}
		}
	}
	return false
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.evs {
		fmt.Fprintf(&b, "%s %s %s; ", e.Kind, e.Member.Name, e.Member.Status)
	}
	return b.String()
}

// cluster starts c1 (coordinator) and w1, w2 (workers) joining through c1.
func cluster(t *testing.T, rec *recorder) (c1, w1, w2 *Node) {
	t.Helper()
	cfg := fastConfig("c1", "127.0.0.1:0", coordMeta)
	if rec != nil {
		cfg.Events = rec.add
	}
	c1 = start(t, cfg)
	w1 = start(t, fastConfig("w1", "127.0.0.1:0", w1Meta, c1.LocalAddr()))
	w2 = start(t, fastConfig("w2", "127.0.0.1:0", w2Meta, c1.LocalAddr()))
	all := map[string]Meta{"c1": coordMeta, "w1": w1Meta, "w2": w2Meta}
	eventually(t, 5*time.Second, func() string {
		for _, n := range []*Node{c1, w1, w2} {
			if why := sees(n, StatusAlive, all); why != "" {
				return why
			}
			if got := len(n.Members()); got != 3 {
				return fmt.Sprintf("%s has %d members", n.cfg.Name, got)
			}
		}
		return ""
	})
	return c1, w1, w2
}

func TestThreeNodesJoin(t *testing.T) {
	rec := &recorder{}
	began := time.Now()
	c1, w1, _ := cluster(t, rec)
	t.Logf("3 nodes converged in %v", time.Since(began))

	if _, port, _ := net.SplitHostPort(c1.LocalAddr()); port == "0" || port == "" {
		t.Fatalf("LocalAddr = %q, want the bound port", c1.LocalAddr())
	}
	m, _ := memberOf(c1, "w1")
	if m.Addr != w1.LocalAddr() {
		t.Fatalf("c1 sees w1 at %s, w1 is at %s", m.Addr, w1.LocalAddr())
	}
	eventually(t, 2*time.Second, func() string {
		for _, name := range []string{"c1", "w1", "w2"} {
			if !rec.has(EventJoin, name, StatusAlive) {
				return "no join event for " + name + ": " + rec.String()
			}
		}
		return ""
	})
}

func TestJoinBeforeTargetIsUp(t *testing.T) {
	target := freeAddr(t)
	began := time.Now()
	b := start(t, fastConfig("b", "127.0.0.1:0", w1Meta, target))
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("Start blocked %v on an unreachable join address", d)
	}
	a := start(t, fastConfig("a", target, coordMeta))
	eventually(t, 5*time.Second, func() string {
		if why := sees(a, StatusAlive, map[string]Meta{"a": coordMeta, "b": w1Meta}); why != "" {
			return why
		}
		return sees(b, StatusAlive, map[string]Meta{"a": coordMeta, "b": w1Meta})
	})
	t.Logf("found each other %v after the target started", time.Since(began))
}

func TestUpdateMetaPropagates(t *testing.T) {
	rec := &recorder{}
	c1, w1, w2 := cluster(t, rec)
	next := w1Meta
	next.MemoryMB = 512
	if err := w1.UpdateMeta(next); err != nil {
		t.Fatal(err)
	}
	want := map[string]Meta{"w1": next}
	eventually(t, 3*time.Second, func() string {
		for _, n := range []*Node{c1, w1, w2} {
			if why := sees(n, StatusAlive, want); why != "" {
				return why
			}
		}
		return ""
	})
	eventually(t, 2*time.Second, func() string {
		if !rec.has(EventUpdate, "w1", StatusAlive) {
			return "no update event: " + rec.String()
		}
		return ""
	})
}

func TestKilledNodeDetected(t *testing.T) {
	rec := &recorder{}
	c1, w1, w2 := cluster(t, rec)
	killed := time.Now()
	if err := w2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	detected := map[string]time.Duration{}
	eventually(t, 3*time.Second, func() string {
		for _, n := range []*Node{c1, w1} {
			if _, ok := detected[n.cfg.Name]; ok {
				continue
			}
			if why := statusIn(n, "w2", StatusSuspect, StatusDead); why != "" {
				return why
			}
			detected[n.cfg.Name] = time.Since(killed)
		}
		return ""
	})
	t.Logf("w2 seen suspect or dead after %v", detected)

	// The suspect transition is reported as an Update, death as a Leave.
	eventually(t, 3*time.Second, func() string {
		if !rec.has(EventUpdate, "w2", StatusSuspect) && !rec.has(EventLeave, "w2", StatusDead) {
			return "no event for w2: " + rec.String()
		}
		return ""
	})
	eventually(t, 5*time.Second, func() string {
		if why := statusIn(c1, "w2", StatusDead); why != "" {
			return why
		}
		if !rec.has(EventLeave, "w2", StatusDead) {
			return "no leave event: " + rec.String()
		}
		return ""
	})
	t.Logf("w2 dead at c1 after %v; events: %s", time.Since(killed), rec)
	if why := sees(c1, StatusAlive, map[string]Meta{"c1": coordMeta, "w1": w1Meta}); why != "" {
		t.Fatal(why)
	}
}

func TestLeaveSeenAsLeft(t *testing.T) {
	rec := &recorder{}
	c1, w1, w2 := cluster(t, rec)
	if err := w1.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() string {
		for _, n := range []*Node{c1, w2} {
			if why := statusIn(n, "w1", StatusLeft); why != "" {
				return why
			}
		}
		if !rec.has(EventLeave, "w1", StatusLeft) {
			return "no leave event: " + rec.String()
		}
		return ""
	})
	if err := w1.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("second Leave = %v, want ErrShutdown", err)
	}
	if err := w1.UpdateMeta(w1Meta); !errors.Is(err, ErrShutdown) {
		t.Fatalf("UpdateMeta after Leave = %v, want ErrShutdown", err)
	}
}

func TestRestartSameNameSameAddress(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(fmt.Sprintf("leave=%v", graceful), func(t *testing.T) {
			rec := &recorder{}
			c1, w1, w2 := cluster(t, rec)
			addr := w1.LocalAddr()
			gone := StatusDead
			if graceful {
				gone = StatusLeft
				if err := w1.Leave(2 * time.Second); err != nil {
					t.Fatal(err)
				}
			} else if err := w1.Shutdown(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, func() string {
				for _, n := range []*Node{c1, w2} {
					if why := statusIn(n, "w1", gone); why != "" {
						return why
					}
				}
				return ""
			})

			// The new process brings new meta, which must win over the
			// remembered one.
			next := w1Meta
			next.MemoryMB = 1024
			began := time.Now()
			again := start(t, fastConfig("w1", addr, next, c1.LocalAddr()))
			want := map[string]Meta{"c1": coordMeta, "w1": next, "w2": w2Meta}
			// Usually well under a second; a loaded CI machine once took
			// over 5 s for a member that had left to be seen alive again.
			eventually(t, 15*time.Second, func() string {
				for _, n := range []*Node{c1, w2, again} {
					if why := sees(n, StatusAlive, want); why != "" {
						return why
					}
				}
				return ""
			})
			t.Logf("restarted w1 alive everywhere after %v", time.Since(began))
			eventually(t, 2*time.Second, func() string {
				if !rec.has(EventJoin, "w1", StatusAlive) || !rec.has(EventLeave, "w1", gone) {
					return "missing leave/join events: " + rec.String()
				}
				return ""
			})
		})
	}
}

func TestRestartSameNameNewAddress(t *testing.T) {
	c1, w1, w2 := cluster(t, nil)
	old := w1.LocalAddr()
	if err := w1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Restart at once, before anyone noticed the old process died.
	began := time.Now()
	again := start(t, fastConfig("w1", "127.0.0.1:0", w1Meta, c1.LocalAddr()))
	if again.LocalAddr() == old {
		t.Skip("kernel handed out the old port again")
	}
	eventually(t, 10*time.Second, func() string {
		for _, n := range []*Node{c1, w2} {
			m, _ := memberOf(n, "w1")
			if m.Status != StatusAlive || m.Addr != again.LocalAddr() {
				return fmt.Sprintf("%s sees %+v, want alive at %s", n.cfg.Name, m, again.LocalAddr())
			}
		}
		return ""
	})
	t.Logf("w1 alive at its new address after %v", time.Since(began))
}

func TestRestartedSeedIsFoundAgain(t *testing.T) {
	// The seed comes back with no Join addresses; the others must find it
	// by reconnecting to the member they saw die.
	c1, w1, w2 := cluster(t, nil)
	addr := c1.LocalAddr()
	if err := c1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string { return statusIn(w1, "c1", StatusDead) })
	began := time.Now()
	again := start(t, fastConfig("c1", addr, coordMeta))
	all := map[string]Meta{"c1": coordMeta, "w1": w1Meta, "w2": w2Meta}
	eventually(t, 5*time.Second, func() string {
		for _, n := range []*Node{again, w1, w2} {
			if why := sees(n, StatusAlive, all); why != "" {
				return why + fmt.Sprintf("; w1 sees %v", w1.Members())
			}
		}
		return ""
	})
	t.Logf("restarted seed reconnected after %v", time.Since(began))
}

func TestNameConflict(t *testing.T) {
	a := start(t, fastConfig("dup", "127.0.0.1:0", coordMeta))
	other := start(t, fastConfig("other", "127.0.0.1:0", w1Meta, a.LocalAddr()))
	eventually(t, 5*time.Second, func() string { return statusIn(other, "dup", StatusAlive) })

	for _, via := range []*Node{a, other} {
		n, err := Start(fastConfig("dup", "127.0.0.1:0", w2Meta, via.LocalAddr()))
		if err == nil {
			_ = n.Shutdown()
			t.Fatalf("second %q joining via %s started", "dup", via.cfg.Name)
		}
		if !errors.Is(err, ErrNameConflict) {
			t.Fatalf("err = %v, want ErrNameConflict", err)
		}
		t.Logf("joining via %s: %v", via.cfg.Name, err)
	}
	// The original is untouched: the duplicates' pings carried their alive
	// messages to it, but they stopped answering within the grace period.
	if why := sees(other, StatusAlive, map[string]Meta{"dup": coordMeta}); why != "" {
		t.Fatal(why)
	}
	eventually(t, 3*time.Second, func() string {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.checking {
			return "original still checking the conflict"
		}
		return ""
	})
	if err := a.Err(); err != nil {
		t.Fatalf("original reports %v", err)
	}
}

func TestMetaTooLarge(t *testing.T) {
	big := Meta{Role: RoleWorker, GRPC: strings.Repeat("x", MaxMetaSize)}
	if _, err := Start(fastConfig("big", "127.0.0.1:0", big)); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Start err = %v, want ErrMetaTooLarge", err)
	}
	n := start(t, fastConfig("small", "127.0.0.1:0", w1Meta))
	if err := n.UpdateMeta(big); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("UpdateMeta err = %v, want ErrMetaTooLarge", err)
	}
	if m, _ := memberOf(n, "small"); m.Meta != w1Meta {
		t.Fatalf("meta changed to %+v", m.Meta)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(fastConfig("", "127.0.0.1:0", w1Meta)); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := Start(fastConfig("x", "127.0.0.1", w1Meta)); err == nil {
		t.Fatal("address without port accepted")
	}
	n := start(t, fastConfig("taken", "127.0.0.1:0", w1Meta))
	if _, err := Start(fastConfig("x", n.LocalAddr(), w1Meta)); err == nil {
		t.Fatal("second bind to a used port accepted")
	}
}

func TestSelfInJoinListAndShutdownTwice(t *testing.T) {
	addr := freeAddr(t)
	n := start(t, fastConfig("solo", addr, coordMeta, addr, " "))
	if got := n.seeds([]string{addr, "solo/127.0.0.1:1", "127.0.0.1:1"}); len(got) != 1 || got[0] != "127.0.0.1:1" {
		t.Fatalf("seeds = %q", got)
	}
	if why := sees(n, StatusAlive, map[string]Meta{"solo": coordMeta}); why != "" {
		t.Fatal(why)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestDefaultTimings(t *testing.T) {
	c := DefaultConfig()
	if c.Name == "" || c.BindAddr != "0.0.0.0:7946" || c.Fast {
		t.Fatalf("DefaultConfig = %+v", c)
	}
	// memberlist's LAN timings still join at once; only failure detection
	// is slower.
	c.Name, c.BindAddr, c.Meta, c.Logger = "d1", "127.0.0.1:0", coordMeta, testLogger()
	d1 := start(t, c)
	c.Name, c.Meta, c.Join = "d2", w1Meta, []string{d1.LocalAddr()}
	d2 := start(t, c)
	all := map[string]Meta{"d1": coordMeta, "d2": w1Meta}
	eventually(t, 5*time.Second, func() string {
		if why := sees(d1, StatusAlive, all); why != "" {
			return why
		}
		return sees(d2, StatusAlive, all)
	})
	if err := d2.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string { return statusIn(d1, "d2", StatusLeft) })
}

// TestLeftSeedRejoinsFromPeersFile: the seed leaves cleanly, so the others
// forget it and never call it again, and comes back with no Join
// addresses: it finds them through the peers file it kept.
func TestLeftSeedRejoinsFromPeersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	cfg := fastConfig("c1", "127.0.0.1:0", coordMeta)
	cfg.PeersFile = path
	c1 := start(t, cfg)
	w1 := start(t, fastConfig("w1", "127.0.0.1:0", w1Meta, c1.LocalAddr()))
	w2 := start(t, fastConfig("w2", "127.0.0.1:0", w2Meta, c1.LocalAddr()))
	eventually(t, 5*time.Second, func() string {
		if got := loadPeers(path); len(got) != 2 || !slices.Contains(got, w1.LocalAddr()) || !slices.Contains(got, w2.LocalAddr()) {
			return fmt.Sprintf("peers file holds %v, want %s and %s", got, w1.LocalAddr(), w2.LocalAddr())
		}
		return ""
	})
	addr := c1.LocalAddr()
	if err := c1.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string { return statusIn(w1, "c1", StatusLeft) })
	if got := loadPeers(path); len(got) != 2 {
		t.Fatalf("after leaving, the peers file holds %v; a node alone keeps the last it knew", got)
	}

	again := start(t, Config{Name: "c1", BindAddr: addr, Meta: coordMeta, Fast: true, Logger: testLogger(), PeersFile: path})
	all := map[string]Meta{"c1": coordMeta, "w1": w1Meta, "w2": w2Meta}
	eventually(t, 10*time.Second, func() string {
		for _, n := range []*Node{again, w1, w2} {
			if why := sees(n, StatusAlive, all); why != "" {
				return why
			}
		}
		return ""
	})
}
