package egress

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The rules are built from these few matchers; each appends the expressions
// of one "selector op value" to a rule, all in register 1.

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func matchIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

func iif(op expr.CmpOp, name string) []expr.Any { return matchIfname(expr.MetaKeyIIFNAME, op, name) }
func oif(op expr.CmpOp, name string) []expr.Any { return matchIfname(expr.MetaKeyOIFNAME, op, name) }

func nfproto(op expr.CmpOp, proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte{proto}},
	}
}

// ip4 matches the IPv4 source (offset 12) or destination (16) against a
// prefix; the rule must already have matched nfproto ipv4.
func ip4(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	addr := p.Addr().As4()
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: addr[:]},
	}
}

func saddr(op expr.CmpOp, p netip.Prefix) []expr.Any { return ip4(12, op, p) }
func daddr(op expr.CmpOp, p netip.Prefix) []expr.Any { return ip4(16, op, p) }

// dport matches a TCP or UDP destination port (both at offset 2).
func dport(l4 byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

var (
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
	drop   = &expr.Verdict{Kind: expr.VerdictDrop}
)

func rule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(v expr.Any) []expr.Any { return []expr.Any{v} }

// forwardRules is the forward chain, in order. The chain's policy is
// accept: it decides only for traffic to and from the bridge and leaves
// everything else on the host to whatever else filters it.
func forwardRules(cfg Config, br string) [][]expr.Any {
	v4 := nfproto(expr.CmpOpEq, unix.NFPROTO_IPV4)
	fromBr := iif(expr.CmpOpEq, br)
	rules := [][]expr.Any{
		// Replies, in both directions, skip the per-destination checks
		// below, which the connection's first packet passed.
		rule(ctEstablished(), verdict(accept)),
		// Nothing opens a connection into the sandboxes: not the outside,
		// not one sandbox through the gateway to another.
		rule(oif(expr.CmpOpEq, br), verdict(drop)),
		// Sandboxes get IPv4 only, and only from their own addresses.
		rule(fromBr, nfproto(expr.CmpOpNeq, unix.NFPROTO_IPV4), verdict(drop)),
		rule(fromBr, v4, saddr(expr.CmpOpNeq, cfg.CIDR), verdict(drop)),
	}
	for _, p := range cfg.Deny {
		if p.Addr().Is4() {
			rules = append(rules, rule(fromBr, v4, daddr(expr.CmpOpEq, p), verdict(drop)))
		}
	}
	for _, ap := range cfg.DenyPorts {
		if !ap.Addr().Unmap().Is4() {
			continue
		}
		host := netip.PrefixFrom(ap.Addr().Unmap(), 32)
		for _, l4 := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			rules = append(rules, rule(fromBr, v4, daddr(expr.CmpOpEq, host), dport(l4, ap.Port()), verdict(drop)))
		}
	}
	if cfg.AllowOnly != nil {
		for _, p := range cfg.AllowOnly {
			rules = append(rules, rule(fromBr, v4, daddr(expr.CmpOpEq, p), verdict(accept)))
		}
		rules = append(rules, rule(fromBr, verdict(drop)))
	}
	return rules
}

// inputRules is the input chain: a sandbox reaches no address of the host
// (the gateway, the host's other interfaces, anything local), over any
// protocol. ARP is not IP and still resolves the gateway.
func inputRules(br string) [][]expr.Any {
	return [][]expr.Any{rule(iif(expr.CmpOpEq, br), verdict(drop))}
}

// natRules is the postrouting chain: sandbox traffic leaving through any
// interface but the bridge takes that interface's address.
func natRules(cfg Config, br string) [][]expr.Any {
	return [][]expr.Any{rule(
		nfproto(expr.CmpOpEq, unix.NFPROTO_IPV4),
		saddr(expr.CmpOpEq, cfg.CIDR),
		oif(expr.CmpOpNeq, br),
		verdict(&expr.Masq{}),
	)}
}

// installTable adds the table with its three chains in one transaction.
func installTable(c *nftables.Conn, cfg Config) error {
	br := bridgeName(cfg.Name)
	t := c.AddTable(&nftables.Table{Name: tableName(cfg.Name), Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	chains := []struct {
		chain *nftables.Chain
		rules [][]expr.Any
	}{
		{&nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}, forwardRules(cfg, br)},
		{&nftables.Chain{Name: "input", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter}, inputRules(br)},
		{&nftables.Chain{Name: "postrouting", Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}, natRules(cfg, br)},
	}
	for _, ch := range chains {
		ch.chain.Table = t
		ch.chain.Policy = &accept
		c.AddChain(ch.chain)
		for _, r := range ch.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch.chain, Exprs: r})
		}
	}
	return c.Flush()
}
