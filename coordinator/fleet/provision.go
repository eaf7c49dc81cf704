package fleet

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/worker/workerapi"
)

// ProvisionHold is how long a Provision call exempts sandboxes from
// keep-alive; the leader repeats the call well before it runs out, and
// when provisioned concurrency is removed the marks simply lapse.
const ProvisionHold = 5 * time.Second

// Provision keeps want initialised sandboxes of fn across the available
// workers: it keeps those they have and starts the missing ones on the
// workers with the most free memory, so sandboxes lost with a worker come
// back. It returns how many sandboxes it started.
func (r *Router) Provision(ctx context.Context, fn workerapi.FunctionSpec, want int) (started int) {
	have, free := r.counts(workerapi.PoolKey(fn))
	assign := map[string]int{}
	total := 0
	for w, n := range have {
		take := min(n, want-total)
		assign[w], total = take, total+take
	}
	for total < want {
		best := ""
		for w, f := range free {
			if f >= int64(fn.MemoryMB) && (best == "" || f > free[best] || (f == free[best] && w < best)) {
				best = w
			}
		}
		if best == "" {
			r.log.Warn("no worker has room for provisioned concurrency", "function", fn.Name, "want", want, "have", total)
			break
		}
		assign[best]++
		free[best] -= int64(fn.MemoryMB)
		total++
	}
	names := make([]string, 0, len(assign))
	for w := range assign {
		names = append(names, w)
	}
	sort.Strings(names)
	var wg sync.WaitGroup
	var n atomic.Int64
	for _, w := range names {
		conn, ok := r.conn(w)
		if !ok || assign[w] == 0 {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, s, err := conn.Provision(pctx, fn, assign[w], ProvisionHold)
			n.Add(int64(s))
			if err != nil {
				r.log.Warn("provision", "function", fn.Name, "worker", w, "err", err)
			}
		})
	}
	wg.Wait()
	return int(n.Load())
}
