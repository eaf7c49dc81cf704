package sim

import (
	"fmt"
	"math/rand/v2"

	"github.com/gustfaas/gust/coordinator/placement"
)

// Placement policies, by the names Combo.Placement takes.
const (
	// PlaceGust is the real coordinator/placement Placer: warm, then cached
	// code, then the freer of two random workers.
	PlaceGust = "gust"
	// PlaceHash is OpenWhisk's ShardingContainerPoolBalancer: a home
	// worker by hash of the function, stepping by a co-prime stride while
	// the worker has no memory free.
	PlaceHash = "openwhisk-hash"
	// PlaceLeastLoaded sends every invocation to the worker with the most
	// free memory, blind to warm sandboxes.
	PlaceLeastLoaded = "least-loaded"
	// PlaceRandom sends it to a uniformly random worker with room, blind
	// to warm sandboxes.
	PlaceRandom = "random"
)

// Placements lists the placement policies in report order.
var Placements = []string{PlaceGust, PlaceHash, PlaceLeastLoaded, PlaceRandom}

// placer chooses a worker for one invocation. Every policy sees the same
// worker state the real coordinator would (free memory counts idle sandboxes
// as free) and is told after every change to a worker's pool.
type placer interface {
	// place returns the worker for an invocation of app, or false when no
	// worker has room.
	place(app *App) (worker int32, ok bool)
	// changed reports that w's pool changed.
	changed(w *simWorker)
}

func newPlacer(name string, c *cluster, seed uint64) (placer, error) {
	switch name {
	case PlaceGust:
		return newGustPlacer(c, seed), nil
	case PlaceHash:
		return newHashPlacer(c), nil
	case PlaceLeastLoaded:
		return newLeastLoaded(c), nil
	case PlaceRandom:
		return &randomPlacer{c: c, r: rand.New(rand.NewPCG(seed, 7))}, nil
	}
	return nil, fmt.Errorf("unknown placement %q", name)
}

// gustPlacer drives the real Placer: Update with the worker's full state
// after each change, as the state stream does, and Pick per invocation.
type gustPlacer struct {
	p      *placement.Placer
	byName map[string]int32
	tiers  [placement.Random + 1]int64
}

func newGustPlacer(c *cluster, seed uint64) *gustPlacer {
	c.report = true
	g := &gustPlacer{p: placement.New(seed), byName: make(map[string]int32, len(c.workers))}
	for _, w := range c.workers {
		g.byName[w.name] = w.id
		g.changed(w)
	}
	return g
}

func (g *gustPlacer) place(a *App) (int32, bool) {
	d, ok := g.p.Pick(a.Key, a.Digest, a.MemoryMB, nil)
	if !ok {
		return 0, false
	}
	g.tiers[d.Tier]++
	return g.byName[d.Worker], true
}

func (g *gustPlacer) changed(w *simWorker) {
	g.p.Update(placement.WorkerState{Name: w.name, FreeMemoryMB: w.freeMB(), Idle: w.idleKeys, Digests: w.digests})
}

// hashPlacer is OpenWhisk's home-invoker scheme. OpenWhisk counts a
// worker's memory in use by running activations only, as gust does.
type hashPlacer struct {
	c     *cluster
	steps []int
}

func newHashPlacer(c *cluster) *hashPlacer {
	return &hashPlacer{c: c, steps: pairwiseCoprimes(len(c.workers))}
}

// pairwiseCoprimes returns the numbers up to n that are coprime to n and to
// each other, OpenWhisk's step sizes: any of them walks all n workers.
func pairwiseCoprimes(n int) []int {
	var out []int
	for k := 1; k <= n; k++ {
		if gcd(k, n) != 1 {
			continue
		}
		ok := true
		for _, p := range out {
			if gcd(p, k) != 1 {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (h *hashPlacer) place(a *App) (int32, bool) {
	n := len(h.c.workers)
	home := int(a.hash % uint64(n))
	step := h.steps[int(a.hash%uint64(len(h.steps)))]
	for i := range n {
		w := h.c.workers[(home+i*step)%n]
		if w.freeMB() >= a.MemoryMB {
			return w.id, true
		}
	}
	// OpenWhisk would force the home worker over its limit and queue
	// there; a gust worker refuses instead, so the invocation is dropped.
	return 0, false
}

func (h *hashPlacer) changed(*simWorker) {}

// leastLoaded keeps the workers in a max-heap of free memory.
type leastLoaded struct {
	c    *cluster
	heap []int32 // worker ids
	pos  []int   // worker id -> index in heap
}

func newLeastLoaded(c *cluster) *leastLoaded {
	l := &leastLoaded{c: c, heap: make([]int32, len(c.workers)), pos: make([]int, len(c.workers))}
	for i := range c.workers {
		l.heap[i], l.pos[i] = int32(i), i
	}
	return l
}

// above orders by free memory, then by id so the order is total.
func (l *leastLoaded) above(a, b int32) bool {
	fa, fb := l.c.workers[a].freeMB(), l.c.workers[b].freeMB()
	return fa > fb || fa == fb && a < b
}

func (l *leastLoaded) swap(i, j int) {
	l.heap[i], l.heap[j] = l.heap[j], l.heap[i]
	l.pos[l.heap[i]], l.pos[l.heap[j]] = i, j
}

func (l *leastLoaded) changed(w *simWorker) {
	i := l.pos[w.id]
	for i > 0 && l.above(l.heap[i], l.heap[(i-1)/2]) {
		l.swap(i, (i-1)/2)
		i = (i - 1) / 2
	}
	for {
		best, a, b := i, 2*i+1, 2*i+2
		if a < len(l.heap) && l.above(l.heap[a], l.heap[best]) {
			best = a
		}
		if b < len(l.heap) && l.above(l.heap[b], l.heap[best]) {
			best = b
		}
		if best == i {
			return
		}
		l.swap(i, best)
		i = best
	}
}

func (l *leastLoaded) place(a *App) (int32, bool) {
	top := l.heap[0]
	if l.c.workers[top].freeMB() < a.MemoryMB {
		return 0, false
	}
	return top, true
}

// randomPlacer draws uniformly among workers with room, like Placer's last
// tier without the second choice.
type randomPlacer struct {
	c *cluster
	r *rand.Rand
}

func (p *randomPlacer) place(a *App) (int32, bool) {
	n := len(p.c.workers)
	for range 8 {
		if w := p.c.workers[p.r.IntN(n)]; w.freeMB() >= a.MemoryMB {
			return w.id, true
		}
	}
	start := p.r.IntN(n)
	for i := range n {
		if w := p.c.workers[(start+i)%n]; w.freeMB() >= a.MemoryMB {
			return w.id, true
		}
	}
	return 0, false
}

func (p *randomPlacer) changed(*simWorker) {}
