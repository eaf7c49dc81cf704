package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// check verifies the index invariants that Pick relies on: every posting
// entry is in its worker's map at the recorded position, idle entries are
// listed exactly when their count is positive, and name/slot/live agree.
func (p *Placer) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, idx := range []struct {
		name string
		m    map[string]*posting
		warm bool
	}{{"keys", p.keys, true}, {"digests", p.digests, false}} {
		for k, ps := range idx.m {
			if len(ps.e) == 0 && !idx.warm {
				return fmt.Errorf("%s[%q]: empty posting kept", idx.name, k)
			}
			seen := map[int32]bool{}
			for i, e := range ps.e {
				if e.pos != int32(i) {
					return fmt.Errorf("%s[%q][%d]: pos %d", idx.name, k, i, e.pos)
				}
				if seen[e.slot] {
					return fmt.Errorf("%s[%q]: slot %d twice", idx.name, k, e.slot)
				}
				seen[e.slot] = true
				w := &p.workers[e.slot]
				if !w.used {
					return fmt.Errorf("%s[%q]: slot %d unused", idx.name, k, e.slot)
				}
				own := w.digests
				if idx.warm {
					own = w.idle
					if e.count <= 0 {
						return fmt.Errorf("%s[%q]: %s listed with count %d", idx.name, k, w.name, e.count)
					}
				}
				if own[k] != e {
					return fmt.Errorf("%s[%q]: %s's map does not hold the entry", idx.name, k, w.name)
				}
			}
		}
	}
	used := 0
	for slot := range p.workers {
		w := &p.workers[slot]
		if !w.used {
			continue
		}
		used++
		if p.byName[w.name] != int32(slot) {
			return fmt.Errorf("byName[%q] = %d, want %d", w.name, p.byName[w.name], slot)
		}
		if p.live[w.livePos] != int32(slot) {
			return fmt.Errorf("live[%d] = %d, want %d", w.livePos, p.live[w.livePos], slot)
		}
		for k, e := range w.idle {
			if e.slot != int32(slot) {
				return fmt.Errorf("%s idle[%q]: slot %d", w.name, k, e.slot)
			}
			if (e.count > 0) != (e.pos >= 0) {
				return fmt.Errorf("%s idle[%q]: count %d pos %d", w.name, k, e.count, e.pos)
			}
			if e.pos >= 0 && (p.keys[k] == nil || p.keys[k].e[e.pos] != e) {
				return fmt.Errorf("%s idle[%q]: not at its posting position", w.name, k)
			}
		}
		for d, e := range w.digests {
			if e.slot != int32(slot) || e.pos < 0 || p.digests[d] == nil || p.digests[d].e[e.pos] != e {
				return fmt.Errorf("%s digests[%q]: not at its posting position", w.name, d)
			}
		}
	}
	if used != len(p.live) || used != len(p.byName) {
		return fmt.Errorf("%d used slots, %d live, %d names", used, len(p.live), len(p.byName))
	}
	return nil
}

func mustCheck(t *testing.T, p *Placer) {
	t.Helper()
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
}

func newPlacer(t *testing.T, states ...WorkerState) *Placer {
	t.Helper()
	p := New(1)
	for _, s := range states {
		p.Update(s)
	}
	mustCheck(t, p)
	return p
}

func TestPickTiers(t *testing.T) {
	type pick struct {
		key, digest string
		mem         int64
	}
	std := pick{"fn:1", "d1", 512}
	tests := []struct {
		name        string
		states      []WorkerState
		unavailable []string
		avoid       []string
		pick        pick
		want        []string // acceptable workers; nil means ok=false
		tier        Tier
	}{
		{
			name: "warm beats cached and random",
			states: []WorkerState{
				{Name: "warm", FreeMemoryMB: 1000, Idle: map[string]int32{"fn:1": 1}},
				{Name: "cached", FreeMemoryMB: 8000, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 64000},
			},
			pick: std, want: []string{"warm"}, tier: Warm,
		},
		{
			name: "warm needs no free memory",
			states: []WorkerState{
				{Name: "warm", FreeMemoryMB: 0, Idle: map[string]int32{"fn:1": 1}},
				{Name: "free", FreeMemoryMB: 64000},
			},
			pick: std, want: []string{"warm"}, tier: Warm,
		},
		{
			name: "warm is per pool key, not per digest",
			states: []WorkerState{
				{Name: "other-version", FreeMemoryMB: 100, Idle: map[string]int32{"fn:2": 5}, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 64000},
			},
			pick: std, want: []string{"free"}, tier: Random,
		},
		{
			name: "cached beats random",
			states: []WorkerState{
				{Name: "cached", FreeMemoryMB: 1000, Digests: []string{"d0", "d1"}},
				{Name: "free", FreeMemoryMB: 64000},
			},
			pick: std, want: []string{"cached"}, tier: Cached,
		},
		{
			name: "cached needs memory",
			states: []WorkerState{
				{Name: "cached", FreeMemoryMB: 511, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 1000},
			},
			pick: std, want: []string{"free"}, tier: Random,
		},
		{
			name: "cached with exactly enough memory",
			states: []WorkerState{
				{Name: "cached", FreeMemoryMB: 512, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 64000},
			},
			pick: std, want: []string{"cached"}, tier: Cached,
		},
		{
			name: "random needs memory",
			states: []WorkerState{
				{Name: "small", FreeMemoryMB: 100},
				{Name: "big", FreeMemoryMB: 1000},
			},
			pick: std, want: []string{"big"}, tier: Random,
		},
		{
			name: "zero idle count is not warm",
			states: []WorkerState{
				{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"fn:1": 0}},
			},
			pick: std, want: []string{"a"}, tier: Random,
		},
		{
			name: "unavailable warm falls through to cached",
			states: []WorkerState{
				{Name: "warm", FreeMemoryMB: 1000, Idle: map[string]int32{"fn:1": 3}, Digests: []string{"d1"}},
				{Name: "cached", FreeMemoryMB: 1000, Digests: []string{"d1"}},
			},
			unavailable: []string{"warm"},
			pick:        std, want: []string{"cached"}, tier: Cached,
		},
		{
			name: "draining warm falls through to random",
			states: []WorkerState{
				{Name: "warm", FreeMemoryMB: 9000, Draining: true, Idle: map[string]int32{"fn:1": 3}, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 1000},
			},
			pick: std, want: []string{"free"}, tier: Random,
		},
		{
			name: "avoided warm falls through to cached",
			states: []WorkerState{
				{Name: "warm", FreeMemoryMB: 9000, Idle: map[string]int32{"fn:1": 3}, Digests: []string{"d1"}},
				{Name: "cached", FreeMemoryMB: 1000, Digests: []string{"d1"}},
			},
			avoid: []string{"warm"},
			pick:  std, want: []string{"cached"}, tier: Cached,
		},
		{
			name: "unavailable, draining and avoided cached fall through to random",
			states: []WorkerState{
				{Name: "c1", FreeMemoryMB: 9000, Digests: []string{"d1"}},
				{Name: "c2", FreeMemoryMB: 9000, Draining: true, Digests: []string{"d1"}},
				{Name: "c3", FreeMemoryMB: 9000, Digests: []string{"d1"}},
				{Name: "free", FreeMemoryMB: 1000},
			},
			unavailable: []string{"c1"},
			avoid:       []string{"c3"},
			pick:        std, want: []string{"free"}, tier: Random,
		},
		{
			name: "skipped workers get nothing in random tier either",
			states: []WorkerState{
				{Name: "down", FreeMemoryMB: 64000},
				{Name: "drain", FreeMemoryMB: 64000, Draining: true},
				{Name: "failed", FreeMemoryMB: 64000},
				{Name: "ok", FreeMemoryMB: 600},
			},
			unavailable: []string{"down"},
			avoid:       []string{"failed"},
			pick:        std, want: []string{"ok"}, tier: Random,
		},
		{
			name: "everything avoided",
			states: []WorkerState{
				{Name: "a", FreeMemoryMB: 9000, Idle: map[string]int32{"fn:1": 1}},
				{Name: "b", FreeMemoryMB: 9000, Digests: []string{"d1"}},
			},
			avoid: []string{"a", "b"},
			pick:  std,
		},
		{
			name: "no memory anywhere",
			states: []WorkerState{
				{Name: "a", FreeMemoryMB: 511, Digests: []string{"d1"}},
				{Name: "b", FreeMemoryMB: 100},
			},
			pick: std,
		},
		{
			name: "no workers",
			pick: std,
		},
		{
			name: "unknown avoided name is harmless",
			states: []WorkerState{
				{Name: "a", FreeMemoryMB: 9000},
			},
			avoid: []string{"nobody"},
			pick:  std, want: []string{"a"}, tier: Random,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Several seeds, so a right answer is not luck of the draw.
			for seed := range uint64(20) {
				p := New(seed)
				for _, s := range tc.states {
					p.Update(s)
				}
				for _, n := range tc.unavailable {
					p.SetAvailable(n, false)
				}
				var av Avoid
				for _, n := range tc.avoid {
					av.Add(n)
				}
				d, ok := p.Pick(tc.pick.key, tc.pick.digest, tc.pick.mem, &av)
				if tc.want == nil {
					if ok {
						t.Fatalf("seed %d: Pick = %+v, want none", seed, d)
					}
					if d != (Decision{}) {
						t.Fatalf("seed %d: failed Pick returned %+v, want zero Decision", seed, d)
					}
					continue
				}
				if !ok || !slices.Contains(tc.want, d.Worker) || d.Tier != tc.tier {
					t.Fatalf("seed %d: Pick = %+v, %v; want one of %v, tier %v", seed, d, ok, tc.want, tc.tier)
				}
				mustCheck(t, p)
			}
		})
	}
}

func TestWarmOptimisticDecrement(t *testing.T) {
	p := newPlacer(t,
		WorkerState{Name: "warm", FreeMemoryMB: 0, Idle: map[string]int32{"fn:1": 1}},
		WorkerState{Name: "free", FreeMemoryMB: 4096},
	)
	d, ok := p.Pick("fn:1", "d1", 128, nil)
	if !ok || d != (Decision{"warm", Warm}) {
		t.Fatalf("first Pick = %+v, %v; want warm/Warm", d, ok)
	}
	d, ok = p.Pick("fn:1", "d1", 128, nil)
	if !ok || d.Tier == Warm || d.Worker == "warm" {
		t.Fatalf("second Pick = %+v, %v; the only idle sandbox is taken", d, ok)
	}
	mustCheck(t, p)
	if _, listed := p.keys["fn:1"]; listed && len(p.keys["fn:1"].e) != 0 {
		t.Fatal("worker with no idle sandbox left is still in the warm index")
	}
}

func TestWarmCountsDown(t *testing.T) {
	p := newPlacer(t, WorkerState{Name: "w", FreeMemoryMB: 1000, Idle: map[string]int32{"k": 3}})
	for i := range 3 {
		if d, ok := p.Pick("k", "d", 100, nil); !ok || d.Tier != Warm {
			t.Fatalf("pick %d = %+v, %v; want Warm", i, d, ok)
		}
	}
	if d, ok := p.Pick("k", "d", 100, nil); !ok || d.Tier != Random {
		t.Fatalf("pick 4 = %+v, %v; want Random", d, ok)
	}
	mustCheck(t, p)
}

func TestConcurrentPicksShareOneIdleSandbox(t *testing.T) {
	p := newPlacer(t,
		WorkerState{Name: "warm", FreeMemoryMB: 0, Idle: map[string]int32{"k": 1}},
		WorkerState{Name: "free", FreeMemoryMB: 1 << 30},
	)
	var wg sync.WaitGroup
	tiers := make([]Tier, 8)
	for i := range tiers {
		wg.Go(func() {
			d, _ := p.Pick("k", "d", 128, nil)
			tiers[i] = d.Tier
		})
	}
	wg.Wait()
	if n := countTier(tiers, Warm); n != 1 {
		t.Fatalf("%d concurrent picks went warm to one idle sandbox, want 1", n)
	}
}

func countTier(ts []Tier, t Tier) int {
	n := 0
	for _, x := range ts {
		if x == t {
			n++
		}
	}
	return n
}

func TestMemoryGuess(t *testing.T) {
	p := newPlacer(t, WorkerState{Name: "a", FreeMemoryMB: 1000, Digests: []string{"d"}})
	if d, ok := p.Pick("k", "d", 600, nil); !ok || d.Tier != Cached {
		t.Fatalf("first = %+v, %v; want Cached", d, ok)
	}
	if d, ok := p.Pick("k", "d", 600, nil); ok {
		t.Fatalf("second = %+v; only 400 MB should be left", d)
	}
	if d, ok := p.Pick("k", "other", 400, nil); !ok || d.Tier != Random {
		t.Fatalf("third = %+v, %v; 400 MB left should take a Random 400", d, ok)
	}
	if d, ok := p.Pick("k", "other", 1, nil); ok {
		t.Fatalf("fourth = %+v; nothing should be left", d)
	}
	// The next report overwrites the guesses.
	p.Update(WorkerState{Name: "a", FreeMemoryMB: 1000, Digests: []string{"d"}})
	if d, ok := p.Pick("k", "d", 600, nil); !ok || d.Tier != Cached {
		t.Fatalf("after Update = %+v, %v; want Cached", d, ok)
	}
}

func TestUpdateOverwritesWarmGuess(t *testing.T) {
	st := WorkerState{Name: "w", FreeMemoryMB: 1000, Idle: map[string]int32{"k": 1}}
	p := newPlacer(t, st)
	p.Pick("k", "d", 1, nil)
	if d, _ := p.Pick("k", "d", 1, nil); d.Tier == Warm {
		t.Fatal("idle sandbox taken twice")
	}
	p.Update(st)
	mustCheck(t, p)
	if d, ok := p.Pick("k", "d", 1, nil); !ok || d.Tier != Warm {
		t.Fatalf("after Update = %+v, %v; want Warm", d, ok)
	}
}

func TestUpdateDoesNotAliasCallerMap(t *testing.T) {
	idle := map[string]int32{"k": 1}
	p := newPlacer(t, WorkerState{Name: "w", FreeMemoryMB: 1000, Idle: idle})
	p.Pick("k", "d", 1, nil)
	if idle["k"] != 1 {
		t.Fatalf("Pick changed the caller's Idle map: %v", idle)
	}
	idle["k2"] = 5 // the view must not see later changes either
	if d, _ := p.Pick("k2", "d", 1, nil); d.Tier == Warm {
		t.Fatal("Placer reads the caller's map after Update")
	}
}

func TestStaleIndexEntriesRemoved(t *testing.T) {
	p := newPlacer(t,
		WorkerState{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"old": 2, "kept": 1}, Digests: []string{"dold", "dkept"}},
		WorkerState{Name: "b", FreeMemoryMB: 1000, Idle: map[string]int32{"kept": 1}, Digests: []string{"dkept"}},
	)
	p.Update(WorkerState{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"kept": 1, "new": 1}, Digests: []string{"dkept", "dnew"}})
	mustCheck(t, p)
	for range 10 {
		if d, ok := p.Pick("old", "none", 1, nil); !ok || d.Tier == Warm {
			t.Fatalf("Pick(old) = %+v, %v; key no longer idle must not be warm", d, ok)
		}
		if d, ok := p.Pick("x", "dold", 1, nil); !ok || d.Tier == Cached {
			t.Fatalf("Pick(dold) = %+v, %v; digest no longer cached must not be Cached", d, ok)
		}
	}
	if _, ok := p.keys["old"]; ok {
		t.Error("index keeps a key no worker reports")
	}
	if _, ok := p.digests["dold"]; ok {
		t.Error("index keeps a digest no worker reports")
	}
	if d, ok := p.Pick("new", "none", 1, nil); !ok || d != (Decision{"a", Warm}) {
		t.Fatalf("Pick(new) = %+v, %v; want a/Warm", d, ok)
	}
	if d, ok := p.Pick("x", "dnew", 1, nil); !ok || d != (Decision{"a", Cached}) {
		t.Fatalf("Pick(dnew) = %+v, %v; want a/Cached", d, ok)
	}
	// Emptying a worker's state empties its index entries.
	p.Update(WorkerState{Name: "a", FreeMemoryMB: 1000})
	p.Update(WorkerState{Name: "b", FreeMemoryMB: 1000})
	mustCheck(t, p)
	if len(p.keys) != 0 || len(p.digests) != 0 {
		t.Fatalf("indexes not empty: %d keys, %d digests", len(p.keys), len(p.digests))
	}
}

func TestRemove(t *testing.T) {
	p := newPlacer(t,
		WorkerState{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"k": 5}, Digests: []string{"d"}},
		WorkerState{Name: "b", FreeMemoryMB: 1000},
		WorkerState{Name: "c", FreeMemoryMB: 1000},
	)
	p.Remove("a")
	p.Remove("nobody")
	mustCheck(t, p)
	if got := p.Workers(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("Workers = %v", got)
	}
	for range 50 {
		d, ok := p.Pick("k", "d", 1, nil)
		if !ok || d.Worker == "a" || d.Tier != Random {
			t.Fatalf("Pick = %+v, %v; removed worker must get nothing", d, ok)
		}
	}
	// A removed worker that reports again comes back, available, in a reused slot.
	p.SetAvailable("b", false)
	p.Update(WorkerState{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"k": 1}})
	mustCheck(t, p)
	if d, ok := p.Pick("k", "d", 1, nil); !ok || d != (Decision{"a", Warm}) {
		t.Fatalf("Pick after re-add = %+v, %v", d, ok)
	}
	if len(p.workers) != 3 {
		t.Errorf("slots = %d, want the freed slot reused", len(p.workers))
	}
}

func TestAvailability(t *testing.T) {
	p := newPlacer(t, WorkerState{Name: "a", FreeMemoryMB: 1000, Idle: map[string]int32{"k": 1}})
	p.SetAvailable("a", false)
	if d, ok := p.Pick("k", "d", 1, nil); ok {
		t.Fatalf("Pick = %+v; unavailable worker", d)
	}
	// Update carries the worker's own state, not its health: it must not
	// revive a worker gossip marked down.
	p.Update(WorkerState{Name: "a", FreeMemoryMB: 2000, Idle: map[string]int32{"k": 1}})
	if d, ok := p.Pick("k", "d", 1, nil); ok {
		t.Fatalf("Pick = %+v; Update must keep the availability flag", d)
	}
	p.SetAvailable("a", true)
	if d, ok := p.Pick("k", "d", 1, nil); !ok || d.Tier != Warm {
		t.Fatalf("Pick = %+v, %v; want Warm once available", d, ok)
	}
	p.SetAvailable("ghost", false) // unknown: ignored, and no phantom worker
	if got := p.Workers(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Workers = %v", got)
	}
}

func TestAvoid(t *testing.T) {
	var a Avoid
	if a.Has("x") || (*Avoid)(nil).Has("x") {
		t.Fatal("zero/nil Avoid avoids something")
	}
	for _, n := range []string{"a", "b", "a", "c", "d"} {
		a.Add(n)
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		if !a.Has(n) {
			t.Fatalf("missing %q", n)
		}
	}
	a.Add("e") // full: forgets the oldest
	if a.Has("a") || !a.Has("e") || !a.Has("b") || !a.Has("d") {
		t.Fatalf("after fifth Add: %+v", a)
	}
	a.Add("f")
	if a.Has("b") || !a.Has("f") || !a.Has("c") {
		t.Fatalf("after sixth Add: %+v", a)
	}
}

func TestWarmSpreads(t *testing.T) {
	const n, picks = 5, 5000
	p := New(7)
	for i := range n {
		p.Update(WorkerState{Name: fmt.Sprint("w", i), FreeMemoryMB: 1000, Idle: map[string]int32{"k": 1 << 20}})
	}
	count := map[string]int{}
	for range picks {
		d, ok := p.Pick("k", "d", 1, nil)
		if !ok || d.Tier != Warm {
			t.Fatalf("Pick = %+v, %v", d, ok)
		}
		count[d.Worker]++
	}
	for i := range n {
		if c := count[fmt.Sprint("w", i)]; c < picks/n/2 || c > picks/n*2 {
			t.Fatalf("warm picks not spread: %v", count)
		}
	}
}

// chiSquare of observed counts against a uniform expectation.
func chiSquare(counts []int, total int) float64 {
	exp := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - exp
		x += d * d / exp
	}
	return x
}

func TestRandomSpreads(t *testing.T) {
	const n, picks = 10, 10000
	for _, mem := range []int64{0, 1} { // 0: pure random ties; 1: guesses in play
		p := New(11)
		idx := map[string]int{}
		for i := range n {
			name := fmt.Sprint("w", i)
			idx[name] = i
			p.Update(WorkerState{Name: name, FreeMemoryMB: 1 << 30})
		}
		counts := make([]int, n)
		for range picks {
			d, ok := p.Pick("k", "d", mem, nil)
			if !ok || d.Tier != Random {
				t.Fatalf("Pick = %+v, %v", d, ok)
			}
			counts[idx[d.Worker]]++
		}
		// 9 degrees of freedom: P(chi² > 40) ≈ 1e-5, so only a skewed picker fails.
		if x := chiSquare(counts, picks); x > 40 {
			t.Fatalf("mem %d: chi² = %.1f over %v; random tier is not spreading", mem, x, counts)
		}
	}
}

func TestRandomSpreadsAroundIneligible(t *testing.T) {
	// Half the workers cannot take the job; the rest must still share it.
	const n, picks = 20, 10000
	p := New(3)
	var ok []string
	for i := range n {
		name := fmt.Sprint("w", i)
		free := int64(1 << 30)
		if i%2 == 0 {
			free = 10
		} else {
			ok = append(ok, name)
		}
		p.Update(WorkerState{Name: name, FreeMemoryMB: free})
	}
	count := map[string]int{}
	for range picks {
		d, _ := p.Pick("k", "d", 100, nil)
		count[d.Worker]++
	}
	counts := make([]int, len(ok))
	for i, name := range ok {
		counts[i] = count[name]
	}
	if x := chiSquare(counts, picks); x > 40 || len(count) != len(ok) {
		t.Fatalf("chi² = %.1f over %v", x, count)
	}
}

func TestRandomPrefersFreerOfTwo(t *testing.T) {
	// Two eligible workers: both are always the two choices, so the freer wins every time.
	p := newPlacer(t, WorkerState{Name: "small", FreeMemoryMB: 1000}, WorkerState{Name: "big", FreeMemoryMB: 2000})
	for range 1000 {
		if d, _ := p.Pick("k", "d", 0, nil); d.Worker != "big" {
			t.Fatalf("Pick = %+v, want big", d)
		}
	}
	// Three: pairs {s,m}->m, {s,l}->l, {m,l}->l, so s never, m ≈ 1/3, l ≈ 2/3.
	p = newPlacer(t,
		WorkerState{Name: "s", FreeMemoryMB: 100},
		WorkerState{Name: "m", FreeMemoryMB: 200},
		WorkerState{Name: "l", FreeMemoryMB: 300})
	count := map[string]int{}
	const picks = 9000
	for range picks {
		d, _ := p.Pick("k", "d", 0, nil)
		count[d.Worker]++
	}
	if count["s"] != 0 || math.Abs(float64(count["m"])/picks-1.0/3) > 0.05 || math.Abs(float64(count["l"])/picks-2.0/3) > 0.05 {
		t.Fatalf("counts %v, want s=0, m≈1/3, l≈2/3", count)
	}
	// Memory guesses balance load: after many 100 MB picks on equal workers
	// each has taken about the same.
	p = newPlacer(t, WorkerState{Name: "a", FreeMemoryMB: 100000}, WorkerState{Name: "b", FreeMemoryMB: 100000})
	count = map[string]int{}
	for range 500 {
		d, _ := p.Pick("k", "d", 100, nil)
		count[d.Worker]++
	}
	if diff := count["a"] - count["b"]; diff < -1 || diff > 1 {
		t.Fatalf("counts %v: freer-of-two should keep equal workers within one pick", count)
	}
}

func TestCachedPrefersFreer(t *testing.T) {
	// Two holders, both qualifying: the freer wins whatever the random start.
	p := newPlacer(t,
		WorkerState{Name: "small", FreeMemoryMB: 1000, Digests: []string{"d"}},
		WorkerState{Name: "big", FreeMemoryMB: 5000, Digests: []string{"d"}},
		WorkerState{Name: "other", FreeMemoryMB: 90000})
	for range 100 {
		if d, _ := p.Pick("k", "d", 0, nil); d != (Decision{"big", Cached}) {
			t.Fatalf("Pick = %+v, want big/Cached", d)
		}
	}
}

// TestIndexMatchesModel drives random operations and checks after each that
// the warm and digest indexes list exactly the workers a simple model says.
func TestIndexMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := New(5)
	names := []string{"a", "b", "c", "d", "e", "f"}
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	type mw struct {
		idle    map[string]int32
		digests map[string]bool
	}
	model := map[string]*mw{}
	avail := map[string]bool{}
	for step := range 20000 {
		name := names[r.IntN(len(names))]
		switch op := r.IntN(10); {
		case op < 4:
			s := WorkerState{Name: name, FreeMemoryMB: int64(r.IntN(2000)), Draining: r.IntN(10) == 0, Idle: map[string]int32{}}
			m := &mw{idle: map[string]int32{}, digests: map[string]bool{}}
			for _, k := range keys {
				if r.IntN(2) == 0 {
					n := int32(r.IntN(3)) // zero counts too
					s.Idle[k] = n
					if n > 0 {
						m.idle[k] = n
					}
				}
				if r.IntN(2) == 0 {
					s.Digests = append(s.Digests, "d"+k, "d"+k) // duplicates are harmless
					m.digests["d"+k] = true
				}
			}
			p.Update(s)
			if model[name] == nil {
				avail[name] = true
			}
			model[name] = m
		case op < 5:
			p.Remove(name)
			delete(model, name)
			delete(avail, name)
		case op < 6:
			v := r.IntN(2) == 0
			p.SetAvailable(name, v)
			if model[name] != nil {
				avail[name] = v
			}
		default:
			k := keys[r.IntN(len(keys))]
			var av Avoid
			if r.IntN(4) == 0 {
				av.Add(names[r.IntN(len(names))])
			}
			d, ok := p.Pick(k, "d"+k, int64(r.IntN(500)), &av)
			if ok && (model[d.Worker] == nil || !avail[d.Worker] || av.Has(d.Worker)) {
				t.Fatalf("step %d: picked %+v: unknown, unavailable or avoided", step, d)
			}
			if ok && d.Tier == Warm {
				if model[d.Worker].idle[k] <= 0 {
					t.Fatalf("step %d: Warm on %s with no idle %s", step, d.Worker, k)
				}
				model[d.Worker].idle[k]--
			}
			if ok && d.Tier == Cached && !model[d.Worker].digests["d"+k] {
				t.Fatalf("step %d: Cached on %s without d%s", step, d.Worker, k)
			}
		}
		if err := p.check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, k := range keys {
			var want, got []string
			for n, m := range model {
				if m.idle[k] > 0 {
					want = append(want, n)
				}
			}
			if ps := p.keys[k]; ps != nil {
				for _, e := range ps.e {
					got = append(got, p.workers[e.slot].name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Fatalf("step %d: keys[%s] = %v, model %v", step, k, got, want)
			}
			want, got = nil, nil
			for n, m := range model {
				if m.digests["d"+k] {
					want = append(want, n)
				}
			}
			if ps := p.digests["d"+k]; ps != nil {
				for _, e := range ps.e {
					got = append(got, p.workers[e.slot].name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Fatalf("step %d: digests[d%s] = %v, model %v", step, k, got, want)
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := New(9)
	const workers = 50
	state := func(i, gen int) WorkerState {
		s := WorkerState{Name: fmt.Sprint("w", i), FreeMemoryMB: int64(1000 + gen%7*100), Idle: map[string]int32{}}
		for k := range 20 {
			if (k+gen+i)%3 != 0 {
				s.Idle[fmt.Sprint("k", k)] = int32(1 + k%3)
				s.Digests = append(s.Digests, fmt.Sprint("d", k))
			}
		}
		return s
	}
	for i := range workers {
		p.Update(state(i, 0))
	}
	// Pickers run until every writer is done, so all writes race with picks.
	var pickers, writers sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		pickers.Go(func() {
			var av Avoid
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%10 == 0 {
					av = Avoid{}
					av.Add(fmt.Sprint("w", (i+g)%workers))
				}
				k := (i * 7) % 25 // some keys and digests unknown
				d, ok := p.Pick(fmt.Sprint("k", k), fmt.Sprint("d", k), 100, &av)
				if ok && av.Has(d.Worker) {
					t.Errorf("picked avoided %s", d.Worker)
					return
				}
			}
		})
	}
	writers.Go(func() {
		for gen := 1; gen < 300; gen++ {
			p.Update(state(gen%workers, gen))
		}
	})
	writers.Go(func() {
		for i := range 1000 {
			p.SetAvailable(fmt.Sprint("w", i%workers), i%3 != 0)
		}
	})
	writers.Go(func() {
		for i := range 100 {
			p.Remove(fmt.Sprint("w", i%workers))
			p.Update(state(i%workers, i))
			_ = p.Workers()
		}
	})
	writers.Wait()
	close(stop)
	pickers.Wait()
	mustCheck(t, p)
	if n := len(p.Workers()); n != workers {
		t.Fatalf("%d workers after churn, want %d", n, workers)
	}
}
