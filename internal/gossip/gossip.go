package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Role names carried in Meta.Role.
const (
	RoleCoordinator = "coordinator"
	RoleWorker      = "worker"
)

// MaxMetaSize is the largest encoded Meta memberlist accepts; memberlist
// panics on anything bigger, so Start and UpdateMeta refuse it first.
const MaxMetaSize = memberlist.MetaMaxSize

var (
	// ErrNameConflict means another live process already uses this node's
	// name. Names identify nodes (Raft server IDs, worker names), so two
	// processes sharing one would corrupt both views; it is never retried.
	ErrNameConflict = errors.New("gossip: node name already used by another live member")
	// ErrMetaTooLarge means the encoded Meta does not fit in memberlist's
	// node metadata.
	ErrMetaTooLarge = errors.New("gossip: encoded meta too large")
	// ErrShutdown is returned by operations on a node that has been shut
	// down or has left.
	ErrShutdown = errors.New("gossip: node is shut down")
)

// Meta is what a node tells the cluster about itself. It travels in
// memberlist's node metadata as JSON with short keys, so it must encode to at
// most MaxMetaSize bytes.
type Meta struct {
	Role     string `json:"role,omitempty"` // RoleCoordinator or RoleWorker
	GRPC     string `json:"grpc,omitempty"` // gRPC address
	Raft     string `json:"raft,omitempty"` // Raft address (coordinators)
	HTTP     string `json:"http,omitempty"` // HTTP address (coordinators)
	MemoryMB int64  `json:"mem,omitempty"`  // memory capacity (workers)
}

func (m Meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gossip: encode meta: %w", err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta is lenient: a member whose metadata is not ours (or empty, as
// for a node memberlist learned about only by name) is still a member, just
// one with an empty Meta.
func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, nil
	}
	err := json.Unmarshal(b, &m)
	return m, err
}

// Status is a member's liveness as memberlist sees it.
type Status string

// Statuses, mapped one to one from memberlist's node states.
const (
	StatusAlive   Status = "alive"   // answering probes
	StatusSuspect Status = "suspect" // missed probes; declared dead unless it refutes in time
	StatusDead    Status = "dead"    // failed (crash, kill -9, partition)
	StatusLeft    Status = "left"    // left on purpose (Leave)
)

func statusOf(s memberlist.NodeStateType) Status {
	switch s {
	case memberlist.StateAlive:
		return StatusAlive
	case memberlist.StateSuspect:
		return StatusSuspect
	case memberlist.StateLeft:
		return StatusLeft
	default:
		return StatusDead
	}
}

// up reports whether a member still counts as present: a suspect member is
// usually just slow, and most suspicions are refuted.
func (s Status) up() bool { return s == StatusAlive || s == StatusSuspect }

// Member is one node as this node's gossip sees it.
type Member struct {
	Name   string
	Addr   string // gossip host:port
	Status Status
	Meta   Meta
}

// EventKind says what changed about a member.
type EventKind int

// Event kinds. A member that appears or comes back (alive or suspect after
// dead or left) is a Join; one that goes dead or left is a Leave; anything
// else (alive <-> suspect, new Meta, new address) is an Update.
const (
	EventJoin EventKind = iota + 1
	EventUpdate
	EventLeave
)

func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one membership change; Member is the member after the change.
type Event struct {
	Kind   EventKind
	Member Member
}

// Config configures a Node. Start with DefaultConfig and set Name, BindAddr,
// Meta and Join.
type Config struct {
	// Name identifies the node in the cluster and must be unique. A
	// restarted node keeps its name.
	Name string
	// BindAddr is host:port for gossip over TCP and UDP, such as
	// 127.0.0.1:7946; port 0 picks a free port (see LocalAddr). The host is
	// also the address advertised to others, so it must be reachable by
	// them; 0.0.0.0 binds every interface and advertises the first private
	// IP.
	BindAddr string
	// AdvertiseHost, if set, is the host (an IP or a name resolved at
	// start) advertised instead of BindAddr's, with BindAddr's port: for a
	// node behind NAT, or bound to every interface of a host with several.
	AdvertiseHost string
	// PeersFile, if set, is where the node keeps the addresses of the
	// members it last saw alive; at start it joins those as well as Join,
	// so a restarted node finds its cluster again even when Join is empty
	// (the cluster's first node) or out of date.
	PeersFile string
	// Meta is what the node tells the others about itself.
	Meta Meta
	// Join lists gossip addresses of members that may already be running.
	// Empty for the first node. Unreachable addresses are retried in the
	// background, so nodes can start in any order.
	Join []string
	// Fast selects short timings (a killed member is suspected within about
	// a second) for tests and loopback clusters, at the cost of more
	// traffic and less tolerance for slow networks.
	Fast bool
	// SecretKey, if set (16, 24 or 32 bytes; see ParseKey), encrypts all
	// gossip with AES-GCM, and every message without it, or under another
	// key, is refused, so a node without the key cannot join or be heard.
	SecretKey []byte
	// Logger receives memberlist's warnings and errors, and the package's
	// own messages. Nil means slog.Default().
	Logger *slog.Logger
	// Events, if set, is called on every membership change, from one
	// goroutine and in order, starting with a Join for this node. It may
	// call Members; a slow callback delays later events but never gossip.
	// Changes are found by comparing successive reads of memberlist's node
	// table (every ~100 ms and right after memberlist's own notifications),
	// which is what makes suspect transitions visible; a flap shorter than
	// that can go unreported.
	Events func(Event)
}

// DefaultConfig returns memberlist's LAN timings, the host name as node name
// and 0.0.0.0:7946 as gossip address.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{Name: host, BindAddr: "0.0.0.0:7946"}
}

// Node is this process's membership in the gust cluster.
type Node struct {
	cfg    Config
	log    *slog.Logger
	tm     timings
	self   string // advertised gossip address, host:port
	allIfs bool   // bound to every interface
	nt     *memberlist.NetTransport
	// mlist is set once memberlist.Create returns; hooks may run before.
	mlist atomic.Pointer[memberlist.Memberlist]

	metaMu sync.Mutex
	meta   []byte // encoded Meta served to memberlist

	// life guards the memberlist lifecycle: memberlist panics on Leave after
	// Shutdown, and state reads must not hand it a stream once it is torn
	// down (see readState).
	life    sync.RWMutex
	stopped bool
	done    chan struct{}

	readMu  sync.Mutex    // one state read and apply at a time, in order
	poke    chan struct{} // memberlist saw a change: read the state now
	resync  chan struct{} // a member came back: push/pull with it now
	watchWG sync.WaitGroup
	events  *eventQueue

	mu       sync.Mutex
	members  map[string]Member
	failed   map[string]failedMember // dead members to reconnect to
	returned map[string]string       // members back from dead or left: name -> addr to push/pull with
	conflict error                   // confirmed name conflict, if any
	joinView *selfView               // set while our own Join runs
	checking bool                    // a conflict confirmation is running
}

// Start creates the node's memberlist, joins the cluster and returns. If
// Join is not empty, Start waits briefly for the first join attempt so that
// a name conflict is reported here; unreachable Join addresses are retried
// in the background with backoff until one answers.
func Start(cfg Config) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("gossip: Config.Name is required")
	}
	meta, err := cfg.Meta.encode()
	if err != nil {
		return nil, err
	}
	host, port, err := splitBind(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With("component", "gossip", "node", cfg.Name),
		tm:       timingsFor(cfg.Fast),
		meta:     meta,
		done:     make(chan struct{}),
		poke:     make(chan struct{}, 1),
		resync:   make(chan struct{}, 1),
		members:  map[string]Member{},
		failed:   map[string]failedMember{},
		returned: map[string]string{},
	}
	n.events = newEventQueue(cfg.Events)
	if err := n.create(host, port); err != nil {
		n.events.close()
		return nil, err
	}
	// Read the table once so Members includes this node when Start returns.
	_ = n.refresh()
	n.watchWG.Add(1)
	go n.watch()

	seeds := n.seeds(append(slices.Clone(cfg.Join), loadPeers(cfg.PeersFile)...))
	if cfg.PeersFile != "" {
		n.watchWG.Add(1)
		go n.savePeers(cfg.PeersFile, n.tm.savePeersEvery)
	}
	first := make(chan error, 1)
	go n.joinLoop(seeds, first)
	if len(seeds) > 0 {
		select {
		case err := <-first:
			if errors.Is(err, ErrNameConflict) {
				_ = n.Shutdown()
				return nil, err
			}
		case <-time.After(n.tm.startJoinWait):
			n.log.Info("join addresses not answering yet; retrying in background", "join", seeds)
		}
	}
	return n, nil
}

// Members returns every member this node knows, itself included and sorted
// by name: alive and suspect ones, and dead or left ones memberlist still
// remembers (it forgets them some time after GossipToTheDeadTime: 30 s by
// default, 5 s with Fast). The view lags memberlist's by at most ~100 ms.
func (n *Node) Members() []Member {
	n.mu.Lock()
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LocalAddr returns the gossip address this node advertises (host:port, the
// real port when BindAddr asked for port 0). Other nodes join through it.
func (n *Node) LocalAddr() string { return n.self }

// Err returns a name conflict found after Start returned, or nil: either
// this node learned that its name is taken while it was still looking for
// its Join addresses (it then stops joining), or another process using its
// name kept answering for a grace period. The node keeps running; the
// caller decides whether to stop.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conflict
}

// UpdateMeta replaces this node's Meta and gossips it. It waits (up to a few
// seconds) for the update to be sent; on timeout it returns an error, but the
// new Meta is in effect locally and still reaches the others through
// anti-entropy.
func (n *Node) UpdateMeta(m Meta) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	n.life.RLock()
	defer n.life.RUnlock()
	if n.stopped {
		return ErrShutdown
	}
	n.metaMu.Lock()
	n.meta = b
	n.metaMu.Unlock()
	if err := n.ml().UpdateNode(n.tm.updateTimeout); err != nil {
		return fmt.Errorf("gossip: update meta: %w", err)
	}
	n.kick()
	return nil
}

// Leave tells the cluster this node is leaving on purpose (others see it as
// left rather than dead), waits up to timeout for that to be gossiped, then
// shuts down.
func (n *Node) Leave(timeout time.Duration) error {
	n.life.Lock()
	if n.stopped {
		n.life.Unlock()
		return ErrShutdown
	}
	err := n.ml().Leave(timeout)
	n.life.Unlock()
	if err != nil {
		err = fmt.Errorf("gossip: leave: %w", err)
	}
	return errors.Join(err, n.Shutdown())
}

// Shutdown stops gossip without telling anyone, as a crash would: the
// others suspect this node and then declare it dead. Safe to call more than
// once.
func (n *Node) Shutdown() error {
	n.life.Lock()
	if n.stopped {
		n.life.Unlock()
		return nil
	}
	n.stopped = true
	close(n.done)
	n.life.Unlock()

	err := n.ml().Shutdown()
	n.watchWG.Wait()
	n.events.close()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

// ml returns the memberlist; nil only while Start is creating it.
func (n *Node) ml() *memberlist.Memberlist { return n.mlist.Load() }

// splitBind turns BindAddr into an IP literal and a port. Host names are
// resolved here because memberlist binds every interface for anything that
// is not an IP literal.
func splitBind(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("gossip: BindAddr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("gossip: BindAddr %q: bad port", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return "", 0, fmt.Errorf("gossip: BindAddr %q: resolve host: %v", addr, err)
		}
		ip := ips[0]
		for _, cand := range ips {
			if cand.To4() != nil {
				ip = cand
				break
			}
		}
		host = ip.String()
	}
	return host, port, nil
}
