package tenant

import "testing"

func TestNames(t *testing.T) {
	cases := []struct {
		tenant, name, stored string
	}{
		{"", "hello", "hello"},
		{"acme", "hello", "acme.hello"},
		{"a-1_b", "x_y-z", "a-1_b.x_y-z"},
	}
	for _, c := range cases {
		if got := Qualify(c.tenant, c.name); got != c.stored {
			t.Errorf("Qualify(%q, %q) = %q, want %q", c.tenant, c.name, got, c.stored)
		}
		tn, n := Split(c.stored)
		if tn != c.tenant || n != c.name {
			t.Errorf("Split(%q) = %q, %q", c.stored, tn, n)
		}
		if Bare(c.stored) != c.name {
			t.Errorf("Bare(%q) = %q", c.stored, Bare(c.stored))
		}
		if back, ok := Unqualify(c.tenant, c.stored); !ok || back != c.name {
			t.Errorf("Unqualify(%q, %q) = %q, %v", c.tenant, c.stored, back, ok)
		}
	}
}

// One tenant never owns another's names, nor root's, nor a name that only
// starts like its own.
func TestOwns(t *testing.T) {
	cases := []struct {
		tenant, stored string
		want           bool
	}{
		{"acme", "acme.fn", true},
		{"acme", "acmex.fn", false},
		{"acme", "acme", false},
		{"acme", "fn", false},
		{"acme", "other.fn", false},
		{"", "acme.fn", false},
	}
	for _, c := range cases {
		if got := Owns(c.tenant, c.stored); got != c.want {
			t.Errorf("Owns(%q, %q) = %v, want %v", c.tenant, c.stored, got, c.want)
		}
		if _, ok := Unqualify(c.tenant, c.stored); c.tenant != "" && ok != c.want {
			t.Errorf("Unqualify(%q, %q) ok = %v, want %v", c.tenant, c.stored, ok, c.want)
		}
	}
	// A name smuggling a separator lands in the caller's own namespace.
	if _, ok := Unqualify("other", Qualify("other", "acme.fn")); !ok {
		t.Error("a qualified name left its tenant")
	}
	if Owns("acme", Qualify("other", "acme.fn")) {
		t.Error("other's name with a dot is acme's")
	}
}

func TestValid(t *testing.T) {
	for _, good := range []string{"a", "acme", "team-1", "t_2", "0abc"} {
		if !Valid(good) {
			t.Errorf("%q refused", good)
		}
	}
	for _, bad := range []string{"", "Acme", "a.b", "a/b", "-a", "_a", "a b", "abcdefghijklmnopqrstuvwxyz0123456"} {
		if Valid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStripText(t *testing.T) {
	if got := StripText("acme", "function not found: acme.fn:2"); got != "function not found: fn:2" {
		t.Errorf("got %q", got)
	}
	if got := StripText("", "function not found: fn"); got != "function not found: fn" {
		t.Errorf("got %q", got)
	}
}

func TestValidStored(t *testing.T) {
	for name, want := range map[string]bool{
		"hello": true, "acme.hello": true, "a-b_C9": true, "acme.Hello-1": true,
		"": false, ".hello": false, "acme.": false, "../../../../tmp/x": false, "acme.../x": false,
		"a/b": false, "Acme.hello": false, "acme.b.c": false, "x\x00y": false,
		"n234567890123456789012345678901234567890123456789012345678901234":  true,
		"n2345678901234567890123456789012345678901234567890123456789012345": false,
	} {
		if got := ValidStored(name); got != want {
			t.Errorf("ValidStored(%q) = %v, want %v", name, got, want)
		}
	}
}
