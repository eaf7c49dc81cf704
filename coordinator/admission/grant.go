package admission

import (
	"time"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/gustfaas/gust/raftstore"
)

// Timings of the lease protocol.
const (
	// TTL is how long a grant is valid from when the coordinator asked.
	TTL = 2 * time.Second
	// Margin is subtracted by the coordinator from TTL, covering clock
	// rate drift and the time the response took.
	Margin = 300 * time.Millisecond
	// Skew is added by the leader to every expiry, covering wall-clock
	// differences between an old leader and a new one.
	Skew = 500 * time.Millisecond
)

// Grant decides one coordinator's leases, on the leader. Callers must
// serialise Grant and the commit of its records: two grants computed from
// the same view would hand out the same free slots twice. For each pool it
// grants min(want, limit − what every other coordinator's grants still
// cover), where a grant covers its slots until it expires plus the longest
// timeout admitted under it, plus Skew. It returns the Raft records to
// commit and the answers to send once committed.
func Grant(view raftstore.QuotaView, req *nodev1.RenewLeasesRequest, now time.Time) ([]*raftv1.Lease, []*nodev1.LeaseGrant) {
	var records []*raftv1.Lease
	var grants []*nodev1.LeaseGrant
	nowNs := now.UnixNano()
	for _, d := range req.GetDemands() {
		limit := view.PoolLimit(d.GetPool())
		if limit < 0 {
			limit = 0
		}
		var others int64
		contended := false
		for coord, l := range view.Leases[d.GetPool()] {
			if coord == req.GetCoordinator() {
				continue
			}
			if nowNs < l.GetExpiresUnixNano()+l.GetTailNano()+int64(Skew) {
				others += l.GetSlots()
			}
			if nowNs < l.GetExpiresUnixNano() && l.GetWant() > l.GetSlots() {
				contended = true
			}
		}
		slots := min(d.GetWant(), limit-others)
		if slots < 0 {
			slots = 0
		}
		tail := time.Duration(d.GetMaxTimeoutMs()) * time.Millisecond
		// Want is kept only when the coordinator refused requests since its
		// last grant: unmet demand, not idle headroom, makes a pool contended.
		var starvedWant int64
		if prev, ok := view.Leases[d.GetPool()][req.GetCoordinator()]; ok && d.GetThrottled() > prev.GetThrottled() {
			starvedWant = d.GetWant()
		}
		records = append(records, &raftv1.Lease{
			Pool: d.GetPool(), Slots: slots, ExpiresUnixNano: now.Add(TTL).UnixNano(), TailNano: int64(tail),
			InFlight: d.GetInFlight(), Throttled: d.GetThrottled(), Want: starvedWant,
		})
		grants = append(grants, &nodev1.LeaseGrant{Pool: d.GetPool(), Slots: slots, TtlMs: TTL.Milliseconds(), Contended: contended})
	}
	return records, grants
}
