package workerapi

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPoolKeyCoversCodeAndConfiguration: a sandbox is reused only for the
// exact function it was made for. Each change below must give another
// key, or an invocation could run in a sandbox with other code or another
// environment (a re-created function's, a forged request's).
func TestPoolKeyCoversCodeAndConfiguration(t *testing.T) {
	base := FunctionSpec{Name: "acme.fn", Version: "$LATEST", Revision: 1, Incarnation: 7, CodeDigest: strings.Repeat("a", 64),
		Handler: "bootstrap", MemoryMB: 128, Timeout: 3 * time.Second, Env: map[string]string{"DB_PASSWORD": "old", "X": "1"}}
	same := base
	same.Env = map[string]string{"X": "1", "DB_PASSWORD": "old"}
	if PoolKey(base) != PoolKey(same) {
		t.Fatal("the same function got two keys")
	}
	for what, change := range map[string]func(*FunctionSpec){
		"name":        func(f *FunctionSpec) { f.Name = "bob.fn" },
		"version":     func(f *FunctionSpec) { f.Version = "1" },
		"revision":    func(f *FunctionSpec) { f.Revision = 2 },
		"incarnation": func(f *FunctionSpec) { f.Incarnation = 8 },
		"digest":      func(f *FunctionSpec) { f.CodeDigest = strings.Repeat("0", 64) },
		"handler":     func(f *FunctionSpec) { f.Handler = "other" },
		"memory":      func(f *FunctionSpec) { f.MemoryMB = 256 },
		"timeout":     func(f *FunctionSpec) { f.Timeout = time.Second },
		"env value":   func(f *FunctionSpec) { f.Env = map[string]string{"DB_PASSWORD": "new", "X": "1"} },
		"env split":   func(f *FunctionSpec) { f.Env = map[string]string{"DB_PASSWORD": "old\x00X=1"} },
	} {
		f := base
		change(&f)
		if PoolKey(f) == PoolKey(base) {
			t.Errorf("changing the %s kept the key", what)
		}
	}
}

func TestSpecValidateRefusesPathsAndBadDigests(t *testing.T) {
	ok := FunctionSpec{Name: "acme.fn", CodeDigest: strings.Repeat("a", 64)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []FunctionSpec{
		{Name: "../../../../tmp/x", CodeDigest: ok.CodeDigest},
		{Name: "acme.a/b", CodeDigest: ok.CodeDigest},
		{Name: "", CodeDigest: ok.CodeDigest},
		{Name: "acme.fn", CodeDigest: "../" + strings.Repeat("a", 61)},
		{Name: "acme.fn", CodeDigest: strings.Repeat("A", 64)},
	} {
		if err := f.Validate(); !errors.Is(err, ErrInvalidFunction) {
			t.Errorf("%q / %q: %v, want ErrInvalidFunction", f.Name, f.CodeDigest, err)
		}
	}
}

func BenchmarkPoolKey(b *testing.B) {
	fn := FunctionSpec{Name: "acme.fn", Version: "$LATEST", Revision: 3, Incarnation: 7, CodeDigest: strings.Repeat("a", 64),
		Handler: "bootstrap", MemoryMB: 128, Timeout: 3 * time.Second, Env: map[string]string{"DB_PASSWORD": "x", "REGION": "eu"}}
	for b.Loop() {
		PoolKey(fn)
	}
}
