package worker

import (
	"testing"
)

func TestRetireFunctionTakesIdleAndMarksBusy(t *testing.T) {
	p := newPool()
	mk := func(id, name string) *instance { return &instance{id: id, key: name + "\x00k", name: name} }
	idle, other, busy := mk("s1", "acme.fn"), mk("s2", "acme.other"), mk("s3", "acme.fn")
	p.put(idle)
	p.put(other)
	p.markBusy(busy)
	got := p.retireFunction("acme.fn")
	if len(got) != 1 || got[0] != idle {
		t.Fatalf("retired %v, want the idle sandbox of acme.fn", got)
	}
	if p.count(other.key) != 1 {
		t.Fatal("another function's sandbox was retired")
	}
	if p.put(busy) {
		t.Fatal("a busy sandbox of the deleted function went back to the pool")
	}
	if inst, _ := p.take(busy.key); inst != nil {
		t.Fatal("the deleted function's sandbox can still be taken")
	}
}
