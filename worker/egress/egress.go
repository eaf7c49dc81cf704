package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// ErrClosed is returned by Attach and by a second Close after Close.
var ErrClosed = errors.New("egress network closed")

// Config describes one worker's sandbox network and its policy.
type Config struct {
	// Name is a short id (1 to 7 of a-z, 0-9) that names the bridge
	// ("gu"+Name), the veths ("gu"+Name+"-"+N) and the nftables table, so
	// that what a killed worker left can be found again. Names must differ
	// between Networks in one namespace.
	Name string
	// CIDR holds the sandbox addresses, IPv4, /16 to /30. Its first host
	// address is the gateway, on the bridge.
	CIDR netip.Prefix
	// Deny lists destinations always dropped (link-local, cluster nodes).
	// IPv6 entries are accepted but moot: sandboxes get no IPv6 at all.
	Deny []netip.Prefix
	// DenyPorts lists single TCP and UDP ports always dropped, such as a
	// node's gRPC or gossip port on an address that is otherwise reachable.
	DenyPorts []netip.AddrPort
	// AllowOnly, when not nil, is the only IPv4 destinations allowed (after
	// Deny). Nil allows everything not denied; an empty, non-nil slice
	// allows nothing.
	AllowOnly []netip.Prefix
}

// Endpoint is one sandbox's attachment to a Network.
type Endpoint struct {
	addr   netip.Addr
	link   string // host-side veth name
	serial uint64 // tells this attachment from a later one at the same address
}

// Addr is the sandbox's address, on its eth0.
func (e Endpoint) Addr() netip.Addr { return e.addr }

// HostLink is the name of the host-side veth, on the bridge.
func (e Endpoint) HostLink() string { return e.link }

const (
	linkPrefix  = "gu"
	tablePrefix = "gust-egress-"
	maxName     = 7 // "gu" + 7 + "-" + 5 digits = 15 = IFNAMSIZ-1
)

// bridgeName is also the prefix (plus "-") of every veth of the Network.
func bridgeName(name string) string { return linkPrefix + name }

func vethName(name string, offset uint32) string {
	return bridgeName(name) + "-" + strconv.FormatUint(uint64(offset), 10)
}

func tableName(name string) string { return tablePrefix + name }

func validName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("egress name %q: want 1 to %d characters", name, maxName)
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("egress name %q: only a-z and 0-9 allowed", name)
		}
	}
	return nil
}

// validate checks cfg and returns it with every prefix masked.
func (cfg Config) validate() (Config, error) {
	if err := validName(cfg.Name); err != nil {
		return cfg, err
	}
	p := cfg.CIDR
	// /16 keeps veth numbers to five digits; /30 leaves one sandbox address.
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 30 {
		return cfg, fmt.Errorf("sandbox CIDR %v: want an IPv4 prefix from /16 to /30", p)
	}
	if p != p.Masked() {
		return cfg, fmt.Errorf("sandbox CIDR %v: host bits set (did you mean %v?)", p, p.Masked())
	}
	out := cfg
	out.Deny = make([]netip.Prefix, 0, len(cfg.Deny))
	for _, d := range cfg.Deny {
		if !d.IsValid() {
			return cfg, fmt.Errorf("deny prefix %v: invalid", d)
		}
		out.Deny = append(out.Deny, d.Masked())
	}
	for _, ap := range cfg.DenyPorts {
		if !ap.IsValid() || ap.Port() == 0 {
			return cfg, fmt.Errorf("deny port %v: want address:port with a port", ap)
		}
	}
	if cfg.AllowOnly != nil {
		out.AllowOnly = make([]netip.Prefix, 0, len(cfg.AllowOnly))
		for _, a := range cfg.AllowOnly {
			if !a.IsValid() || !a.Addr().Is4() {
				return cfg, fmt.Errorf("allow prefix %v: want IPv4 (sandboxes get no IPv6)", a)
			}
			out.AllowOnly = append(out.AllowOnly, a.Masked())
		}
	}
	return out, nil
}

// gateway is the bridge's address: the CIDR's first host address.
func gateway(cidr netip.Prefix) netip.Addr { return cidr.Addr().Next() }

// hostCount is the number of offsets in the CIDR, network and broadcast
// included.
func hostCount(cidr netip.Prefix) uint32 { return 1 << (32 - cidr.Bits()) }

// addrAt is the CIDR's address at offset.
func addrAt(cidr netip.Prefix, offset uint32) netip.Addr {
	b := cidr.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += offset
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocator hands out sandbox offsets 2 … size-2 (0 is the network, 1 the
// gateway, the last the broadcast). It goes round rather than reusing the
// lowest free offset, so a just-freed address is not handed out again while
// conntrack may still hold entries for its old connections.
// Each offset in use records its owner, an Endpoint's serial, so that a
// stale Endpoint cannot free (or unplug) its address's next owner.
type allocator struct {
	size uint32
	next uint32
	used map[uint32]uint64
}

func newAllocator(cidr netip.Prefix) *allocator {
	return &allocator{size: hostCount(cidr), next: 2, used: map[uint32]uint64{}}
}

func (a *allocator) get(owner uint64) (uint32, bool) {
	n := a.size - 3
	for range n {
		o := a.next
		a.next++
		if a.next > a.size-2 {
			a.next = 2
		}
		if _, ok := a.used[o]; !ok {
			a.used[o] = owner
			return o, true
		}
	}
	return 0, false
}

func (a *allocator) owner(o uint32) (uint64, bool) {
	owner, ok := a.used[o]
	return owner, ok
}

func (a *allocator) setOwner(o uint32, owner uint64) { a.used[o] = owner }

func (a *allocator) put(o uint32) { delete(a.used, o) }
