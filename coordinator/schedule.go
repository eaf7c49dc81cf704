package coordinator

import (
	"context"
	"regexp"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/requestid"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"github.com/robfig/cron/v3"
)

// cronParser accepts robfig/cron syntax: five fields, an optional leading
// seconds field, and descriptors such as @hourly and @every 1s.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var scheduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// maxCatchUp bounds how many missed ticks of one schedule fire per round
// after a long outage; each missed tick still fires (late) exactly once.
const maxCatchUp = 10

func (iv *invoker) AddSchedule(ctx context.Context, s *gustv1.ScheduleInfo) (*gustv1.ScheduleInfo, error) {
	if !scheduleNameRE.MatchString(s.GetName()) {
		return nil, apierr.New(apierr.InvalidParameterValue, "schedule name %q must be 1 to 64 letters, digits, '.', '-' or '_'", s.GetName())
	}
	if _, err := cronParser.Parse(s.GetCron()); err != nil {
		return nil, apierr.New(apierr.InvalidParameterValue, "cron expression %q: %v", s.GetCron(), err)
	}
	if _, err := iv.fns.Get(ctx, s.GetFunction(), ""); err != nil {
		return nil, err
	}
	payload := s.GetPayload()
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if len(payload) > iv.limits.MaxAsyncPayload {
		return nil, apierr.New(apierr.RequestTooLarge, "schedule payload of %d bytes is over the %d byte limit", len(payload), iv.limits.MaxAsyncPayload)
	}
	sc := &raftv1.Schedule{Name: s.GetName(), Function: s.GetFunction(), Cron: s.GetCron(), Payload: payload, CreatedUnixNano: time.Now().UnixNano()}
	out := &raftv1.Schedule{}
	if err := iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPutSchedule, Msg: &raftv1.PutSchedule{Schedule: sc}}, out); err != nil {
		return nil, err
	}
	return scheduleInfo(out), nil
}

func (iv *invoker) ListSchedules() []*gustv1.ScheduleInfo {
	var out []*gustv1.ScheduleInfo
	for _, sc := range iv.fns.store.Schedules() {
		out = append(out, scheduleInfo(sc))
	}
	return out
}

func (iv *invoker) RemoveSchedule(ctx context.Context, name string) error {
	return named(iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdDeleteSchedule, Msg: &raftv1.DeleteSchedule{Name: name}}, nil), name)
}

func scheduleInfo(sc *raftv1.Schedule) *gustv1.ScheduleInfo {
	return &gustv1.ScheduleInfo{Name: sc.GetName(), Function: sc.GetFunction(), Cron: sc.GetCron(), Payload: sc.GetPayload(),
		Fired: sc.GetFired(), LastFiredUnixNano: sc.GetLastTickUnixNano()}
}

// scheduleLoop fires due ticks while this coordinator leads (run by the
// leader supervisor). Each tick is one Raft entry
// that records it and enqueues its event together, and a tick at or before
// the last recorded one is ignored: after a failover the new leader fires
// the ticks the old one missed (late, once) and never one it already fired.
func (iv *invoker) scheduleLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, sc := range iv.fns.store.Schedules() {
			sched, err := cronParser.Parse(sc.GetCron())
			if err != nil {
				continue
			}
			last := time.Unix(0, max(sc.GetLastTickUnixNano(), sc.GetCreatedUnixNano()))
			for i := 0; i < maxCatchUp; i++ {
				next := sched.Next(last)
				if next.After(now) {
					break
				}
				inv := &gustv1.Invocation{Id: requestid.New(), Function: sc.GetFunction(), Payload: sc.GetPayload(),
					IdempotencyKey: scheduleKey(sc.GetName(), next), Schedule: sc.GetName(),
					EnqueuedUnixNano: now.UnixNano(), NextAttemptUnixNano: now.UnixNano()}
				err := iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdFireSchedule,
					Msg: &raftv1.FireSchedule{Name: sc.GetName(), TickUnixNano: next.UnixNano(), Invocation: inv}}, nil)
				if err != nil {
					break
				}
				iv.wakeDispatch()
				last = next
			}
		}
	}
}
