package admission

import (
	"sync/atomic"
	"time"
)

// epoch anchors the monotonic clock leases are measured on.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// Lease is this coordinator's share of one pool. Slots and in-flight share
// one atomic word (slots in the high half) so that admitting and lowering
// the cap can never interleave into more in flight than slots.
type Lease struct {
	word       atomic.Uint64
	validUntil atomic.Int64 // monotonic ns; 0 = never granted
	tail       atomic.Int64 // ns: the longest timeout the leader was told of
	throttled  atomic.Int64
	seen       atomic.Int64 // throttled at the last renewal
	waiting    atomic.Int64 // callers of AdmitWait waiting for a slot
	contended  atomic.Bool  // the leader said others want more than they hold
	pool       string
}

func pack(slots, inFlight uint32) uint64 { return uint64(slots)<<32 | uint64(inFlight) }
func unpack(w uint64) (slots, inFlight uint32) {
	return uint32(w >> 32), uint32(w)
}

// tryAcquire takes a slot if one is free, the lease is valid and the
// invocation's timeout is covered by the tail the leader accounts for.
func (l *Lease) tryAcquire(timeout time.Duration) bool {
	if monoNow() >= l.validUntil.Load() || int64(timeout) > l.tail.Load() {
		return false
	}
	for {
		w := l.word.Load()
		slots, inFlight := unpack(w)
		if inFlight >= slots {
			return false
		}
		if l.word.CompareAndSwap(w, pack(slots, inFlight+1)) {
			return true
		}
	}
}

// Release frees the slot an admitted invocation held.
func (l *Lease) Release() {
	for {
		w := l.word.Load()
		slots, inFlight := unpack(w)
		if inFlight == 0 {
			return
		}
		if l.word.CompareAndSwap(w, pack(slots, inFlight-1)) {
			return
		}
	}
}

// lowerCap sets slots to max(want, in-flight) and returns it: after this
// no admission can take the lease above the new cap.
func (l *Lease) lowerCap(want uint32) uint32 {
	for {
		w := l.word.Load()
		slots, inFlight := unpack(w)
		next := max(want, inFlight)
		if next >= slots {
			return slots
		}
		if l.word.CompareAndSwap(w, pack(next, inFlight)) {
			return next
		}
	}
}

// setSlots installs a grant's slot count.
func (l *Lease) setSlots(n uint32) {
	for {
		w := l.word.Load()
		_, inFlight := unpack(w)
		if l.word.CompareAndSwap(w, pack(n, inFlight)) {
			return
		}
	}
}

// Stats reads the lease's counters.
func (l *Lease) Stats() (slots, inFlight int64, throttled int64) {
	s, f := unpack(l.word.Load())
	return int64(s), int64(f), l.throttled.Load()
}

// lastThrottled and noteThrottled let a renewal tell whether requests
// were refused since the previous one.
func (l *Lease) lastThrottled() int64  { return l.seen.Load() }
func (l *Lease) noteThrottled(n int64) { l.seen.Store(n) }
