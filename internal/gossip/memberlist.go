package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// timings are the package's own intervals; memberlist's are set in create.
type timings struct {
	watch          time.Duration // node table read interval
	readTimeout    time.Duration // one node table read
	startJoinWait  time.Duration // how long Start waits for the first join attempt
	joinMin        time.Duration // join retry backoff, first step
	joinMax        time.Duration // join retry backoff, cap
	reconnectEvery time.Duration // how often dead members and (when alone) Join addresses are retried
	reconnectFor   time.Duration // how long a dead member is retried
	updateTimeout  time.Duration // UpdateMeta's wait for the broadcast
	conflictGrace  time.Duration // how long a duplicate of our name may answer before Err reports it
	savePeersEvery time.Duration // how often a changed set of peers is written to Config.PeersFile
}

func timingsFor(fast bool) timings {
	if fast {
		return timings{
			watch:          100 * time.Millisecond,
			readTimeout:    time.Second,
			startJoinWait:  2 * time.Second,
			joinMin:        50 * time.Millisecond,
			joinMax:        time.Second,
			reconnectEvery: time.Second,
			reconnectFor:   2 * time.Minute,
			updateTimeout:  2 * time.Second,
			conflictGrace:  time.Second,
			savePeersEvery: 200 * time.Millisecond,
		}
	}
	return timings{
		watch:          100 * time.Millisecond,
		readTimeout:    2 * time.Second,
		startJoinWait:  3 * time.Second,
		joinMin:        500 * time.Millisecond,
		joinMax:        15 * time.Second,
		reconnectEvery: 30 * time.Second,
		// As Serf: a member that crashed is looked for long enough to
		// cover a host reboot or an operator's repair.
		reconnectFor:   24 * time.Hour,
		updateTimeout:  5 * time.Second,
		conflictGrace:  5 * time.Second,
		savePeersEvery: 5 * time.Second,
	}
}

// create builds the transport and the memberlist. The transport is ours,
// not memberlist's default, because readState needs its IngestStream.
func (n *Node) create(host string, port int) error {
	ip := net.ParseIP(host)
	if ip.IsUnspecified() && ip.To4() == nil {
		// memberlist only looks up a private IP to advertise for 0.0.0.0.
		return errors.New("gossip: BindAddr: use 0.0.0.0 or a specific address, not ::")
	}
	stdlog := newStdLogger(n.log)
	nt, err := newTransport(host, port, stdlog)
	if err != nil {
		return err
	}

	c := memberlist.DefaultLANConfig()
	c.Name = n.cfg.Name
	c.Transport = nt
	c.BindAddr = host
	c.BindPort = nt.GetAutoBindPort()
	c.AdvertisePort = c.BindPort
	if ip.IsUnspecified() {
		n.allIfs = true
		c.AdvertiseAddr = "" // the transport picks a private IP
	} else {
		c.AdvertiseAddr = host
	}
	if n.cfg.AdvertiseHost != "" {
		adv, _, err := splitBind(net.JoinHostPort(n.cfg.AdvertiseHost, "0"))
		if err != nil {
			_ = nt.Shutdown()
			return fmt.Errorf("gossip: advertise host: %w", err)
		}
		c.AdvertiseAddr = adv
	}
	c.Logger = stdlog
	// With a key, GossipVerifyIncoming and GossipVerifyOutgoing (true by
	// default) make memberlist refuse plaintext both ways.
	c.SecretKey = n.cfg.SecretKey
	h := hooks{n}
	c.Delegate = h
	c.Events = h
	c.Conflict = h
	c.Merge = h
	// memberlist's default (0) never lets a dead member's name move to a
	// new address, so a node restarted elsewhere could never rejoin. A
	// genuine duplicate is caught separately (see onMerge).
	c.DeadNodeReclaimTime = 10 * time.Second
	if n.cfg.Fast {
		fastTimings(c)
	}

	// memberlist serves peers from inside Create, so everything the hooks
	// read is set first, and the memberlist itself is published atomically.
	advIP, advPort, err := nt.FinalAdvertiseAddr(c.AdvertiseAddr, c.AdvertisePort)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("gossip: advertise address: %w", err)
	}
	n.self = net.JoinHostPort(advIP.String(), strconv.Itoa(advPort))
	n.nt = nt
	ml, err := memberlist.Create(c)
	if err != nil {
		_ = nt.Shutdown()
		return fmt.Errorf("gossip: start memberlist: %w", err)
	}
	n.mlist.Store(ml)
	return nil
}

// fastTimings makes a killed member suspect within about a second on
// loopback and dead shortly after: probes every 200 ms with a 100 ms
// timeout, and a suspicion timeout of 2 x 200 ms (SuspicionMult 2 also
// means no peer confirmations are awaited).
func fastTimings(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 5 * time.Second
	c.GossipToTheDeadTime = 5 * time.Second
	c.TCPTimeout = time.Second
	c.RetransmitMult = 2
	// A dead member's name may move to a new address at once.
	c.DeadNodeReclaimTime = time.Millisecond
}

// newTransport binds TCP and UDP. For port 0 the kernel picks the TCP port
// and UDP may find it taken, so, like memberlist, it retries a few times.
func newTransport(host string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("gossip: bind %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
}

// hooks implements memberlist's delegates without putting their methods on
// Node's API. memberlist calls the event and conflict hooks with its node
// lock held, so they must not block or call back into memberlist.
type hooks struct{ n *Node }

// NodeMeta serves the encoded Meta; its size was checked on the way in.
func (h hooks) NodeMeta(limit int) []byte {
	h.n.metaMu.Lock()
	defer h.n.metaMu.Unlock()
	return h.n.meta
}

func (hooks) NotifyMsg([]byte)                  {}
func (hooks) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (hooks) LocalState(bool) []byte            { return nil }
func (hooks) MergeRemoteState(_ []byte, _ bool) {}
func (h hooks) NotifyJoin(*memberlist.Node)     { h.n.kick() }
func (h hooks) NotifyLeave(*memberlist.Node)    { h.n.kick() }
func (h hooks) NotifyUpdate(*memberlist.Node)   { h.n.kick() }
func (h hooks) NotifyConflict(existing, other *memberlist.Node) {
	h.n.onConflict(existing, other)
}
func (h hooks) NotifyMerge(peers []*memberlist.Node) error {
	return h.n.onMerge(peers)
}

// kick asks the watcher for an immediate read of the node table, so events
// follow memberlist's own notifications closely instead of waiting for the
// next tick.
func (n *Node) kick() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

var (
	_ memberlist.Delegate         = hooks{}
	_ memberlist.EventDelegate    = hooks{}
	_ memberlist.ConflictDelegate = hooks{}
	_ memberlist.MergeDelegate    = hooks{}
)
