package gossip

import (
	"bytes"
	"compress/lzw"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// Mirrors of memberlist's push/pull wire messages (net.go and util.go of
// memberlist v0.5.4; the format is part of memberlist's protocol, shared by
// every version since protocol 2). They are decoded by field name.
const (
	wirePushPull = 6  // pushPullMsg
	wireCompress = 9  // compressMsg
	wireErr      = 13 // errMsg
	wireLZW      = 0  // lzwAlgo
	wireLZWWidth = 8  // lzwLitWidth
	// wireMaxNodes bounds the allocation for a corrupt header.
	wireMaxNodes = 1 << 20
)

type wireHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type wireNode struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       memberlist.NodeStateType
	Vsn         []uint8
}

type wireCompressed struct {
	Algo int
	Buf  []byte
}

type wireErrResp struct {
	Error string
}

// readState returns memberlist's whole node table, with each node's real
// state. memberlist exposes no such call, but it answers a push/pull stream
// with exactly that table. The stream is handed to memberlist in-process
// (no socket, so nothing depends on the advertised address being dialable)
// and carries an empty, non-join request: memberlist merges nothing from it
// and calls no delegate, so reading has no side effects.
func (n *Node) readState() ([]wireNode, error) {
	local, remote := net.Pipe()
	defer local.Close()
	if err := local.SetDeadline(time.Now().Add(n.tm.readTimeout)); err != nil {
		return nil, err
	}

	// IngestStream blocks until memberlist's stream listener takes the
	// connection, and that listener exits on Shutdown; holding the read
	// lock makes Shutdown wait for the hand-over, so it can never block
	// forever.
	n.life.RLock()
	if n.stopped {
		n.life.RUnlock()
		remote.Close()
		return nil, ErrShutdown
	}
	err := n.nt.IngestStream(remote)
	n.life.RUnlock()
	if err != nil {
		return nil, err
	}

	var req bytes.Buffer
	req.WriteByte(wirePushPull)
	if err := codec.NewEncoder(&req, &codec.MsgpackHandle{}).Encode(&wireHeader{}); err != nil {
		return nil, err
	}
	msg := req.Bytes()
	if key := n.cfg.SecretKey; key != nil {
		var err error
		if msg, err = sealStream(key, msg); err != nil {
			return nil, err
		}
	}
	if _, err := local.Write(msg); err != nil {
		return nil, fmt.Errorf("send state request: %w", err)
	}
	// memberlist closes the stream once it has answered, so reading to EOF
	// takes the whole answer and never leaves its write blocked.
	resp, err := io.ReadAll(local)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if key := n.cfg.SecretKey; key != nil {
		if resp, err = openStream(key, resp); err != nil {
			return nil, err
		}
	}
	return decodeState(resp)
}

func decodeState(resp []byte) ([]wireNode, error) {
	hd := &codec.MsgpackHandle{}
	if len(resp) == 0 {
		return nil, errors.New("empty state answer")
	}
	typ, body := resp[0], resp[1:]
	if typ == wireCompress {
		var c wireCompressed
		if err := codec.NewDecoderBytes(body, hd).Decode(&c); err != nil {
			return nil, fmt.Errorf("decode compressed state: %w", err)
		}
		if c.Algo != wireLZW {
			return nil, fmt.Errorf("unknown compression %d", c.Algo)
		}
		r := lzw.NewReader(bytes.NewReader(c.Buf), lzw.LSB, wireLZWWidth)
		plain, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("decompress state: %w", err)
		}
		if len(plain) == 0 {
			return nil, errors.New("empty compressed state")
		}
		typ, body = plain[0], plain[1:]
	}
	dec := codec.NewDecoderBytes(body, hd)
	switch typ {
	case wirePushPull:
	case wireErr:
		var e wireErrResp
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("decode error answer: %w", err)
		}
		return nil, fmt.Errorf("memberlist: %s", e.Error)
	default:
		return nil, fmt.Errorf("unexpected answer type %d", typ)
	}
	var h wireHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("decode state header: %w", err)
	}
	if h.Nodes < 0 || h.Nodes > wireMaxNodes {
		return nil, fmt.Errorf("bad node count %d", h.Nodes)
	}
	nodes := make([]wireNode, h.Nodes)
	for i := range nodes {
		if err := dec.Decode(&nodes[i]); err != nil {
			return nil, fmt.Errorf("decode node %d: %w", i, err)
		}
	}
	return nodes, nil
}

// watch keeps Members and Events in step with memberlist. Reading the table
// every 100 ms (and at once when memberlist reports a join, leave or update)
// is what makes suspect transitions visible at all: memberlist signals none.
func (n *Node) watch() {
	defer n.watchWG.Done()
	t := time.NewTicker(n.tm.watch)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		case <-n.poke:
		}
		err := n.refresh()
		switch {
		case err == nil:
			failing = false
		case errors.Is(err, ErrShutdown):
			return
		case !failing:
			// Once per failure streak: Members is going stale.
			failing = true
			n.log.Warn("reading memberlist node table failed; membership view is stale", "err", err)
		}
	}
}

// refresh reads the node table and applies it. Reads are serialized so
// tables are applied in the order they were read.
func (n *Node) refresh() error {
	n.readMu.Lock()
	defer n.readMu.Unlock()
	nodes, err := n.readState()
	if err != nil {
		return err
	}
	n.events.push(n.apply(nodes, time.Now())...)
	return nil
}

// apply replaces the member view with a fresh node table and returns the
// events that turn the old view into the new one, sorted by name.
func (n *Node) apply(nodes []wireNode, now time.Time) []Event {
	next := make(map[string]Member, len(nodes))
	var evs []Event
	n.mu.Lock()
	for _, w := range nodes {
		meta, err := decodeMeta(w.Meta)
		if err != nil {
			n.log.Debug("member meta is not gust meta", "member", w.Name, "err", err)
		}
		m := Member{Name: w.Name, Addr: hostPort(w.Addr, w.Port), Status: statusOf(w.State), Meta: meta}
		next[m.Name] = m
		old, had := n.members[m.Name]
		if kind, ok := change(old, had, m); ok {
			evs = append(evs, Event{Kind: kind, Member: m})
			if kind == EventJoin && had && m.Name != n.cfg.Name {
				n.returned[m.Name] = m.Addr
			}
		}
		n.trackFailed(m, now)
	}
	// A member missing from the table was forgotten by memberlist long
	// after it was reported dead or left: no event.
	n.members = next
	resync := len(n.returned) > 0
	n.mu.Unlock()
	if resync {
		select {
		case n.resync <- struct{}{}:
		default:
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Member.Name < evs[j].Member.Name })
	return evs
}

// change classifies the difference between two views of one member.
func change(old Member, had bool, now Member) (EventKind, bool) {
	switch {
	case !had:
		// A member first heard of as already dead or left never joined
		// from our point of view, so it gets no Leave either.
		return EventJoin, now.Status.up()
	case old.Status.up() && !now.Status.up():
		return EventLeave, true
	case !old.Status.up() && now.Status.up():
		return EventJoin, true
	case old != now:
		return EventUpdate, true
	}
	return 0, false
}

// trackFailed remembers dead members for reconnect; n.mu must be held.
func (n *Node) trackFailed(m Member, now time.Time) {
	if m.Name == n.cfg.Name {
		return
	}
	if m.Status != StatusDead {
		delete(n.failed, m.Name)
		return
	}
	f, ok := n.failed[m.Name]
	if !ok {
		f.since = now
	}
	f.addr = m.Addr
	n.failed[m.Name] = f
}

func hostPort(ip []byte, port uint16) string {
	return net.JoinHostPort(net.IP(ip).String(), strconv.Itoa(int(port)))
}

// eventQueue delivers events to the callback from one goroutine, in order,
// without ever blocking the producer: a slow callback must not stall the
// membership view.
type eventQueue struct {
	fn     func(Event)
	mu     sync.Mutex
	cond   *sync.Cond
	q      []Event
	closed bool
}

func newEventQueue(fn func(Event)) *eventQueue {
	q := &eventQueue{fn: fn}
	q.cond = sync.NewCond(&q.mu)
	if fn != nil {
		go q.run()
	}
	return q
}

func (q *eventQueue) push(evs ...Event) {
	if q.fn == nil || len(evs) == 0 {
		return
	}
	q.mu.Lock()
	if !q.closed {
		q.q = append(q.q, evs...)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

// close stops the queue after the events already queued are delivered.
// It does not wait for them: the callback may itself be calling Shutdown.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *eventQueue) run() {
	for {
		q.mu.Lock()
		for len(q.q) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.q) == 0 {
			q.mu.Unlock()
			return
		}
		ev := q.q[0]
		q.q[0] = Event{}
		q.q = q.q[1:]
		q.mu.Unlock()
		q.fn(ev)
	}
}
