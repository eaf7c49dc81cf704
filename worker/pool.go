package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/sandbox"
	"github.com/gustfaas/gust/worker/runtimeapi"
	"github.com/gustfaas/gust/worker/workerapi"
)

// instance is one sandbox with its Runtime API server. Whoever took it
// from the pool owns it; the pool holds only idle ones.
type instance struct {
	id           string
	key          string
	name         string // the function's stored name
	function     string // name:version, for listings
	memoryMB     int
	sb           *sandbox.Sandbox
	api          *runtimeapi.Server
	exitCtx      context.Context // cancelled when the process exits
	logs         *logTail
	initDuration time.Duration
	reported     bool   // Init Duration goes on the first REPORT only
	coldReason   string // why its first invocation was cold; "" when it was made ahead
	lastUsed     time.Time
	idleUntil    time.Time // keep-alive deadline, set when it goes idle
	frozen       bool
	// provisionedUntil exempts the sandbox from keep-alive and eviction
	// (provisioned concurrency); guarded by the pool's lock once pooled.
	provisionedUntil time.Time
	// retired: its function was deleted while it was busy, so it must not
	// go back to the pool; guarded by the pool's lock.
	retired bool
}

// say writes a platform line (START, END, REPORT) into the invocation's
// tail and the function's retained log.
func (i *instance) say(format string, args ...any) {
	line := fmt.Appendf(nil, format, args...)
	i.logs.Write(line)
	if i.logs.keep != nil {
		i.logs.keep.Write(line)
	}
}

func (i *instance) freeze() error {
	if err := i.sb.Pause(); err != nil {
		return err
	}
	i.frozen = true
	return nil
}

func (i *instance) thaw() error {
	if !i.frozen {
		return nil
	}
	if err := i.sb.Resume(); err != nil {
		return err
	}
	i.frozen = false
	return nil
}

// pool holds idle sandboxes per key (most recently used last) and counts
// the memory every live sandbox was granted.
type pool struct {
	mu       sync.Mutex
	idle     map[string][]*instance
	busy     map[string]*instance
	usedMB   int
	sandboxN int
	watchers map[chan struct{}]struct{}
	// unloaded remembers why the last sandbox of a key went away
	// (keep_alive_expired or evicted), for the next cold start's reason.
	unloaded map[string]string
}

// maxUnloaded bounds the unloaded map; past it the memory starts over.
const maxUnloaded = 10000

// noteUnloaded records why a sandbox of key was unloaded.
func (p *pool) noteUnloaded(key, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.unloaded) >= maxUnloaded {
		clear(p.unloaded)
	}
	p.unloaded[key] = why
}

// coldReason says why an invocation of key found no idle sandbox here.
func (p *pool) coldReason(key, name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range p.busy {
		if i.key == key {
			return "warm_busy"
		}
	}
	if why, ok := p.unloaded[key]; ok {
		return why
	}
	prefix := name + "\x00"
	for k := range p.idle {
		if strings.HasPrefix(k, prefix) {
			return "new_version"
		}
	}
	for _, i := range p.busy {
		if strings.HasPrefix(i.key, prefix) {
			return "new_version"
		}
	}
	return "no_sandbox"
}

// subscribe registers a watcher of pool changes.
func (p *pool) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.watchers[ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.watchers, ch)
		p.mu.Unlock()
	}
}

// notify wakes every watcher; a watcher already signalled stays so once.
func (p *pool) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notifyLocked()
}

func (p *pool) notifyLocked() {
	for ch := range p.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// state counts sandboxes per key and the memory held by busy ones: idle
// sandboxes are evicted on demand, so their memory counts as free.
func (p *pool) state() (st workerapi.PoolState, busyMB int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st = workerapi.PoolState{Idle: map[string]int32{}, Busy: map[string]int32{}}
	busyMB = p.usedMB
	for key, list := range p.idle {
		st.Idle[key] = int32(len(list))
		for _, inst := range list {
			busyMB -= inst.memoryMB
		}
	}
	for _, inst := range p.busy {
		st.Busy[inst.key]++
	}
	return st, busyMB
}

func newPool() *pool {
	return &pool{idle: map[string][]*instance{}, busy: map[string]*instance{}, watchers: map[chan struct{}]struct{}{}, unloaded: map[string]string{}}
}

// take removes the most recently used idle sandbox for key. Sandboxes
// whose process died while idle are returned as dead, for the caller to retire.
func (p *pool) take(key string) (inst *instance, dead []*instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	for len(list) > 0 {
		last := list[len(list)-1]
		list = list[:len(list)-1]
		if last.exitCtx.Err() != nil {
			dead = append(dead, last)
			continue
		}
		inst = last
		p.busy[inst.id] = inst
		break
	}
	p.setIdle(key, list)
	p.notifyLocked()
	return inst, dead
}

func (p *pool) setIdle(key string, list []*instance) {
	if len(list) == 0 {
		delete(p.idle, key)
	} else {
		p.idle[key] = list
	}
}

// count is how many sandboxes of key exist, idle or busy.
func (p *pool) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle[key])
	for _, i := range p.busy {
		if i.key == key {
			n++
		}
	}
	return n
}

// put returns a sandbox to the idle list, unless its function was retired
// meanwhile: then it says false, and the caller destroys it.
func (p *pool) put(inst *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, inst.id)
	if inst.retired {
		p.notifyLocked()
		return false
	}
	p.idle[inst.key] = append(p.idle[inst.key], inst)
	p.notifyLocked()
	return true
}

// retireFunction takes every idle sandbox of the function named and marks
// its busy ones, which put will then refuse.
func (p *pool) retireFunction(name string) []*instance {
	p.mu.Lock()
	for _, i := range p.busy {
		if i.name == name {
			i.retired = true
		}
	}
	p.mu.Unlock()
	return p.takeWhere(func(i *instance) bool { return i.name == name })
}

// reserve accounts memory for a new sandbox if it fits.
func (p *pool) reserve(memoryMB, capacityMB, maxSandboxes int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.usedMB+memoryMB > capacityMB || (maxSandboxes > 0 && p.sandboxN >= maxSandboxes) {
		return false
	}
	p.usedMB += memoryMB
	p.sandboxN++
	p.notifyLocked()
	return true
}

// release frees a destroyed sandbox's memory.
func (p *pool) release(memoryMB int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.usedMB -= memoryMB
	p.sandboxN--
	p.notifyLocked()
}

// markBusy records a fresh sandbox as busy.
func (p *pool) markBusy(inst *instance) {
	p.mu.Lock()
	p.busy[inst.id] = inst
	p.notifyLocked()
	p.mu.Unlock()
}

// forget drops a sandbox from the busy set (it is being retired).
func (p *pool) forget(id string) {
	p.mu.Lock()
	delete(p.busy, id)
	p.mu.Unlock()
}

// takeLeastRecent removes the idle sandbox unused the longest.
func (p *pool) takeLeastRecent() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var victim *instance
	now := time.Now()
	for _, list := range p.idle {
		for _, i := range list {
			if !i.provisionedUntil.After(now) && (victim == nil || i.lastUsed.Before(victim.lastUsed)) {
				victim = i
			}
		}
	}
	if victim != nil {
		list := p.idle[victim.key]
		for j, i := range list {
			if i == victim {
				p.setIdle(victim.key, append(list[:j:j], list[j+1:]...))
				break
			}
		}
	}
	return victim
}

// takeExpired removes idle sandboxes whose keep-alive ended before now,
// except provisioned ones.
func (p *pool) takeExpired(now time.Time) []*instance {
	return p.takeWhere(func(i *instance) bool { return i.idleUntil.Before(now) && !i.provisionedUntil.After(now) })
}

// markProvisioned exempts up to count sandboxes of key until the given
// time and returns how many sandboxes of key exist.
func (p *pool) markProvisioned(key string, count int, until time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	mark := func(i *instance) {
		if n < count {
			i.provisionedUntil = until
		}
		n++
	}
	for _, i := range p.idle[key] {
		mark(i)
	}
	for _, i := range p.busy {
		if i.key == key {
			mark(i)
		}
	}
	return n
}

// takeUnfrozenIdleSince removes thawed idle sandboxes last used before t.
func (p *pool) takeUnfrozenIdleSince(t time.Time) []*instance {
	return p.takeWhere(func(i *instance) bool { return !i.frozen && i.lastUsed.Before(t) })
}

func (p *pool) takeAll() []*instance {
	return p.takeWhere(func(*instance) bool { return true })
}

func (p *pool) takeWhere(match func(*instance) bool) []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*instance
	for key, list := range p.idle {
		kept := list[:0]
		for _, inst := range list {
			if match(inst) {
				out = append(out, inst)
			} else {
				kept = append(kept, inst)
			}
		}
		p.setIdle(key, kept)
	}
	return out
}

func (p *pool) list(worker string) []workerapi.Sandbox {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []workerapi.Sandbox
	add := func(i *instance, state string) {
		out = append(out, workerapi.Sandbox{ID: i.id, Worker: worker, Function: i.function, MemoryMB: i.memoryMB, State: state, LastUsed: i.lastUsed})
	}
	for _, list := range p.idle {
		for _, i := range list {
			if i.frozen {
				add(i, "frozen")
			} else {
				add(i, "idle")
			}
		}
	}
	for _, i := range p.busy {
		add(i, "busy")
	}
	return out
}
