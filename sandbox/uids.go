package sandbox

import (
	"errors"
	"sync"
)

// uidPool hands out sandbox uids, one per live sandbox. A uid freed is not
// handed out again until the others have been, so a new sandbox never
// inherits whatever the kernel may still be counting for the last one.
type uidPool struct {
	mu   sync.Mutex
	used map[int]bool
	next int // offset from UIDBase to try first
}

func newUIDPool() *uidPool { return &uidPool{used: map[int]bool{}} }

var errNoUID = errors.New("every sandbox uid is in use")

func (p *uidPool) get() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range UIDCount {
		uid := UIDBase + p.next
		p.next = (p.next + 1) % UIDCount
		if !p.used[uid] {
			p.used[uid] = true
			return uid, nil
		}
	}
	return 0, errNoUID
}

func (p *uidPool) put(uid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, uid)
}
