package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gustfaas/gust/sandbox"
)

// stemPool keeps a stock of stem cells: sandboxes created ahead, before
// anyone knows which function they are for, so a cold start skips
// container creation (namespaces, cgroups, mounts, seccomp, the re-executed
// init) and pays only for assignment, exec and the runtime's own start.
// A background filler tops the stock up after every take.
type stemPool struct {
	mgr    *sandbox.Manager
	target int
	log    *slog.Logger

	mu       sync.Mutex
	ready    []*sandbox.Sandbox
	creating int
	disabled bool
	wake     chan struct{}
}

// stemFillers is how many stem cells are created at once: two keep up
// with a burst of cold starts on a small machine without taking it over.
const stemFillers = 2

func newStemPool(mgr *sandbox.Manager, target int, log *slog.Logger) *stemPool {
	return &stemPool{mgr: mgr, target: target, log: log, wake: make(chan struct{}, stemFillers)}
}

// take returns a ready stem cell, or nil when the stock is empty.
func (p *stemPool) take() *sandbox.Sandbox {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb *sandbox.Sandbox
	for len(p.ready) > 0 && sb == nil {
		sb, p.ready = p.ready[len(p.ready)-1], p.ready[:len(p.ready)-1]
		select {
		case <-sb.Exited(): // its init died while waiting: replace it
			go sb.Destroy()
			sb = nil
		default:
		}
	}
	for range stemFillers {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return sb
}

// fill keeps the stock at target until stop closes, then destroys it.
func (p *stemPool) fill(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for range stemFillers {
		wg.Add(1)
		go func() { defer wg.Done(); p.fillLoop(stop) }()
	}
	wg.Wait()
	p.destroyAll()
}

func (p *stemPool) fillLoop(stop <-chan struct{}) {
	for {
		p.mu.Lock()
		need := !p.disabled && len(p.ready)+p.creating < p.target
		if need {
			p.creating++
		}
		p.mu.Unlock()
		if !need {
			select {
			case <-stop:
				return
			case <-p.wake:
				continue
			}
		}
		began := time.Now()
		sb, err := p.mgr.CreateStem(context.Background(), newSandboxID())
		p.mu.Lock()
		p.creating--
		p.mu.Unlock()
		switch {
		case errors.Is(err, sandbox.ErrNotSupported):
			p.log.Warn("stem cells disabled; cold starts create their sandbox", "err", err)
			p.mu.Lock()
			p.disabled = true
			p.mu.Unlock()
			continue
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
		p.mu.Lock()
		p.ready = append(p.ready, sb)
		p.mu.Unlock()
		select {
		case <-stop:
			return
		default:
		}
	}
}

func (p *stemPool) destroyAll() {
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, sb := range ready {
		if err := sb.Destroy(); err != nil {
			p.log.Warn("destroy stem cell", "sandbox", sb.ID(), "err", err)
		}
	}
}

// size is how many stem cells are ready.
func (p *stemPool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}
