package coordinator

import (
	"context"
	"sort"
	"sync"
	"time"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/worker"
)

// provisionHold is how long a Provision call exempts sandboxes from
// keep-alive; the leader repeats the call well before it runs out, and
// when provisioned concurrency is removed the marks simply lapse.
const provisionHold = 5 * time.Second

// provisionLoop keeps provisioned concurrency met, on the leader only:
// every second it counts each such function's sandboxes across available
// workers, keeps those, and starts the missing ones on the workers with
// the most free memory — so sandboxes lost with a worker come back.
func (c *Coordinator) provisionLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.raft.IsLeader() {
			c.provisionOnce(ctx)
		}
	}
}

func (c *Coordinator) provisionOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for name, want := range c.raft.Quota().Provisioned {
		fn, err := c.raft.Function(name)
		if err != nil {
			continue
		}
		spec := specOf(fn)
		have, free := c.router.counts(worker.PoolKey(spec))
		assign := map[string]int{}
		total := 0
		for w, n := range have {
			take := min(n, int(want)-total)
			assign[w], total = take, total+take
		}
		for total < int(want) {
			best := ""
			for w, f := range free {
				if f >= int64(spec.MemoryMB) && (best == "" || f > free[best] || (f == free[best] && w < best)) {
					best = w
				}
			}
			if best == "" {
				c.log.Warn("no worker has room for provisioned concurrency", "function", name, "want", want, "have", total)
				break
			}
			assign[best]++
			free[best] -= int64(spec.MemoryMB)
			total++
		}
		names := make([]string, 0, len(assign))
		for w := range assign {
			names = append(names, w)
		}
		sort.Strings(names)
		for _, w := range names {
			conn, ok := c.router.conn(w)
			if !ok || assign[w] == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				started, err := conn.provision(pctx, &nodev1.ProvisionRequest{Function: worker.SpecToProto(spec),
					Count: int32(assign[w]), HoldMs: provisionHold.Milliseconds()})
				if started > 0 && c.metrics != nil {
					// Cold starts made ahead, so that invocations find them warm.
					c.metrics.coldStarts.WithLabelValues(fn.GetConfig().GetName(), fn.GetVersion(), "provisioned").Add(float64(started))
				}
				if err != nil {
					c.log.Warn("provision", "function", name, "worker", w, "err", err)
				}
			}()
		}
	}
	wg.Wait()
}
