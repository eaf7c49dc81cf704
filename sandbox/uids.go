package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// uidLockDir holds one lock file per sandbox uid in use on this host, so
// that workers sharing a host (several gustd processes, as in the tests)
// never hand out the same uid: each holds an flock on its uids' files,
// which the kernel drops if the process dies.
const uidLockDir = "/run/gust/uids"

// uidPool hands out sandbox uids, one per live sandbox. A uid freed is not
// handed out again until the others have been, so a new sandbox never
// inherits whatever the kernel may still be counting for the last one.
type uidPool struct {
	mu   sync.Mutex
	dir  string           // lock files; "" when the host offers none
	used map[int]*os.File // uid → its locked file (nil without dir)
	next int              // offset from UIDBase to try first
}

// newUIDPool starts at an offset of its own (from seed), so pools of
// workers that cannot see each other's locks (in separate containers)
// seldom meet.
func newUIDPool(dir string, seed uint64) *uidPool {
	p := &uidPool{dir: dir, used: map[int]*os.File{}, next: int(seed % UIDCount)}
	if dir != "" && os.MkdirAll(dir, 0o700) != nil {
		p.dir = ""
	}
	return p
}

var errNoUID = errors.New("every sandbox uid is in use")

func (p *uidPool) get() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range UIDCount {
		uid := UIDBase + p.next
		p.next = (p.next + 1) % UIDCount
		if _, taken := p.used[uid]; taken {
			continue
		}
		f, err := p.lock(uid)
		if err != nil {
			continue // another worker's
		}
		p.used[uid] = f
		return uid, nil
	}
	return 0, errNoUID
}

// lock takes uid host-wide, or fails if another process holds it.
func (p *uidPool) lock(uid int) (*os.File, error) {
	if p.dir == "" {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(p.dir, strconv.Itoa(uid)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("uid %d: %w", uid, err)
	}
	return f, nil
}

func (p *uidPool) put(uid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.used[uid]; f != nil {
		f.Close() // drops the lock; the file stays, for the next taker
	}
	delete(p.used, uid)
}
