package sim

import (
	"fmt"

	"github.com/gustfaas/gust/worker/keepalive"
)

// none marks the end of an intrusive list.
const none = -1

// sandbox is one simulated sandbox. Sandboxes live in one slab and link
// into their worker's lists by index, so the simulation allocates nothing
// per invocation.
type sandbox struct {
	app      int32
	worker   int32
	memoryMB int64
	busy     bool
	live     bool
	gen      uint32 // bumped when it dies or re-arms its expiry: stale events miss
	lastUsed int64  // when it last went idle or was loaded
	// deadline is when the idle sandbox expires; armed is the time of its
	// pending expiry event, or none. A reused sandbox keeps its event and
	// re-arms when it fires early, so the event queue holds one expiry
	// per sandbox instead of one per idle period.
	deadline, armed int64
	// prev/next: the worker's idle list, least recently used first.
	prev, next int32
	// kprev/knext: the worker's idle list of this app, same order.
	kprev, knext int32
}

// appPool is one app's sandboxes on one worker.
type appPool struct {
	head, tail int32 // idle, least recently used first
	idle       int32
	live       int32 // idle and busy
}

// simWorker mirrors worker/pool.go: idle sandboxes per pool key (reused
// most recently used first), busy ones, memory granted to every live
// sandbox, and least-recently-used eviction when a new sandbox needs room.
// Like the real worker it reports idle memory as free, since it is evicted
// on demand.
type simWorker struct {
	id       int32
	name     string
	capMB    int64
	usedMB   int64 // every live sandbox
	busyMB   int64
	idleMB   int64
	lruHead  int32
	lruTail  int32
	apps     []appPool        // by app id: this worker's row of cluster.pools
	idleKeys map[string]int32 // pool key -> idle sandboxes, as the worker reports it
	digests  []string         // code cached here; like the worker's cache, never evicted
	cached   []bool           // by app id: digest in digests
	policy   keepalive.Policy
}

// freeMB is what the worker reports as free: memory not held by busy
// sandboxes.
func (w *simWorker) freeMB() int64 { return w.capMB - w.busyMB }

// cluster is every worker and sandbox.
type cluster struct {
	workers []*simWorker
	// pools and cached are workers × apps, flat: a dense table indexes
	// faster than a map per worker, and a run's table is a few tens of MB.
	pools   []appPool
	cached  []bool
	sbs     []sandbox
	freeSbs []int32
	apps    []App
	// report keeps idleKeys and digests, the state the real Placer reads;
	// the baselines read the pools directly and skip the string maps.
	report      bool
	idleMB      int64 // cluster-wide
	busyMB      int64
	idleByClass [numClasses]int64
}

func newCluster(cfg Config, apps []App) *cluster {
	n := len(apps)
	c := &cluster{apps: apps, workers: make([]*simWorker, cfg.Workers),
		pools: make([]appPool, cfg.Workers*n), cached: make([]bool, cfg.Workers*n)}
	for i := range c.pools {
		c.pools[i] = appPool{head: none, tail: none}
	}
	for i := range c.workers {
		c.workers[i] = &simWorker{
			id: int32(i), name: fmt.Sprintf("worker-%04d", i), capMB: cfg.WorkerMemoryMB,
			lruHead: none, lruTail: none,
			apps: c.pools[i*n : (i+1)*n], cached: c.cached[i*n : (i+1)*n], idleKeys: map[string]int32{},
		}
	}
	return c
}

func (w *simWorker) pool(app int32) *appPool { return &w.apps[app] }

// pushIdle appends sandbox i to both idle lists as the most recently used.
func (c *cluster) pushIdle(w *simWorker, i int32, now int64) {
	s := &c.sbs[i]
	s.busy = false
	s.lastUsed = now
	s.prev, s.next = w.lruTail, none
	if w.lruTail != none {
		c.sbs[w.lruTail].next = i
	} else {
		w.lruHead = i
	}
	w.lruTail = i
	p := w.pool(s.app)
	s.kprev, s.knext = p.tail, none
	if p.tail != none {
		c.sbs[p.tail].knext = i
	} else {
		p.head = i
	}
	p.tail = i
	p.idle++
	if c.report {
		w.idleKeys[c.apps[s.app].Key]++
	}
	w.idleMB += s.memoryMB
	c.idleMB += s.memoryMB
	c.idleByClass[c.apps[s.app].Class()] += s.memoryMB
}

// unlinkIdle removes idle sandbox i from both idle lists.
func (c *cluster) unlinkIdle(w *simWorker, i int32) {
	s := &c.sbs[i]
	if s.prev != none {
		c.sbs[s.prev].next = s.next
	} else {
		w.lruHead = s.next
	}
	if s.next != none {
		c.sbs[s.next].prev = s.prev
	} else {
		w.lruTail = s.prev
	}
	p := &w.apps[s.app]
	if s.kprev != none {
		c.sbs[s.kprev].knext = s.knext
	} else {
		p.head = s.knext
	}
	if s.knext != none {
		c.sbs[s.knext].kprev = s.kprev
	} else {
		p.tail = s.kprev
	}
	p.idle--
	if c.report {
		key := c.apps[s.app].Key
		if n := w.idleKeys[key] - 1; n > 0 {
			w.idleKeys[key] = n
		} else {
			delete(w.idleKeys, key)
		}
	}
	w.idleMB -= s.memoryMB
	c.idleMB -= s.memoryMB
	c.idleByClass[c.apps[s.app].Class()] -= s.memoryMB
}

// take makes the most recently used idle sandbox of app busy, as
// pool.take does, or returns none.
func (c *cluster) take(w *simWorker, app int32) int32 {
	p := &w.apps[app]
	if p.tail == none {
		return none
	}
	i := p.tail
	c.unlinkIdle(w, i)
	c.markBusy(w, i)
	return i
}

func (c *cluster) markBusy(w *simWorker, i int32) {
	s := &c.sbs[i]
	s.busy = true
	w.busyMB += s.memoryMB
	c.busyMB += s.memoryMB
}

// reserve makes room for memoryMB, evicting idle sandboxes least recently
// used first as worker.reserve does. It reports how many it evicted and
// false when even an empty idle list leaves too little.
func (c *cluster) reserve(w *simWorker, memoryMB int64) (evicted int, ok bool) {
	for w.usedMB+memoryMB > w.capMB {
		if w.lruHead == none {
			return evicted, false
		}
		victim := w.lruHead
		c.unlinkIdle(w, victim)
		c.destroy(w, victim)
		evicted++
	}
	return evicted, true
}

// start creates a sandbox of app on w and counts its memory, which reserve
// must have made room for. The new sandbox is on no list and not yet busy.
func (c *cluster) start(w *simWorker, app int32) int32 {
	var i int32
	if n := len(c.freeSbs); n > 0 {
		i = c.freeSbs[n-1]
		c.freeSbs = c.freeSbs[:n-1]
	} else {
		i = int32(len(c.sbs))
		c.sbs = append(c.sbs, sandbox{})
	}
	mem := c.apps[app].MemoryMB
	gen := c.sbs[i].gen
	c.sbs[i] = sandbox{app: app, worker: w.id, memoryMB: mem, live: true, gen: gen + 1, armed: none, prev: none, next: none, kprev: none, knext: none}
	w.usedMB += mem
	w.pool(app).live++
	if !w.cached[app] {
		w.cached[app] = true
		if c.report {
			w.digests = append(w.digests, c.apps[app].Digest)
		}
	}
	return i
}

// retireBusy destroys a busy sandbox.
func (c *cluster) retireBusy(w *simWorker, i int32) {
	s := &c.sbs[i]
	w.busyMB -= s.memoryMB
	c.busyMB -= s.memoryMB
	c.destroy(w, i)
}

// destroy frees a sandbox already off every list and not counted busy.
func (c *cluster) destroy(w *simWorker, i int32) {
	s := &c.sbs[i]
	w.usedMB -= s.memoryMB
	w.apps[s.app].live--
	s.live = false
	s.gen++
	c.freeSbs = append(c.freeSbs, i)
}

// checkWorker verifies what one event can break on one worker cheaply:
// memory within capacity and the counters adding up.
func (c *cluster) checkWorker(w *simWorker) error {
	if w.usedMB > w.capMB || w.busyMB < 0 || w.idleMB < 0 || w.busyMB+w.idleMB != w.usedMB {
		return fmt.Errorf("%s: used %d = busy %d + idle %d MB of %d", w.name, w.usedMB, w.busyMB, w.idleMB, w.capMB)
	}
	return nil
}

// check verifies every worker's accounting against the sandboxes, in one
// pass over them.
func (c *cluster) check() error {
	n := len(c.apps)
	used := make([]int64, len(c.workers))
	busy := make([]int64, len(c.workers))
	live := make([]int32, len(c.pools))
	for i := range c.sbs {
		s := &c.sbs[i]
		if !s.live {
			continue
		}
		used[s.worker] += s.memoryMB
		if s.busy {
			busy[s.worker] += s.memoryMB
		}
		live[int(s.worker)*n+int(s.app)]++
	}
	var idleAll int64
	for _, w := range c.workers {
		if err := c.checkWorker(w); err != nil {
			return err
		}
		var idle int64
		idleBy := map[int32]int32{}
		for i := w.lruHead; i != none; i = c.sbs[i].next {
			s := &c.sbs[i]
			if !s.live || s.busy || s.worker != w.id {
				return fmt.Errorf("%s: idle list holds sandbox %d (live %v busy %v worker %d)", w.name, i, s.live, s.busy, s.worker)
			}
			if s.next != none && c.sbs[s.next].lastUsed < s.lastUsed {
				return fmt.Errorf("%s: idle list out of order at %d", w.name, i)
			}
			idle += s.memoryMB
			idleBy[s.app]++
		}
		if idle != w.idleMB || used[w.id] != w.usedMB || busy[w.id] != w.busyMB {
			return fmt.Errorf("%s: idle %d/%d used %d/%d busy %d/%d MB (counted/recorded)",
				w.name, idle, w.idleMB, used[w.id], w.usedMB, busy[w.id], w.busyMB)
		}
		idleAll += idle
		var reported int32
		for i := range w.apps {
			app, p := int32(i), &w.apps[i]
			if p.idle != idleBy[app] || p.live != live[int(w.id)*n+i] {
				return fmt.Errorf("%s: app %d: idle %d/%d live %d/%d (counted/recorded)", w.name, app, idleBy[app], p.idle, live[int(w.id)*n+i], p.live)
			}
			if c.report && w.idleKeys[c.apps[app].Key] != p.idle {
				return fmt.Errorf("%s: app %d: reports %d idle, has %d", w.name, app, w.idleKeys[c.apps[app].Key], p.idle)
			}
			k := int32(0)
			for j := p.head; j != none; j = c.sbs[j].knext {
				if c.sbs[j].app != app {
					return fmt.Errorf("%s: app %d's list holds sandbox %d of app %d", w.name, app, j, c.sbs[j].app)
				}
				k++
			}
			if k != p.idle {
				return fmt.Errorf("%s: app %d: list holds %d, idle %d", w.name, app, k, p.idle)
			}
			reported += p.idle
		}
		if c.report {
			var sum int32
			for _, v := range w.idleKeys {
				sum += v
			}
			if sum != reported {
				return fmt.Errorf("%s: reports %d idle, has %d", w.name, sum, reported)
			}
		}
	}
	if idleAll != c.idleMB {
		return fmt.Errorf("cluster: idle %d MB counted, %d recorded", idleAll, c.idleMB)
	}
	return nil
}
