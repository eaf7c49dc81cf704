package sandbox

import "testing"

func TestUIDPool(t *testing.T) {
	p := newUIDPool()
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
	p = newUIDPool()
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
