package coordinator

import (
	"context"
	"sync"
	"time"
)

// provisionLoop keeps provisioned concurrency met while this coordinator
// leads (run by the leader supervisor): every second, each such function's sandboxes are counted across
// available workers and the missing ones started (fleet.Router.Provision).
func (c *Coordinator) provisionLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.provisionOnce(ctx)
	}
}

func (c *Coordinator) provisionOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for name, want := range c.raft.Quota().Provisioned {
		fn, err := c.raft.Function(name)
		if err != nil {
			continue
		}
		wg.Go(func() {
			started := c.router.Provision(ctx, specOf(fn), int(want))
			if started > 0 && c.metrics != nil {
				// Cold starts made ahead, so that invocations find them warm.
				c.metrics.coldStarts.WithLabelValues(fn.GetConfig().GetName(), fn.GetVersion(), "provisioned").Add(float64(started))
			}
		})
	}
	wg.Wait()
}
