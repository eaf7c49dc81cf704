package sandbox

import (
	"os"
	"testing"
)

func TestUIDPool(t *testing.T) {
	p := newUIDPool("", 0)
	a, _ := p.get()
	b, _ := p.get()
	if a == b || !IsSandboxUID(a) || !IsSandboxUID(b) {
		t.Fatalf("got %d and %d", a, b)
	}
	p.put(a)
	if c, _ := p.get(); c == a {
		t.Fatalf("freed uid %d handed out again at once", a)
	}
	// Full: every uid in use, then one freed is found wherever it is.
	p = newUIDPool("", 77)
	for range UIDCount {
		if _, err := p.get(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.get(); err != errNoUID {
		t.Fatalf("get from a full pool: %v", err)
	}
	p.put(UIDBase + 12345)
	if u, err := p.get(); err != nil || u != UIDBase+12345 {
		t.Fatalf("get after a put: %d %v", u, err)
	}
	if IsSandboxUID(0) || IsSandboxUID(993) || IsSandboxUID(UIDBase+UIDCount) {
		t.Fatal("IsSandboxUID takes a uid outside the range")
	}
}

// TestUIDPoolsShareAHost: two pools (two workers) on one lock directory
// never hold the same uid, even starting at the same offset; a uid one
// frees is the other's to take.
func TestUIDPoolsShareAHost(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := newUIDPool(dir, 5), newUIDPool(dir, 5)
	held := map[int]bool{}
	for range 50 {
		for _, p := range []*uidPool{p1, p2} {
			u, err := p.get()
			if err != nil {
				t.Fatal(err)
			}
			if held[u] {
				t.Fatalf("uid %d handed out twice", u)
			}
			held[u] = true
		}
	}
	p1.put(UIDBase + 5)
	p2.next = 5
	if u, _ := p2.get(); u != UIDBase+5 {
		t.Fatalf("after p1 freed %d, p2 got %d", UIDBase+5, u)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
