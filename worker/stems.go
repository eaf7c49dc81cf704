package worker

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/gustfaas/gust/sandbox"
)

// stemPool keeps a stock of stem cells: sandboxes created ahead, before
// anyone knows which function they are for, so a cold start skips
// container creation (namespaces, cgroup, mounts, seccomp, the re-executed
// init) and pays only for assignment, exec and the runtime's own start.
//
// The stock is a buffered channel that two fillers keep full. Container
// creation is CPU-bound, so every creation — a filler's or a cold start's
// own when the stock is empty — holds one of a few creation slots: a burst
// of cold starts each creating its container at once thrashed (68 at once
// took a second each on 2 cores). A cold start that finds the stock empty
// takes whichever comes first, a stem cell or a slot.
type stemPool struct {
	mgr   *sandbox.Manager
	log   *slog.Logger
	ready chan *sandbox.Sandbox
	slots chan struct{} // creation slots, shared with cold starts
	// off is closed when stem cells cannot work here (a dynamically linked
	// binary); cold starts then create their sandboxes.
	off     chan struct{}
	offOnce sync.Once
}

// stemFillers is how many stem cells are created at once in the background.
const stemFillers = 2

func newStemPool(mgr *sandbox.Manager, target int, log *slog.Logger) *stemPool {
	return &stemPool{mgr: mgr, log: log, ready: make(chan *sandbox.Sandbox, target),
		slots: make(chan struct{}, max(stemFillers+1, 2*runtime.NumCPU())), off: make(chan struct{})}
}

// get returns a ready stem cell, or nil and a release func when the caller
// should create its own sandbox now (holding a creation slot until it calls
// release). It waits while ctx allows.
func (p *stemPool) get(ctx context.Context) (sb *sandbox.Sandbox, release func(), err error) {
	for {
		select {
		case sb := <-p.ready:
			if p.alive(sb) {
				return sb, nil, nil
			}
			continue
		default:
		}
		select {
		case sb := <-p.ready:
			if p.alive(sb) {
				return sb, nil, nil
			}
		case p.slots <- struct{}{}:
			return nil, func() { <-p.slots }, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// alive drops a stem cell whose init died while it waited.
func (p *stemPool) alive(sb *sandbox.Sandbox) bool {
	select {
	case <-sb.Exited():
		go sb.Destroy()
		return false
	default:
		return true
	}
}

// fill keeps the stock full until stop closes, then destroys it.
func (p *stemPool) fill(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for range stemFillers {
		wg.Add(1)
		go func() { defer wg.Done(); p.create(stop) }()
	}
	wg.Wait()
	for {
		select {
		case sb := <-p.ready:
			if err := sb.Destroy(); err != nil {
				p.log.Warn("destroy stem cell", "sandbox", sb.ID(), "err", err)
			}
		default:
			return
		}
	}
}

func (p *stemPool) create(stop <-chan struct{}) {
	for {
		select {
		case p.slots <- struct{}{}:
		case <-stop:
			return
		}
		began := time.Now()
		sb, err := p.mgr.CreateStem(context.Background(), newSandboxID())
		<-p.slots
		switch {
		case errors.Is(err, sandbox.ErrNotSupported):
			p.offOnce.Do(func() {
				p.log.Warn("stem cells disabled; cold starts create their sandbox", "err", err)
				close(p.off)
			})
			return
		case err != nil:
			p.log.Warn("create stem cell", "err", err)
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		p.log.Debug("stem cell ready", "sandbox", sb.ID(), "create_ms", ms(time.Since(began)))
		select {
		case p.ready <- sb: // waits while the stock is full
		case <-stop:
			if err := sb.Destroy(); err != nil {
				p.log.Warn("destroy stem cell", "sandbox", sb.ID(), "err", err)
			}
			return
		}
	}
}

// size is how many stem cells are ready.
func (p *stemPool) size() int { return len(p.ready) }
