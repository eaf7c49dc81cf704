package egress

import (
	"net/netip"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Name: "w1", CIDR: netip.MustParsePrefix("10.77.0.0/16")}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"empty name", func(c *Config) { c.Name = "" }, false},
		{"long name", func(c *Config) { c.Name = "abcdefgh" }, false},
		{"upper name", func(c *Config) { c.Name = "W1" }, false},
		{"ipv6 cidr", func(c *Config) { c.CIDR = netip.MustParsePrefix("fd00::/64") }, false},
		{"too big", func(c *Config) { c.CIDR = netip.MustParsePrefix("10.0.0.0/8") }, false},
		{"too small", func(c *Config) { c.CIDR = netip.MustParsePrefix("10.0.0.0/31") }, false},
		{"host bits", func(c *Config) { c.CIDR = netip.MustParsePrefix("10.77.0.1/16") }, false},
		{"deny v6 ok", func(c *Config) { c.Deny = []netip.Prefix{netip.MustParsePrefix("fe80::/10")} }, true},
		{"port zero", func(c *Config) { c.DenyPorts = []netip.AddrPort{netip.MustParseAddrPort("10.1.1.1:0")} }, false},
		{"allow v6", func(c *Config) { c.AllowOnly = []netip.Prefix{netip.MustParsePrefix("fd00::/8")} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := c.validate()
			if (err == nil) != tt.ok {
				t.Fatalf("validate: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	c := good
	c.Deny = []netip.Prefix{netip.MustParsePrefix("172.31.1.9/24")}
	got, err := c.validate()
	if err != nil || got.Deny[0] != netip.MustParsePrefix("172.31.1.0/24") {
		t.Fatalf("validate masks Deny: got %v, %v", got.Deny, err)
	}
}

func TestAllocator(t *testing.T) {
	cidr := netip.MustParsePrefix("10.77.0.0/29") // offsets 2..6
	a := newAllocator(cidr)
	var got []uint32
	for {
		o, ok := a.get(1)
		if !ok {
			break
		}
		got = append(got, o)
	}
	if len(got) != 5 || got[0] != 2 || got[4] != 6 {
		t.Fatalf("offsets %v, want 2..6", got)
	}
	a.put(3)
	a.put(5)
	if o, _ := a.get(1); o != 3 {
		t.Fatalf("after freeing 3 and 5 got %d, want 3 (wrapping round)", o)
	}
	if o, _ := a.get(1); o != 5 {
		t.Fatalf("next got %d, want 5", o)
	}
	if addrAt(cidr, 6) != netip.MustParseAddr("10.77.0.6") || gateway(cidr) != netip.MustParseAddr("10.77.0.1") {
		t.Fatal("addrAt/gateway wrong")
	}
	if n := vethName("abcdefg", 65534); len(n) > 15 {
		t.Fatalf("veth name %q longer than IFNAMSIZ-1", n)
	}
}
