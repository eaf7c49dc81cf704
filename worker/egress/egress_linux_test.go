package egress_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/gustfaas/gust/internal/loopback"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/worker/egress"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Every test builds its own world of namespaces, with addresses from
// 10.77-79.0.0/24 (sandboxes) and 172.31.0.0/16 (the "outside"), and never
// touches the namespace the test runs in; guardRealNS checks that.
//
//	sandbox A ─┐                         remote: 172.31.0.2 on up0,
//	sandbox B ─┴ bridge ── host ── up0 ── up0   172.31.1.1, 172.31.3.1 on lo
//	          10.77.0.1     172.31.0.1
const (
	hostUp    = "172.31.0.1"
	remoteUp  = "172.31.0.2"
	remoteDen = "172.31.1.1" // in a Deny prefix
	remoteOth = "172.31.3.1" // allowed, another address of the remote

	blocked = 300 * time.Millisecond // a dropped SYN must give up by then
	reached = 5 * time.Second        // a working dial on a busy machine
)

// newNS makes a network namespace with loopback up, held by the file.
func newNS(t *testing.T) *os.File {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in another namespace, ends with the
		// goroutine instead of serving others.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		if err := loopback.Up(); err != nil {
			ch <- result{err: err}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		ch <- result{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new netns: %v", r.err)
	}
	t.Cleanup(func() { r.f.Close() })
	return r.f
}

// in runs fn on a thread inside ns; the thread dies afterwards.
func in(t *testing.T, ns *os.File, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, as in newNS
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func handle(t *testing.T, ns *os.File) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func addAddr(t *testing.T, h *netlink.Handle, link, cidr string) {
	t.Helper()
	l, err := h.LinkByName(link)
	must(t, "find "+link, err)
	a, err := netlink.ParseAddr(cidr)
	must(t, "parse "+cidr, err)
	must(t, "address "+link, h.AddrAdd(l, a))
	must(t, "up "+link, h.LinkSetUp(l))
}

// world is the host namespace (where the Network lives) joined to a remote
// namespace by a veth, with servers on the remote and on the host.
type world struct {
	host, remote *os.File
	hostNL       *netlink.Handle
}

func newWorld(t *testing.T) *world {
	t.Helper()
	guardRealNS(t)
	w := &world{host: newNS(t), remote: newNS(t)}
	w.hostNL = handle(t, w.host)
	remoteNL := handle(t, w.remote)
	must(t, "veth to remote", w.hostNL.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "up0"},
		PeerName:      "up0",
		PeerNamespace: netlink.NsFd(w.remote.Fd()),
	}))
	addAddr(t, w.hostNL, "up0", hostUp+"/24")
	addAddr(t, remoteNL, "up0", remoteUp+"/24")
	addAddr(t, remoteNL, "lo", remoteDen+"/32")
	addAddr(t, remoteNL, "lo", remoteOth+"/32")
	up0, err := w.hostNL.LinkByName("up0")
	must(t, "find up0", err)
	_, all, _ := net.ParseCIDR("172.31.0.0/16")
	must(t, "host route", w.hostNL.RouteAdd(&netlink.Route{
		LinkIndex: up0.Attrs().Index, Dst: all, Gw: net.ParseIP(remoteUp)}))
	// The remote's default route leads back to the host, so a remote
	// connection to a sandbox is stopped by policy, not by a missing route.
	rup0, err := remoteNL.LinkByName("up0")
	must(t, "find remote up0", err)
	must(t, "remote default route", remoteNL.RouteAdd(&netlink.Route{
		LinkIndex: rup0.Attrs().Index, Gw: net.ParseIP(hostUp)}))
	for _, port := range []string{"8080", "8081"} {
		serve(t, w.remote, "0.0.0.0:"+port)
	}
	serve(t, w.host, "0.0.0.0:8080")
	return w
}

// serve answers every TCP connection and UDP datagram on addr, inside ns,
// with the address it came from, so a client learns how it was seen.
func serve(t *testing.T, ns *os.File, addr string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	var err error
	in(t, ns, func() {
		if ln, err = net.Listen("tcp4", addr); err != nil {
			return
		}
		pc, err = net.ListenPacket("udp4", addr)
	})
	must(t, "listen "+addr, err)
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, c.RemoteAddr())
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.String()+"\n"), from)
		}
	}()
}

// dial connects from inside ns and returns the address the server saw.
func dial(t *testing.T, ns *os.File, network, addr string, timeout time.Duration) (seen string, err error) {
	t.Helper()
	in(t, ns, func() {
		var c net.Conn
		c, err = net.DialTimeout(network, addr, timeout)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if network == "udp4" {
			if _, err = c.Write([]byte("hi")); err != nil {
				return
			}
		}
		seen, err = bufio.NewReader(c).ReadString('\n')
	})
	if err != nil {
		return "", err
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(seen))
	if err != nil {
		return "", fmt.Errorf("server answered %q: %w", seen, err)
	}
	return ap.Addr().String(), nil
}

func mustReach(t *testing.T, ns *os.File, network, addr, seenAs string) {
	t.Helper()
	seen, err := dial(t, ns, network, addr, reached)
	if err != nil {
		t.Fatalf("%s %s: %v, want it reached", network, addr, err)
	}
	if seenAs != "" && seen != seenAs {
		t.Fatalf("%s %s: server saw %s, want %s", network, addr, seen, seenAs)
	}
}

// mustBlock wants a timeout: the packet silently dropped, not refused nor
// unroutable (which would mean the test's world is wrong, not the policy).
func mustBlock(t *testing.T, ns *os.File, network, addr string) {
	t.Helper()
	start := time.Now()
	seen, err := dial(t, ns, network, addr, blocked)
	var ne net.Error
	if err == nil {
		t.Fatalf("%s %s: reached (server saw %s), want it blocked", network, addr, seen)
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s %s: %v, want a timeout (a dropped packet)", network, addr, err)
	}
	if d := time.Since(start); d > 3*blocked {
		t.Fatalf("%s %s: gave up after %v, want about %v", network, addr, d, blocked)
	}
}

// setBridgeNF sets whether bridged IPv4 passes the inet hooks, in ns only
// (the setting is per namespace); false if this kernel has no br_netfilter.
func setBridgeNF(t *testing.T, ns *os.File, v string) bool {
	t.Helper()
	var err error
	in(t, ns, func() { err = os.WriteFile(bridgeNF, []byte(v), 0o644) })
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	must(t, "set "+bridgeNF, err)
	return true
}

const bridgeNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// guardRealNS fails the test if the namespace it runs in changed: links,
// nftables tables, IPv4 forwarding or br_netfilter.
func guardRealNS(t *testing.T) {
	t.Helper()
	snap := func() string {
		links, err := netlink.LinkList()
		must(t, "list real links", err)
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		c, err := nftables.New()
		must(t, "nftables", err)
		tables, err := c.ListTables()
		must(t, "list real tables", err)
		for _, tb := range tables {
			names = append(names, "table "+tb.Name)
		}
		fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		must(t, "read ip_forward", err)
		brnf, _ := os.ReadFile(bridgeNF) // absent without br_netfilter
		slices.Sort(names)
		return fmt.Sprintf("%v ip_forward=%s bridge-nf-call-iptables=%s", names,
			strings.TrimSpace(string(fwd)), strings.TrimSpace(string(brnf)))
	}
	before := snap()
	t.Cleanup(func() {
		if after := snap(); after != before {
			t.Errorf("the test's own namespace changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func open(t *testing.T, w *world, cfg egress.Config) *egress.Network {
	t.Helper()
	var n *egress.Network
	var err error
	in(t, w.host, func() { n, err = egress.Open(cfg) })
	must(t, "open "+cfg.Name, err)
	t.Cleanup(func() {
		if err := n.Close(); err != nil && !errors.Is(err, egress.ErrClosed) {
			t.Errorf("close %s: %v", cfg.Name, err)
		}
	})
	return n
}

func attach(t *testing.T, n *egress.Network) (*os.File, egress.Endpoint) {
	t.Helper()
	ns := newNS(t)
	ep, err := n.Attach(ns)
	must(t, "attach", err)
	return ns, ep
}

func TestEgressPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	w := newWorld(t)
	n := open(t, w, egress.Config{
		Name:      "pol",
		CIDR:      netip.MustParsePrefix("10.77.0.0/24"),
		Deny:      []netip.Prefix{netip.MustParsePrefix("172.31.1.0/24")},
		DenyPorts: []netip.AddrPort{netip.MustParseAddrPort(remoteUp + ":8081")},
	})
	a, epA := attach(t, n)
	b, epB := attach(t, n)
	cidr := netip.MustParsePrefix("10.77.0.0/24")
	if !cidr.Contains(epA.Addr()) || epA.Addr() == epB.Addr() || epA.Addr() == n.Gateway() || epB.Addr() == n.Gateway() {
		t.Fatalf("addresses A %v, B %v, gateway %v: want two distinct sandbox addresses in %v",
			epA.Addr(), epB.Addr(), n.Gateway(), cidr)
	}
	self := func(ep egress.Endpoint) string { return netip.AddrPortFrom(ep.Addr(), 8080).String() }

	t.Run("outbound through NAT", func(t *testing.T) {
		for _, ns := range []*os.File{a, b} {
			mustReach(t, ns, "tcp4", remoteUp+":8080", hostUp)
			mustReach(t, ns, "udp4", remoteUp+":8080", hostUp)
			mustReach(t, ns, "tcp4", remoteOth+":8080", hostUp)
		}
	})
	t.Run("deny prefix", func(t *testing.T) {
		mustBlock(t, a, "tcp4", remoteDen+":8080")
		mustBlock(t, a, "udp4", remoteDen+":8080")
		mustReach(t, w.host, "tcp4", remoteDen+":8080", "") // it is there
	})
	t.Run("deny port", func(t *testing.T) {
		mustBlock(t, a, "tcp4", remoteUp+":8081")
		mustBlock(t, a, "udp4", remoteUp+":8081")
		mustReach(t, a, "tcp4", remoteUp+":8080", hostUp)
		mustReach(t, w.host, "tcp4", remoteUp+":8081", "")
	})
	t.Run("host addresses", func(t *testing.T) {
		gw := netip.AddrPortFrom(n.Gateway(), 8080).String()
		mustBlock(t, a, "tcp4", gw)
		mustBlock(t, a, "udp4", gw)
		mustBlock(t, a, "tcp4", hostUp+":8080")
		mustReach(t, w.host, "tcp4", gw, "")
		mustReach(t, w.remote, "tcp4", hostUp+":8080", "")
	})
	t.Run("other sandbox", func(t *testing.T) {
		serve(t, b, "0.0.0.0:8080")
		mustReach(t, b, "tcp4", self(epB), "")
		// On the link, port isolation stops it. Where br_netfilter passes
		// bridged packets to the forward chain, that chain would too; turn
		// it off in the host namespace to see isolation alone.
		mustBlock(t, a, "tcp4", self(epB))
		if setBridgeNF(t, w.host, "0") {
			mustBlock(t, a, "tcp4", self(epB))
			setBridgeNF(t, w.host, "1")
		}
		// Routed through the gateway both ways instead (a sandbox with
		// CAP_NET_ADMIN could do this): the forward chain stops it.
		viaGateway(t, a, epB.Addr(), n.Gateway())
		viaGateway(t, b, epA.Addr(), n.Gateway())
		mustBlock(t, a, "tcp4", self(epB))
	})
	t.Run("no spoofed source", func(t *testing.T) {
		// A sink on the remote sees datagrams whether or not a reply could
		// come back, so an unmasqueraded spoofed one would show.
		var sink net.PacketConn
		var err error
		in(t, w.remote, func() { sink, err = net.ListenPacket("udp4", "0.0.0.0:9999") })
		must(t, "listen sink", err)
		t.Cleanup(func() { sink.Close() })
		h := handle(t, a)
		eth0, err := h.LinkByName("eth0")
		must(t, "find eth0", err)
		spoof, _ := netlink.ParseAddr("10.99.0.5/32")
		must(t, "spoofed address", h.AddrAdd(eth0, spoof))
		send := func(from string) {
			in(t, a, func() {
				var c *net.UDPConn
				c, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from+":0")),
					net.UDPAddrFromAddrPort(netip.MustParseAddrPort(remoteUp+":9999")))
				if err == nil {
					_, err = c.Write([]byte(from))
					c.Close()
				}
			})
			must(t, "send from "+from, err)
		}
		recv := func(wait time.Duration) (string, string, error) {
			buf := make([]byte, 64)
			_ = sink.SetReadDeadline(time.Now().Add(wait))
			n, src, err := sink.ReadFrom(buf)
			if err != nil {
				return "", "", err
			}
			return string(buf[:n]), src.(*net.UDPAddr).AddrPort().Addr().String(), nil
		}
		send("10.99.0.5")
		if body, src, err := recv(blocked); err == nil {
			t.Fatalf("datagram %q sent from a spoofed address arrived from %s, want it dropped", body, src)
		}
		send(epA.Addr().String())
		if body, src, err := recv(reached); err != nil || src != hostUp || body != epA.Addr().String() {
			t.Fatalf("datagram from %v: got %q from %s, %v; want it from %s", epA.Addr(), body, src, err, hostUp)
		}
	})
	t.Run("no inbound", func(t *testing.T) {
		serve(t, a, "0.0.0.0:8080")
		mustReach(t, a, "tcp4", self(epA), "")
		mustBlock(t, w.remote, "tcp4", self(epA))
		mustBlock(t, w.remote, "udp4", self(epA))
	})
}

// viaGateway routes dst from inside ns through gw instead of on the link.
func viaGateway(t *testing.T, ns *os.File, dst, gw netip.Addr) {
	t.Helper()
	h := handle(t, ns)
	eth0, err := h.LinkByName("eth0")
	must(t, "find eth0", err)
	must(t, "route via gateway", h.RouteAdd(&netlink.Route{
		LinkIndex: eth0.Attrs().Index,
		Dst:       &net.IPNet{IP: dst.AsSlice(), Mask: net.CIDRMask(32, 32)},
		Gw:        gw.AsSlice(),
	}))
}

func TestEgressAllowOnly(t *testing.T) {
	testutil.RequireRoot(t)
	w := newWorld(t)
	// Two Networks side by side in one host: each table minds its own bridge.
	some := open(t, w, egress.Config{
		Name:      "some",
		CIDR:      netip.MustParsePrefix("10.78.0.0/24"),
		AllowOnly: []netip.Prefix{netip.MustParsePrefix("172.31.3.0/24")},
	})
	none := open(t, w, egress.Config{
		Name:      "none",
		CIDR:      netip.MustParsePrefix("10.79.0.0/24"),
		AllowOnly: []netip.Prefix{},
	})
	s, _ := attach(t, some)
	mustReach(t, s, "tcp4", remoteOth+":8080", hostUp)
	mustBlock(t, s, "tcp4", remoteUp+":8080")
	mustBlock(t, s, "udp4", remoteUp+":8080")
	z, _ := attach(t, none)
	mustBlock(t, z, "tcp4", remoteOth+":8080")
	mustBlock(t, z, "tcp4", remoteUp+":8080")
}

// leftovers lists what a Network of this name has in the host namespace.
func leftovers(t *testing.T, w *world, name string) []string {
	t.Helper()
	var out []string
	links, err := w.hostNL.LinkList()
	must(t, "list host links", err)
	for _, l := range links {
		if ln := l.Attrs().Name; ln == "gu"+name || strings.HasPrefix(ln, "gu"+name+"-") {
			out = append(out, "link "+ln)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(w.host.Fd())))
	must(t, "nftables in host", err)
	tables, err := c.ListTables()
	must(t, "list host tables", err)
	for _, tb := range tables {
		if strings.HasSuffix(tb.Name, "-"+name) {
			out = append(out, "table "+tb.Name)
		}
	}
	return out
}

func hasEth0(t *testing.T, ns *os.File) bool {
	t.Helper()
	_, err := handle(t, ns).LinkByName("eth0")
	if err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Fatalf("find eth0: %v", err)
	}
	return err == nil
}

func TestEgressCleanup(t *testing.T) {
	testutil.RequireRoot(t)
	w := newWorld(t)
	cfg := egress.Config{Name: "cl", CIDR: netip.MustParsePrefix("10.77.0.0/24")}

	t.Run("detach and close", func(t *testing.T) {
		n := open(t, w, cfg)
		if got := leftovers(t, w, cfg.Name); len(got) != 2 {
			t.Fatalf("after open: %v, want the bridge and the table", got)
		}
		a, epA := attach(t, n)
		b, epB := attach(t, n)
		mustReach(t, a, "tcp4", remoteUp+":8080", hostUp)
		must(t, "detach A", n.Detach(epA))
		if hasEth0(t, a) {
			t.Fatal("A keeps an eth0 after Detach")
		}
		if _, err := w.hostNL.LinkByName(epA.HostLink()); err == nil {
			t.Fatalf("%s still in the host after Detach", epA.HostLink())
		}
		mustReach(t, b, "tcp4", remoteUp+":8080", hostUp)
		must(t, "close", n.Close())
		if got := leftovers(t, w, cfg.Name); len(got) != 0 {
			t.Fatalf("after close: %v left", got)
		}
		if hasEth0(t, b) {
			t.Fatal("B keeps an eth0 after Close")
		}
		must(t, "detach after close", n.Detach(epB))
		if _, err := n.Attach(b); !errors.Is(err, egress.ErrClosed) {
			t.Fatalf("attach after close: %v, want ErrClosed", err)
		}
	})

	t.Run("address reused", func(t *testing.T) {
		// A /30 has one sandbox address: C gets A's, and A's veth name.
		n := open(t, w, egress.Config{Name: "one", CIDR: netip.MustParsePrefix("10.77.1.0/30")})
		_, epA := attach(t, n)
		if _, err := n.Attach(newNS(t)); err == nil {
			t.Fatal("a second attach to a /30 succeeded, want no address left")
		}
		must(t, "detach A", n.Detach(epA))
		c, epC := attach(t, n)
		if epC.Addr() != epA.Addr() || epC.HostLink() != epA.HostLink() {
			t.Fatalf("C got %v on %s, want A's %v on %s", epC.Addr(), epC.HostLink(), epA.Addr(), epA.HostLink())
		}
		must(t, "stale detach of A", n.Detach(epA))
		mustReach(t, c, "tcp4", remoteUp+":8080", hostUp)
	})

	t.Run("detach after the sandbox is gone", func(t *testing.T) {
		n := open(t, w, cfg)
		a := newNS(t)
		ep, err := n.Attach(a)
		must(t, "attach", err)
		a.Close() // the namespace goes, and its veth pair with it
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := w.hostNL.LinkByName(ep.HostLink()); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s outlived its namespace", ep.HostLink())
			}
			time.Sleep(10 * time.Millisecond)
		}
		must(t, "detach", n.Detach(ep))
	})

	t.Run("open after a crash", func(t *testing.T) {
		old := open(t, w, cfg)
		stale, _ := attach(t, old)
		old.Abandon() // killed: nothing removed
		if got := leftovers(t, w, cfg.Name); len(got) != 3 {
			t.Fatalf("after the crash: %v, want bridge, veth and table", got)
		}
		n := open(t, w, cfg)
		if got := leftovers(t, w, cfg.Name); len(got) != 2 {
			t.Fatalf("after reopening: %v, want only the new bridge and table", got)
		}
		if hasEth0(t, stale) {
			t.Fatal("the crashed run's sandbox keeps its eth0")
		}
		a, _ := attach(t, n)
		mustReach(t, a, "tcp4", remoteUp+":8080", hostUp)
		must(t, "close", n.Close())
		if got := leftovers(t, w, cfg.Name); len(got) != 0 {
			t.Fatalf("after close: %v left", got)
		}
	})

	t.Run("reap after a crash", func(t *testing.T) {
		old := open(t, w, cfg)
		attach(t, old)
		old.Abandon()
		var err error
		in(t, w.host, func() { err = egress.Reap(cfg.Name) })
		must(t, "reap", err)
		if got := leftovers(t, w, cfg.Name); len(got) != 0 {
			t.Fatalf("after reap: %v left", got)
		}
	})
}
