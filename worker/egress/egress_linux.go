package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Network is one worker's sandbox network: a bridge, its veths and its
// nftables table, in the namespace Open was called in. Its methods may be
// called from any goroutine: its netlink and nftables sockets were opened in
// that namespace and stay bound to it.
type Network struct {
	cfg     Config
	bridge  string
	gateway netip.Addr

	hostNS *os.File // the namespace Open ran in; its sockets' home
	nl     *netlink.Handle
	nft    *nftables.Conn

	// life is held shared by Attach and Detach and exclusively by Close,
	// so the sockets are not closed under an operation.
	life   sync.RWMutex
	closed bool

	mu     sync.Mutex // guards alloc and serial
	alloc  *allocator
	serial uint64
}

// detaching owns an address while its veth is being deleted.
const detaching = 0

// Open builds the network in the calling thread's network namespace (the
// worker's host namespace; a test locks its goroutine into one of its own),
// after removing what a killed process left under the same Name. It turns
// on IPv4 forwarding in that namespace and leaves it on at Close, as other
// users of the host may rely on it by then.
func Open(cfg Config) (_ *Network, err error) {
	cfg, err = cfg.validate()
	if err != nil {
		return nil, err
	}
	// The namespace file and the sysctl below must be the same thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	hostNS, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	n := &Network{
		cfg:     cfg,
		bridge:  bridgeName(cfg.Name),
		gateway: gateway(cfg.CIDR),
		hostNS:  hostNS,
		alloc:   newAllocator(cfg.CIDR),
	}
	defer func() {
		if err != nil {
			n.closeSockets()
		}
	}()
	if n.nl, err = netlink.NewHandleAt(netns.NsHandle(hostNS.Fd())); err != nil {
		return nil, fmt.Errorf("netlink in host netns: %w", err)
	}
	if n.nft, err = nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(int(hostNS.Fd()))); err != nil {
		return nil, fmt.Errorf("nftables in host netns: %w", err)
	}
	if err := reap(n.nl, n.nft, cfg.Name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if e := reap(n.nl, n.nft, cfg.Name); e != nil {
				err = errors.Join(err, fmt.Errorf("clean up after failed open: %w", e))
			}
		}
	}()
	if err := enableForwarding(); err != nil {
		return nil, err
	}
	if err := n.addBridge(); err != nil {
		return nil, err
	}
	if err := installTable(n.nft, cfg); err != nil {
		return nil, fmt.Errorf("install nftables table %s: %w", tableName(cfg.Name), err)
	}
	return n, nil
}

// enableForwarding writes only when needed: in a container /proc/sys is
// read-only, and the runtime may already have set it (Compose's sysctls).
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}

func (n *Network) addBridge() error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge}}
	if err := n.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", n.bridge, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.gateway, n.cfg.CIDR.Bits()))}
	if err := n.nl.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("address bridge %s: %w", n.bridge, err)
	}
	if err := n.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", n.bridge, err)
	}
	return nil
}

// Gateway is the bridge's address, the sandboxes' default route.
func (n *Network) Gateway() netip.Addr { return n.gateway }

// Attach gives the namespace nsFile refers to an eth0 on the bridge, with
// the next free address of the CIDR and a default route via the gateway.
// The namespace must not have an eth0 yet.
func (n *Network) Attach(nsFile *os.File) (_ Endpoint, err error) {
	n.life.RLock()
	defer n.life.RUnlock()
	if n.closed {
		return Endpoint{}, ErrClosed
	}
	n.mu.Lock()
	n.serial++
	serial := n.serial
	offset, ok := n.alloc.get(serial)
	n.mu.Unlock()
	if !ok {
		return Endpoint{}, fmt.Errorf("attach: all %v addresses in use", n.cfg.CIDR)
	}
	ep := Endpoint{addr: addrAt(n.cfg.CIDR, offset), link: vethName(n.cfg.Name, offset), serial: serial}
	defer func() {
		if err != nil {
			// Deleting the host end deletes the peer too.
			if e := n.delLink(ep.link); e != nil {
				err = errors.Join(err, e)
				return // keep the address: its eth0 may still exist
			}
			n.free(offset)
		}
	}()

	br, err := n.nl.LinkByName(n.bridge)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach: bridge %s: %w", n.bridge, err)
	}
	// The peer is born in the sandbox namespace as eth0: no temporary name
	// in the host namespace, nothing to move.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.link, MasterIndex: br.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(nsFile.Fd()),
	}
	if err := n.nl.LinkAdd(veth); err != nil {
		return Endpoint{}, fmt.Errorf("attach: add veth %s: %w", ep.link, err)
	}
	// Isolated ports reach the bridge (the gateway) but not each other.
	if err := n.nl.LinkSetIsolated(veth, true); err != nil {
		return Endpoint{}, fmt.Errorf("attach: isolate %s: %w", ep.link, err)
	}
	if err := n.nl.LinkSetUp(veth); err != nil {
		return Endpoint{}, fmt.Errorf("attach: bring %s up: %w", ep.link, err)
	}
	if err := n.configureSandbox(nsFile, ep.addr); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s: %w", ep.link, err)
	}
	return ep, nil
}

// configureSandbox addresses eth0 inside the sandbox namespace, brings it up
// and routes everything via the gateway.
func (n *Network) configureSandbox(nsFile *os.File, addr netip.Addr) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(nsFile.Fd()))
	if err != nil {
		return fmt.Errorf("netlink in sandbox netns: %w", err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0: %w", err)
	}
	a := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, n.cfg.CIDR.Bits()))}
	if err := h.AddrAdd(eth0, a); err != nil {
		return fmt.Errorf("address eth0: %w", err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bring eth0 up: %w", err)
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: n.gateway.AsSlice()}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	return nil
}

// Detach removes an endpoint's veth pair and frees its address. An
// endpoint whose namespace is already gone (which takes the pair with it)
// detaches without error, and so does any endpoint after Close, which
// removed them all, and one already detached.
func (n *Network) Detach(ep Endpoint) error {
	n.life.RLock()
	defer n.life.RUnlock()
	if n.closed {
		return nil
	}
	if !n.cfg.CIDR.Contains(ep.addr) {
		return fmt.Errorf("detach: %v is not an endpoint of %v", ep.addr, n.cfg.CIDR)
	}
	offset := offsetOf(n.cfg.CIDR, ep.addr)
	n.mu.Lock()
	if owner, ok := n.alloc.owner(offset); !ok || owner != ep.serial {
		n.mu.Unlock()
		return nil // detached before; the address may be someone else's now
	}
	n.alloc.setOwner(offset, detaching)
	n.mu.Unlock()
	if err := n.delLink(ep.link); err != nil {
		n.mu.Lock()
		n.alloc.setOwner(offset, ep.serial)
		n.mu.Unlock()
		return fmt.Errorf("detach %v: %w", ep.addr, err)
	}
	n.free(offset)
	return nil
}

func (n *Network) free(offset uint32) {
	n.mu.Lock()
	n.alloc.put(offset)
	n.mu.Unlock()
}

func (n *Network) delLink(name string) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := n.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Close removes the bridge, every veth and the table. Sandboxes still
// attached lose their eth0.
func (n *Network) Close() error {
	n.life.Lock()
	defer n.life.Unlock()
	if n.closed {
		return ErrClosed
	}
	n.closed = true
	err := reap(n.nl, n.nft, n.cfg.Name)
	n.closeSockets()
	return err
}

func (n *Network) closeSockets() {
	if n.nl != nil {
		n.nl.Close()
	}
	if n.nft != nil {
		_ = n.nft.CloseLasting()
	}
	n.hostNS.Close()
}

// Reap removes, from the calling thread's network namespace, the bridge,
// veths and table a Network of this name left behind (a killed worker's).
// Open does this itself; Reap is for a worker starting without egress.
func Reap(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hostNS, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer hostNS.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(hostNS.Fd()))
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(int(hostNS.Fd())))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	return reap(h, c, name)
}

func reap(h *netlink.Handle, c *nftables.Conn, name string) error {
	var errs []error
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		errs = append(errs, fmt.Errorf("list nftables tables: %w", err))
	}
	for _, t := range tables {
		if t.Name == tableName(name) {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				errs = append(errs, fmt.Errorf("delete table %s: %w", t.Name, err))
			}
		}
	}
	links, err := listLinks(h)
	if err != nil {
		errs = append(errs, err)
	}
	br := bridgeName(name)
	for _, l := range links {
		ln := l.Attrs().Name
		if ln != br && !strings.HasPrefix(ln, br+"-") {
			continue
		}
		// ENODEV: the veth went with its peer's namespace meanwhile.
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", ln, err))
		}
	}
	return errors.Join(errs...)
}

// listLinks retries a dump that links coming and going interrupted.
func listLinks(h *netlink.Handle) ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		links, err = h.LinkList()
		if err == nil {
			return links, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list links: %w", err)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func offsetOf(cidr netip.Prefix, a netip.Addr) uint32 {
	x, y := cidr.Addr().As4(), a.As4()
	v := func(b [4]byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	return v(y) - v(x)
}
