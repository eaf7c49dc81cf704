package placement

import (
	"math/bits"
	"slices"
	"sync"
)

// WorkerState is one worker's full state as it last reported it. Workers
// send the whole state every time, so an Update replaces what was known
// instead of merging into it; this makes a lost or reordered guess harmless.
type WorkerState struct {
	Name         string
	FreeMemoryMB int64
	Draining     bool
	Idle         map[string]int32 // pool key -> idle warm sandboxes
	Digests      []string         // code digests cached on the worker
}

// Tier says why Pick chose a worker, so callers can count cold starts and
// tune pools. The zero value is no tier: it is what a failed Pick returns.
type Tier int

const (
	// Warm: the worker had an idle sandbox of this exact function version,
	// so the invocation skips both code download and init.
	Warm Tier = iota + 1
	// Cached: the worker already holds the code, so a cold start skips the
	// download.
	Cached
	// Random: a full cold start on the freer of two random workers (power
	// of two choices), which balances load without scanning every worker.
	Random
)

// String names the tier for logs and metrics labels.
func (t Tier) String() string {
	switch t {
	case Warm:
		return "warm"
	case Cached:
		return "cached"
	case Random:
		return "random"
	}
	return "none"
}

// Decision is where to send one invocation. It is returned by value so Pick
// does not allocate.
type Decision struct {
	Worker string
	Tier   Tier
}

// maxAvoid bounds Avoid so it is a fixed-size value the caller can keep on
// its stack across retries.
const maxAvoid = 4

// Avoid holds up to four workers a retry must not use (those that just
// failed it). The zero value avoids nothing. It is a fixed array, not a map,
// so building one and passing it to Pick does not allocate.
type Avoid struct {
	names [maxAvoid]string
	n     int // names in use, at most maxAvoid
	next  int // slot the next Add overwrites once full
}

// Add marks a worker as not to be used. Once four are held the oldest is
// forgotten: the most recent failures say most about where not to retry.
func (a *Avoid) Add(name string) {
	if a.Has(name) {
		return
	}
	if a.n < maxAvoid {
		a.names[a.n] = name
		a.n++
		return
	}
	a.names[a.next] = name
	a.next = (a.next + 1) % maxAvoid
}

// Has reports whether name is avoided.
func (a *Avoid) Has(name string) bool {
	if a == nil {
		return false
	}
	for i := 0; i < a.n; i++ {
		if a.names[i] == name {
			return true
		}
	}
	return false
}

// entry is one worker's membership in one index (pool key or digest). The
// posting list and the worker's own map share the pointer, so either side
// can find the other's position in O(1) and swap-remove without a search.
type entry struct {
	slot  int32  // worker slot in Placer.workers
	pos   int32  // index in the posting list; -1 when not listed
	count int32  // idle sandboxes (pool key index only)
	gen   uint32 // last Update generation that reported it (mark and sweep)
}

// posting is the list of workers for one key or digest. Pick scans it from
// a random start, so it is a slice (cheap to index) and not a map.
type posting struct {
	e []*entry
}

func (ps *posting) add(e *entry) {
	e.pos = int32(len(ps.e))
	ps.e = append(ps.e, e)
}

// remove swap-deletes e; order in a posting carries no meaning.
func (ps *posting) remove(e *entry) {
	i := e.pos
	if i < 0 {
		return
	}
	last := int32(len(ps.e) - 1)
	if i != last {
		moved := ps.e[last]
		ps.e[i] = moved
		moved.pos = i
	}
	ps.e[last] = nil // let the entry be collected
	ps.e = ps.e[:last]
	e.pos = -1
}

// worker is the view of one worker. Workers live in a slice and are named by
// slot so indexes hold small integers and Pick touches no maps per candidate.
type worker struct {
	name      string
	used      bool // slot holds a worker (false on the free list)
	available bool
	draining  bool
	free      int64
	livePos   int32             // index in Placer.live
	idle      map[string]*entry // pool key -> entry in keys[key]
	digests   map[string]*entry // digest -> entry in digests[digest]
}

// Placer is the coordinator's placement view and decision maker. It is safe
// for concurrent use. One mutex guards everything: Pick writes too (its
// optimistic guesses and the RNG), and it is short enough that a
// reader/writer split would buy nothing.
type Placer struct {
	mu      sync.Mutex
	workers []worker
	free    []int32          // unused slots, reused so slots stay dense
	live    []int32          // used slots, for uniform random sampling
	byName  map[string]int32 // name -> slot
	keys    map[string]*posting
	digests map[string]*posting
	gen     uint32
	rng     uint64 // xorshift64* state, guarded by mu
}

// New returns an empty Placer. The seed drives the random spreading; tests
// pass a fixed one to be reproducible, production any varying value.
func New(seed uint64) *Placer {
	// splitmix64 turns any seed, including 0, into a well-mixed nonzero state
	// (xorshift is stuck at zero).
	z := seed + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	if z == 0 {
		z = 0x9e3779b97f4a7c15
	}
	return &Placer{
		byName:  make(map[string]int32),
		keys:    make(map[string]*posting),
		digests: make(map[string]*posting),
		rng:     z,
	}
}

// rand returns a uniform int in [0, n), n > 0. Caller holds mu.
func (p *Placer) rand(n int) int {
	x := p.rng
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	p.rng = x
	// Lemire's multiply-shift: unbiased enough for spreading, no division.
	hi, _ := bits.Mul64(x*0x2545f4914f6cdd1d, uint64(n))
	return int(hi)
}

// Update replaces a worker's state, adding the worker if it is new (new
// workers start available). It keeps the availability flag, which comes from
// gossip and stream health rather than from the worker itself, and it
// overwrites the optimistic guesses Pick made since the last report.
func (p *Placer) Update(s WorkerState) {
	p.mu.Lock()
	defer p.mu.Unlock()

	slot, ok := p.byName[s.Name]
	if !ok {
		slot = p.newSlot(s.Name)
	}
	w := &p.workers[slot]
	w.free = s.FreeMemoryMB
	w.draining = s.Draining

	// Mark and sweep instead of rebuilding: entries still reported keep their
	// place, so a steady worker causes no allocation and no index churn.
	p.gen++
	gen := p.gen
	for key, n := range s.Idle {
		if n <= 0 {
			continue // absent and zero mean the same: nothing to place there
		}
		e := w.idle[key]
		if e == nil {
			e = &entry{slot: slot, pos: -1}
			w.idle[key] = e
		}
		e.count = n
		e.gen = gen
		if e.pos < 0 { // new, or emptied by Pick's guesses
			p.postingFor(p.keys, key).add(e)
		}
	}
	for key, e := range w.idle {
		if e.gen != gen {
			delete(w.idle, key)
			unlist(p.keys, key, e)
		}
	}
	for _, d := range s.Digests {
		e := w.digests[d]
		if e == nil {
			e = &entry{slot: slot, pos: -1}
			w.digests[d] = e
			p.postingFor(p.digests, d).add(e)
		}
		e.gen = gen
	}
	for d, e := range w.digests {
		if e.gen != gen {
			delete(w.digests, d)
			unlist(p.digests, d, e)
		}
	}
}

// newSlot registers a worker. Caller holds mu.
func (p *Placer) newSlot(name string) int32 {
	var slot int32
	if n := len(p.free); n > 0 {
		slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		slot = int32(len(p.workers))
		p.workers = append(p.workers, worker{})
	}
	p.workers[slot] = worker{
		name:      name,
		used:      true,
		available: true,
		livePos:   int32(len(p.live)),
		idle:      make(map[string]*entry),
		digests:   make(map[string]*entry),
	}
	p.live = append(p.live, slot)
	p.byName[name] = slot
	return slot
}

func (p *Placer) postingFor(idx map[string]*posting, k string) *posting {
	ps := idx[k]
	if ps == nil {
		ps = &posting{}
		idx[k] = ps
	}
	return ps
}

// unlist drops e from idx[k] and forgets the posting once empty, so keys of
// deleted functions do not pile up in the index.
func unlist(idx map[string]*posting, k string, e *entry) {
	ps := idx[k]
	if ps == nil {
		return
	}
	ps.remove(e)
	if len(ps.e) == 0 {
		delete(idx, k)
	}
}

// SetAvailable records gossip and state-stream health: an unavailable worker
// gets nothing, whatever its last state said. A name the view does not know
// is ignored: it has no state to place on, and its first Update (proof that
// its stream works) adds it available.
func (p *Placer) SetAvailable(name string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slot, found := p.byName[name]; found {
		p.workers[slot].available = ok
	}
}

// Remove forgets a worker and all its index entries, e.g. when it leaves the
// cluster for good.
func (p *Placer) Remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot, ok := p.byName[name]
	if !ok {
		return
	}
	w := &p.workers[slot]
	for k, e := range w.idle {
		unlist(p.keys, k, e)
	}
	for d, e := range w.digests {
		unlist(p.digests, d, e)
	}
	// Swap-remove from live.
	i, last := w.livePos, len(p.live)-1
	moved := p.live[last]
	p.live[i] = moved
	p.workers[moved].livePos = i
	p.live = p.live[:last]

	delete(p.byName, name)
	p.workers[slot] = worker{}
	p.free = append(p.free, slot)
}

// Workers lists the known workers' names, sorted, for operators.
func (p *Placer) Workers() []string {
	p.mu.Lock()
	names := make([]string, 0, len(p.live))
	for _, slot := range p.live {
		names = append(names, p.workers[slot].name)
	}
	p.mu.Unlock()
	slices.Sort(names)
	return names
}

// avoidSlots is Avoid resolved to slots once per Pick, so the per-candidate
// check compares integers instead of strings.
type avoidSlots struct {
	s [maxAvoid]int32
	n int
}

func (a *avoidSlots) has(slot int32) bool {
	for i := 0; i < a.n; i++ {
		if a.s[i] == slot {
			return true
		}
	}
	return false
}

// usable reports whether w may receive anything at all. Caller holds mu.
func (p *Placer) usable(slot int32, av *avoidSlots) bool {
	w := &p.workers[slot]
	return w.available && !w.draining && !av.has(slot)
}

// Pick chooses a worker for the function version key (its warm pool key)
// with code digest, needing memoryMB for a cold start. It prefers an idle
// warm sandbox, then a worker that has the code, then the freer of two
// random workers; unavailable, draining and avoided workers get nothing.
// ok is false when no worker can take it.
//
// Pick records its guess in the view (one idle sandbox fewer, or memoryMB
// less free memory) so that concurrent picks on this coordinator do not all
// land on the same sandbox before the worker reports again. It does not
// allocate.
func (p *Placer) Pick(key, digest string, memoryMB int64, avoid *Avoid) (d Decision, ok bool) {
	if memoryMB < 0 {
		memoryMB = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	var av avoidSlots
	if avoid != nil {
		for i := 0; i < avoid.n; i++ {
			if slot, found := p.byName[avoid.names[i]]; found {
				av.s[av.n] = slot
				av.n++
			}
		}
	}

	// Tier 1: an idle warm sandbox. Random start spreads concurrent
	// invocations over the workers holding one; no memory is needed since the
	// sandbox already has it.
	if ps := p.keys[key]; ps != nil && len(ps.e) > 0 {
		n := len(ps.e)
		start := p.rand(n)
		for i := 0; i < n; i++ {
			e := ps.e[(start+i)%n]
			if e.count <= 0 || !p.usable(e.slot, &av) {
				continue
			}
			e.count--
			if e.count == 0 {
				ps.remove(e) // keep the index exact: no idle, not listed
			}
			return Decision{Worker: p.workers[e.slot].name, Tier: Warm}, true
		}
	}

	// Tier 2: code already cached. Of the first two qualifying holders from a
	// random start take the freer, so cached cold starts also balance.
	if ps := p.digests[digest]; ps != nil && len(ps.e) > 0 {
		n := len(ps.e)
		start := p.rand(n)
		best := int32(-1)
		for i := 0; i < n; i++ {
			slot := ps.e[(start+i)%n].slot
			if !p.fits(slot, memoryMB, &av) {
				continue
			}
			if best < 0 {
				best = slot
				continue
			}
			if p.workers[slot].free > p.workers[best].free {
				best = slot
			}
			break
		}
		if best >= 0 {
			return p.take(best, memoryMB, Cached), true
		}
	}

	// Tier 3: power of two choices over every worker.
	first := p.sample(memoryMB, &av, -1)
	if first < 0 {
		return Decision{}, false
	}
	best := first
	if second := p.sample(memoryMB, &av, first); second >= 0 && p.workers[second].free > p.workers[first].free {
		best = second
	}
	return p.take(best, memoryMB, Random), true
}

// fits reports whether a cold start of memoryMB can go to slot.
func (p *Placer) fits(slot int32, memoryMB int64, av *avoidSlots) bool {
	return p.usable(slot, av) && p.workers[slot].free >= memoryMB
}

// take records the memory guess and builds the decision.
func (p *Placer) take(slot int32, memoryMB int64, t Tier) Decision {
	w := &p.workers[slot]
	w.free -= memoryMB
	return Decision{Worker: w.name, Tier: t}
}

// sampleTries is how many uniform draws sample makes before scanning. With
// most workers eligible one draw nearly always suffices; the scan bounds the
// worst case (few eligible) at one pass over the workers.
const sampleTries = 8

// sample returns a uniformly random worker that fits, other than not, or -1
// if there is none.
func (p *Placer) sample(memoryMB int64, av *avoidSlots, not int32) int32 {
	n := len(p.live)
	if n == 0 {
		return -1
	}
	for t := 0; t < sampleTries; t++ {
		slot := p.live[p.rand(n)]
		if slot != not && p.fits(slot, memoryMB, av) {
			return slot
		}
	}
	start := p.rand(n)
	for i := 0; i < n; i++ {
		slot := p.live[(start+i)%n]
		if slot != not && p.fits(slot, memoryMB, av) {
			return slot
		}
	}
	return -1
}
