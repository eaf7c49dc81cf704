package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/gustfaas/gust/worker/workerapi"
)

// The usage rollup is what `gust cost` bills from. Every invocation, sync
// or async, runs on a worker, so each worker keeps, per function, one
// bucket per minute of the requests it ran and their billed time; a
// coordinator sums the workers' answers, so any coordinator gives the same
// figures. A bucket is 32 bytes and only minutes with invocations have
// one, so a function costs at most 14 days × 1,440 minutes × 32 bytes
// (645 KB) at the default retention. The rollup is saved to
// DATA/usage.json every usageSaveEvery and on Close, so a restart (even
// SIGKILL) loses at most that much; a worker that is gone for good takes
// its share with it.

// usageSaveEvery is how often a changed rollup is written to disk.
const usageSaveEvery = 30 * time.Second

// usageBucket is one minute of one function's usage.
type usageBucket struct {
	Minute   int64 // unix time / 60
	Requests int64
	BilledMs int64
	MBMs     int64 // billed ms × memory MB
}

// usageLog is the per-function, per-minute rollup, bounded by retention.
type usageLog struct {
	path      string // "" keeps it in memory only
	retention time.Duration

	mu    sync.Mutex
	fns   map[string][]usageBucket // ascending by minute
	dirty bool
}

func newUsageLog(path string, retention time.Duration) (*usageLog, error) {
	u := &usageLog{path: path, retention: retention, fns: map[string][]usageBucket{}}
	if path == "" {
		return u, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage rollup: %w", err)
	}
	var f usageFile
	if err := json.Unmarshal(data, &f); err != nil {
		// A torn or foreign file must not stop the worker; keep it aside.
		os.Rename(path, path+".corrupt")
		return u, nil
	}
	for name, rows := range f.Functions {
		for _, r := range rows {
			u.fns[name] = append(u.fns[name], usageBucket{Minute: r[0], Requests: r[1], BilledMs: r[2], MBMs: r[3]})
		}
		sort.Slice(u.fns[name], func(i, j int) bool { return u.fns[name][i].Minute < u.fns[name][j].Minute })
	}
	u.prune(time.Now())
	return u, nil
}

// usageFile is usage.json: per function, rows of [minute, requests,
// billed ms, MB·ms].
type usageFile struct {
	Version   int                   `json:"version"`
	Functions map[string][][4]int64 `json:"functions"`
}

// record adds one invocation that ended at `at`.
func (u *usageLog) record(function string, at time.Time, billedMs int64, memoryMB int) {
	minute := at.Unix() / 60
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.fns[function]
	// Invocations end roughly in order, so the minute is almost always the
	// last bucket or a new one after it.
	i := len(b)
	for i > 0 && b[i-1].Minute > minute {
		i--
	}
	if i == 0 || b[i-1].Minute != minute {
		b = append(b, usageBucket{})
		copy(b[i+1:], b[i:])
		b[i] = usageBucket{Minute: minute}
		i++
	}
	b[i-1].Requests++
	b[i-1].BilledMs += billedMs
	b[i-1].MBMs += billedMs * int64(memoryMB)
	u.fns[function] = b
	u.dirty = true
}

// pruneBuckets drops buckets before minute `keep`.
func pruneBuckets(b []usageBucket, keep int64) []usageBucket {
	n := sort.Search(len(b), func(i int) bool { return b[i].Minute >= keep })
	return append(b[:0], b[n:]...)
}

// prune drops buckets older than the retention, and functions left empty;
// the worker calls it with every save, so the rollup stays bounded.
func (u *usageLog) prune(now time.Time) {
	keep := now.Add(-u.retention).Unix() / 60
	u.mu.Lock()
	defer u.mu.Unlock()
	for name, b := range u.fns {
		if len(b) > 0 && b[0].Minute < keep {
			b = pruneBuckets(b, keep)
			u.dirty = true
		}
		if len(b) == 0 {
			delete(u.fns, name)
		} else {
			u.fns[name] = b
		}
	}
}

// query sums each function's buckets in [since, until], to the minute;
// function "" means every function. It also says where the retained data
// begins.
func (u *usageLog) query(function string, since, until time.Time) (out []workerapi.Usage, retainedSince time.Time) {
	from, to := since.Unix()/60, until.Unix()/60
	u.mu.Lock()
	defer u.mu.Unlock()
	oldest := int64(0)
	for name, b := range u.fns {
		if len(b) > 0 && (oldest == 0 || b[0].Minute < oldest) {
			oldest = b[0].Minute
		}
		if function != "" && name != function {
			continue
		}
		sum := workerapi.Usage{Function: name}
		for i := sort.Search(len(b), func(i int) bool { return b[i].Minute >= from }); i < len(b) && b[i].Minute <= to; i++ {
			sum.Requests += b[i].Requests
			sum.BilledMs += b[i].BilledMs
			sum.BilledMBMs += b[i].MBMs
		}
		if sum.Requests > 0 {
			out = append(out, sum)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	if oldest != 0 {
		retainedSince = time.Unix(oldest*60, 0)
	}
	return out, retainedSince
}

// save writes the rollup if it changed, atomically (temp file, fsync,
// rename), so a crash leaves the old file or the new one.
func (u *usageLog) save() error {
	if u.path == "" {
		return nil
	}
	u.mu.Lock()
	if !u.dirty {
		u.mu.Unlock()
		return nil
	}
	f := usageFile{Version: 1, Functions: make(map[string][][4]int64, len(u.fns))}
	for name, b := range u.fns {
		rows := make([][4]int64, len(b))
		for i, x := range b {
			rows[i] = [4]int64{x.Minute, x.Requests, x.BilledMs, x.MBMs}
		}
		f.Functions[name] = rows
	}
	u.dirty = false
	u.mu.Unlock()
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(u.path, data); err != nil {
		u.mu.Lock()
		u.dirty = true
		u.mu.Unlock()
		return fmt.Errorf("save usage rollup: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Usage sums, per function, the invocations this worker ran in [since,
// until] (to the minute; a zero until means now); function "" means all.
// RetainedSince is where the worker's data begins (zero if it has none).
func (w *Worker) Usage(_ context.Context, function string, since, until time.Time) (workerapi.UsageReport, error) {
	if until.IsZero() {
		until = time.Now()
	}
	usage, retained := w.usage.query(function, since, until)
	return workerapi.UsageReport{Functions: usage, RetainedSince: retained}, nil
}

// saveUsage writes the rollup every usageSaveEvery until stop closes.
func (w *Worker) saveUsage() {
	defer close(w.usageDone)
	tick := time.NewTicker(usageSaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.usage.prune(time.Now())
		if err := w.usage.save(); err != nil {
			w.log.Warn("usage rollup", "err", err)
		}
	}
}
