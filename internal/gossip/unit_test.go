package gossip

import (
	"bytes"
	"compress/lzw"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{{}, coordMeta, w1Meta} {
		b, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
	}
	// A realistic coordinator meta leaves plenty of room.
	long := Meta{Role: RoleCoordinator, GRPC: "[2001:db8::1234:5678]:65535", Raft: "[2001:db8::1234:5678]:65534",
		HTTP: "[2001:db8::1234:5678]:65533", MemoryMB: 1 << 40}
	if b, err := long.encode(); err != nil || len(b) > 200 {
		t.Fatalf("encode = %d bytes, %v", len(b), err)
	}
	if m, err := decodeMeta([]byte("not json")); err == nil || m != (Meta{}) {
		t.Fatalf("decodeMeta(garbage) = %+v, %v", m, err)
	}
}

func TestStatusOf(t *testing.T) {
	for s, want := range map[memberlist.NodeStateType]Status{
		memberlist.StateAlive:   StatusAlive,
		memberlist.StateSuspect: StatusSuspect,
		memberlist.StateDead:    StatusDead,
		memberlist.StateLeft:    StatusLeft,
	} {
		if got := statusOf(s); got != want {
			t.Errorf("statusOf(%d) = %s, want %s", s, got, want)
		}
	}
}

func TestChange(t *testing.T) {
	alive := Member{Name: "w", Addr: "127.0.0.1:1", Status: StatusAlive, Meta: w1Meta}
	with := func(f func(*Member)) Member { m := alive; f(&m); return m }
	suspect := with(func(m *Member) { m.Status = StatusSuspect })
	dead := with(func(m *Member) { m.Status = StatusDead })
	left := with(func(m *Member) { m.Status = StatusLeft })
	moved := with(func(m *Member) { m.Addr = "127.0.0.1:2" })
	resized := with(func(m *Member) { m.Meta.MemoryMB = 1 })
	for _, c := range []struct {
		name     string
		old      Member
		had      bool
		now      Member
		kind     EventKind
		reported bool
	}{
		{"new alive", Member{}, false, alive, EventJoin, true},
		{"new suspect", Member{}, false, suspect, EventJoin, true},
		{"new dead", Member{}, false, dead, 0, false},
		{"new left", Member{}, false, left, 0, false},
		{"same", alive, true, alive, 0, false},
		{"suspected", alive, true, suspect, EventUpdate, true},
		{"refuted", suspect, true, alive, EventUpdate, true},
		{"died", suspect, true, dead, EventLeave, true},
		{"left", alive, true, left, EventLeave, true},
		{"back from dead", dead, true, alive, EventJoin, true},
		{"back after leave", left, true, moved, EventJoin, true},
		{"new meta", alive, true, resized, EventUpdate, true},
		{"new address", alive, true, moved, EventUpdate, true},
		{"dead then left", dead, true, left, EventUpdate, true},
	} {
		kind, ok := change(c.old, c.had, c.now)
		if ok != c.reported || (ok && kind != c.kind) {
			t.Errorf("%s: change = %v %v, want %v %v", c.name, kind, ok, c.kind, c.reported)
		}
	}
}

// encodeLikeMemberlist builds a push/pull answer the way memberlist's
// sendLocalState and compressPayload do.
func encodeLikeMemberlist(t *testing.T, nodes []wireNode, compress bool) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte(wirePushPull)
	enc := codec.NewEncoder(&b, &codec.MsgpackHandle{})
	if err := enc.Encode(&wireHeader{Nodes: len(nodes)}); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if err := enc.Encode(&nodes[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !compress {
		return b.Bytes()
	}
	var z bytes.Buffer
	w := lzw.NewWriter(&z, lzw.LSB, wireLZWWidth)
	w.Write(b.Bytes())
	w.Close()
	var out bytes.Buffer
	out.WriteByte(wireCompress)
	if err := codec.NewEncoder(&out, &codec.MsgpackHandle{}).Encode(&wireCompressed{Algo: wireLZW, Buf: z.Bytes()}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestDecodeState(t *testing.T) {
	nodes := []wireNode{
		{Name: "a", Addr: net.ParseIP("127.0.0.1").To4(), Port: 7946, Meta: []byte(`{"role":"worker"}`), Incarnation: 3, State: memberlist.StateSuspect, Vsn: []uint8{1, 5, 2, 0, 0, 0}},
		{Name: "b", Addr: net.ParseIP("::1"), Port: 1, State: memberlist.StateLeft},
	}
	for _, compress := range []bool{false, true} {
		got, err := decodeState(encodeLikeMemberlist(t, nodes, compress))
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if len(got) != 2 || got[0].Name != "a" || got[0].State != memberlist.StateSuspect || got[0].Incarnation != 3 ||
			hostPort(got[0].Addr, got[0].Port) != "127.0.0.1:7946" || hostPort(got[1].Addr, got[1].Port) != "[::1]:1" ||
			got[1].State != memberlist.StateLeft || string(got[0].Meta) != `{"role":"worker"}` {
			t.Fatalf("compress=%v: decoded %+v", compress, got)
		}
	}

	var e bytes.Buffer
	e.WriteByte(wireErr)
	codec.NewEncoder(&e, &codec.MsgpackHandle{}).Encode(&wireErrResp{Error: "boom"})
	if _, err := decodeState(e.Bytes()); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error answer: %v", err)
	}
	for _, bad := range [][]byte{nil, {42}, {wirePushPull}, {wireCompress, 0xc1}} {
		if _, err := decodeState(bad); err == nil {
			t.Fatalf("decodeState(%v) accepted", bad)
		}
	}
}

// TestReadStateMatchesMemberlist checks the wire mirror against the real
// thing: the table read over the stream lists what memberlist lists.
func TestReadStateMatchesMemberlist(t *testing.T) {
	a := start(t, fastConfig("a", "127.0.0.1:0", coordMeta))
	b := start(t, fastConfig("b", "127.0.0.1:0", w1Meta, a.LocalAddr()))
	eventually(t, 5*time.Second, func() string { return statusIn(b, "a", StatusAlive) })
	nodes, err := a.readState()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, m := range a.ml().Members() {
		want[m.Name] = m.Address()
	}
	if len(nodes) != len(want) {
		t.Fatalf("read %d nodes, memberlist has %v", len(nodes), want)
	}
	for _, w := range nodes {
		if want[w.Name] != hostPort(w.Addr, w.Port) || w.State != memberlist.StateAlive {
			t.Fatalf("read %s at %s state %d, memberlist has %v", w.Name, hostPort(w.Addr, w.Port), w.State, want)
		}
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.readState(); err != ErrShutdown {
		t.Fatalf("readState after Shutdown = %v", err)
	}
}

func TestMemberlistLine(t *testing.T) {
	for line, want := range map[string]struct {
		level slog.Level
		msg   string
	}{
		"[ERR] memberlist: Conflicting address\n": {slog.LevelError, "Conflicting address"},
		"[ERROR] memberlist: x":                   {slog.LevelError, "x"},
		"[WARN] memberlist: Refuting":             {slog.LevelWarn, "Refuting"},
		"[INFO] memberlist: Marking":              {slog.LevelInfo, "Marking"},
		"[DEBUG] memberlist: Stream":              {slog.LevelDebug, "Stream"},
		"Err: Could not set the deadline":         {slog.LevelError, "Could not set the deadline"},
		"something else":                          {slog.LevelWarn, "something else"},
	} {
		level, msg := memberlistLine(line)
		if level != want.level || msg != want.msg {
			t.Errorf("memberlistLine(%q) = %v %q, want %v %q", line, level, msg, want.level, want.msg)
		}
	}
	var buf bytes.Buffer
	l := newStdLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[DEBUG] memberlist: hidden")
	l.Printf("[INFO] memberlist: hidden too")
	l.Printf("[WARN] memberlist: shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Fatalf("logged %q", out)
	}
}

func TestEventQueueOrderAndClose(t *testing.T) {
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	release := make(chan struct{})
	q := newEventQueue(func(e Event) {
		if e.Member.Name == "0" {
			<-release // a slow callback must not block push
		}
		mu.Lock()
		got = append(got, e.Member.Name)
		n := len(got)
		mu.Unlock()
		if n == 100 {
			close(done)
		}
	})
	for i := range 100 {
		q.push(Event{Kind: EventUpdate, Member: Member{Name: strings.Repeat("x", i%3) + string(rune('0'+i%10))}})
	}
	close(release)
	q.close()
	q.push(Event{Kind: EventJoin, Member: Member{Name: "after close"}})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("queued events not delivered after close")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 100 {
		t.Fatalf("delivered %d events, want 100 (none pushed after close)", len(got))
	}
	for i, name := range got {
		if want := strings.Repeat("x", i%3) + string(rune('0'+i%10)); name != want {
			t.Fatalf("event %d = %q, want %q", i, name, want)
		}
	}
}
