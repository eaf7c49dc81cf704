// Package chaos_test is gust's chaos suite: real gustd processes on
// loopback (3 coordinators, 2 workers), load, and seeded random faults —
// kill -9 of the leader, a follower and a worker, SIGSTOP, a partitioned
// coordinator, restarts with the same data dir. After every scenario it
// checks the invariants users rely on and prints a table; any violation
// fails the test.
//
// GUST_CHAOS=short (the default under CI=true) runs a few scenarios;
// GUST_CHAOS=full (make chaos) runs all with more load. Without either it
// skips. -chaos.seed or GUST_CHAOS_SEED replays a run. GUST_CHAOS_ONLY=S
// runs the scenarios whose names contain S; GUST_CHAOS_VERBOSE=1 starts
// coordinators with -v, and GUST_CHAOS_LOGDIR=DIR keeps every node's whole
// log there when a scenario fails.
package chaos_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
	"github.com/gustfaas/gust/test/proccluster"
)

var seedFlag = flag.Int64("chaos.seed", 0, "seed for the fault schedule (default: GUST_CHAOS_SEED, else time-based)")

// mode is "short", "full" or "" (skip).
func mode() string {
	switch m := os.Getenv("GUST_CHAOS"); m {
	case "short", "full":
		return m
	case "":
		if os.Getenv("CI") == "true" {
			return "short"
		}
		return ""
	default:
		return "short"
	}
}

// Invariants, the table's columns.
const (
	invLimit    = "limit"
	invAsync    = "async"
	invSchedule = "schedule"
	invRaft     = "raft"
	invLeaks    = "leaks"
)

var invariants = []string{invLimit, invAsync, invSchedule, invRaft, invLeaks}

// run is one scenario's state: its cluster, its random source, and what
// its checks found.
type run struct {
	t     *testing.T
	c     *cluster
	rng   *rand.Rand
	full  bool
	res   map[string]string // invariant → ok / VIOLATED
	notes []string
}

func (r *run) logf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, msg)
	r.t.Log(msg)
}

// check records an invariant's outcome; a violation fails the test.
func (r *run) check(inv string, ok bool, format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if !ok {
		r.res[inv] = "VIOLATED"
		r.t.Errorf("INVARIANT %s VIOLATED: %s", inv, msg)
		r.notes = append(r.notes, inv+" VIOLATED: "+msg)
		return
	}
	if r.res[inv] == "" {
		r.res[inv] = "ok"
	}
	r.logf("%s ok: %s", inv, msg)
}

// randDur is a random duration in [lo, hi).
func (r *run) randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

func (r *run) pick(nodes []*node) *node { return nodes[r.rng.IntN(len(nodes))] }

type scenario struct {
	name    string
	short   bool // part of the CI run
	fn      func(r *run)
	prepare func(t *testing.T, i int, n *node) // changes coordinator i before it starts
}

var scenarios = []scenario{
	{"quota-6-burst-leader-kill9", true, scenarioQuotaLeaderKill, nil},
	{"async-40-leader-and-worker-kill9", true, scenarioAsyncKills, nil},
	{"schedule-1s-leader-kill9", true, scenarioScheduleLeaderKill, nil},
	{"sigstop-follower-under-load", false, scenarioSigstop, nil},
	{"follower-kill9-restart-same-datadir", false, scenarioRestartFollower, nil},
	{"partition-one-coordinator", false, scenarioPartition, asOwnUID},
}

func TestChaos(t *testing.T) {
	m := mode()
	if m == "" {
		t.Skip("set GUST_CHAOS=short|full (or CI=true) to run the chaos suite")
	}
	testutil.RequireRoot(t)
	seed := *seedFlag
	if seed == 0 {
		if v := os.Getenv("GUST_CHAOS_SEED"); v != "" {
			var err error
			if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("GUST_CHAOS_SEED=%q: %v", v, err)
			}
		}
	}
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	fmt.Printf("chaos: mode %s, seed %d (replay: GUST_CHAOS=%s GUST_CHAOS_SEED=%d)\n", m, seed, m, seed)
	t.Logf("chaos: mode %s, seed %d", m, seed)

	type row struct {
		name string
		res  map[string]string
		dur  time.Duration
	}
	var rows []row
	for i, sc := range scenarios {
		if m == "short" && !sc.short {
			continue
		}
		if only := os.Getenv("GUST_CHAOS_ONLY"); only != "" && !strings.Contains(sc.name, only) {
			continue
		}
		r := &run{rng: rand.New(rand.NewPCG(uint64(seed), uint64(i))), full: m == "full", res: map[string]string{}}
		start := time.Now()
		timeouts := proccluster.CLITimeouts()
		t.Run(sc.name, func(t *testing.T) {
			r.t = t
			completed := false
			defer func() {
				if !completed {
					// A scenario that could not finish (its setup failed, or
					// the cluster never healed) marks what it did not check.
					for _, inv := range invariants {
						if r.res[inv] == "" {
							r.res[inv] = "ERROR"
						}
					}
				}
			}()
			var prep func(int, *node)
			if sc.prepare != nil {
				prep = func(i int, n *node) { sc.prepare(t, i, n) }
			}
			r.c = startCluster(t, prep)
			r.c.WaitHealthy(t, 60*time.Second, 5, 3)
			sc.fn(r)
			if r.c != nil {
				r.checkRaft()
				r.checkLeaks()
			}
			completed = true
		})
		if n := proccluster.CLITimeouts() - timeouts; n > 0 {
			fmt.Printf("chaos: %s: %d gust CLI calls got no answer within 30 s\n", sc.name, n)
		}
		for _, inv := range invariants {
			if r.res[inv] == "" {
				r.res[inv] = "n/a"
			}
		}
		rows = append(rows, row{sc.name, r.res, time.Since(start)})
	}

	var b strings.Builder
	fmt.Fprintf(&b, "chaos invariants (mode %s, seed %d)\n", m, seed)
	fmt.Fprintf(&b, "%-38s", "scenario")
	for _, inv := range invariants {
		fmt.Fprintf(&b, " %-9s", inv)
	}
	fmt.Fprintf(&b, " %s\n", "time")
	violations := 0
	for _, rw := range rows {
		fmt.Fprintf(&b, "%-38s", rw.name)
		for _, inv := range invariants {
			v := rw.res[inv]
			if v == "VIOLATED" || v == "ERROR" {
				violations++
			}
			fmt.Fprintf(&b, " %-9s", v)
		}
		fmt.Fprintf(&b, " %.0fs\n", rw.dur.Seconds())
	}
	fmt.Print(b.String())
	t.Log("\n" + b.String())
	if violations > 0 {
		t.Errorf("%d invariant violations or errors (seed %d)", violations, seed)
	}
}

// ---- load ----

// loader keeps a few clients invoking fn over every coordinator's HTTP
// front until stopped.
type loader struct {
	stop         chan struct{}
	wg           sync.WaitGroup
	mu           sync.Mutex
	ok, throttle int
	errs         int
	spans        []span
}

func startLoad(c *cluster, fn string, clients, ms int) *loader {
	l := &loader{stop: make(chan struct{})}
	hc := &http.Client{Timeout: 20 * time.Second}
	for g := 0; g < clients; g++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := g; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := proccluster.InvokeSpan(hc, c.Coordinators[i%len(c.Coordinators)].HTTP, fn, ms)
				l.mu.Lock()
				switch {
				case err != nil:
					l.errs++
				case r.Status == 200:
					l.ok++
					if r.Span.End > 0 {
						l.spans = append(l.spans, r.Span)
					}
				case r.Status == 429:
					l.throttle++
				default:
					l.errs++
				}
				l.mu.Unlock()
				if err != nil || r.Status != 200 {
					time.Sleep(30 * time.Millisecond) // pace retries against a dead or full coordinator
				}
			}
		}()
	}
	return l
}

func (l *loader) halt() string {
	close(l.stop)
	l.wg.Wait()
	return fmt.Sprintf("load: %d ok, %d throttled, %d errors", l.ok, l.throttle, l.errs)
}

// ---- setup helpers ----

func (r *run) deploy(fn, timeout string) {
	r.t.Helper()
	bins.MustGust(r.t, proccluster.Addrs(r.c.Coordinators...), "fn", "deploy", fn, "--code", probeDir(), "--timeout", timeout)
}

// setQuota sets the account limit and waits until every coordinator admits
// a lone invocation of fn again (leases shrink within a few renewals).
func (r *run) setQuota(n int, fn string) {
	r.t.Helper()
	bins.MustGust(r.t, proccluster.Addrs(r.c.Coordinators...), "quota", "set", "--concurrency", strconv.Itoa(n))
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, co := range r.c.Coordinators {
		testutil.Eventually(r.t, 15*time.Second, func() bool {
			res, err := proccluster.InvokeSpan(hc, co.HTTP, fn, 1)
			return err == nil && res.Status == 200
		}, "%s never admitted %s after quota set", co.Name, fn)
	}
}

// checkLimit counts overlap from every span the function logged (and
// those the callers saw).
func (r *run) checkLimit(fn string, limit int, extra []span) {
	spans := r.c.SettledSpans(r.t, fn)
	peak := max(proccluster.MaxOverlap(spans), proccluster.MaxOverlap(extra))
	r.check(invLimit, peak <= limit && len(spans) > 0, "%d spans of %s logged, peak %d at once, limit %d", len(spans), fn, peak, limit)
}

// enqueue sends n async events through the coordinators, a few at a time,
// and returns the acknowledged ids.
func (r *run) enqueue(fn string, n, ms int) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// Its own coordinator first, the others to fail over to.
			k := len(r.c.Coordinators)
			order := []*node{r.c.Coordinators[i%k], r.c.Coordinators[(i+1)%k], r.c.Coordinators[(i+2)%k]}
			out, _, code := bins.Gust(r.t, proccluster.Addrs(order...), "invoke", fn, "--async", "--payload", fmt.Sprintf(`{"action":"span","n":%d}`, ms))
			if code == 0 {
				ids[i] = strings.TrimSpace(out)
			}
		}()
	}
	wg.Wait()
	var acked []string
	for _, id := range ids {
		if id != "" {
			acked = append(acked, id)
		}
	}
	return acked
}

// checkAsync polls every acknowledged event until it succeeded; one that
// never does (or fails) is lost.
func (r *run) checkAsync(ids []string, want int) {
	all := proccluster.Addrs(r.c.Coordinators...)
	deadline := time.Now().Add(90 * time.Second)
	var lost []string
	for _, id := range ids {
		var v struct{ Status, Error string }
		for {
			out, _, code := bins.Gust(r.t, all, "-o", "json", "invocation", "get", id)
			if code == 0 && json.Unmarshal([]byte(out), &v) == nil && (v.Status == "succeeded" || v.Status == "failed") {
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if v.Status != "succeeded" {
			lost = append(lost, fmt.Sprintf("%s=%q(%s)", id, v.Status, v.Error))
		}
	}
	// want > 0: every event had to be acknowledged (sent to a healthy
	// cluster); otherwise an unacknowledged event is allowed, not lost.
	r.check(invAsync, len(lost) == 0 && (want == 0 || len(ids) == want),
		"%d of %d acknowledged events succeeded (want %d acknowledged), not succeeded: %v", len(ids)-len(lost), len(ids), want, lost)
}

// healAll restarts every node that is down, with its data dir, and waits
// for the cluster to be whole again.
func (r *run) healAll() {
	for _, n := range r.c.All() {
		if !n.Running() {
			n.Start(r.t)
		}
	}
	r.c.WaitHealthy(r.t, 60*time.Second, 5, 3)
}

// ---- invariants every scenario checks ----

type raftState struct {
	Fns       json.RawMessage
	Quota     map[string]any
	Schedules json.RawMessage
	Leader    string
}

// checkRaft compares the applied state each coordinator serves locally,
// polling until it agrees.
func (r *run) checkRaft() {
	var states []raftState
	deadline := time.Now().Add(20 * time.Second)
	for {
		states = nil
		for _, co := range r.c.Coordinators {
			var s raftState
			out, _, c1 := bins.Gust(r.t, co.GRPC, "-o", "json", "fn", "ls")
			s.Fns = json.RawMessage(out)
			c2 := 1
			if bins.GustJSON(r.t, co.GRPC, &s.Quota, "quota", "get") {
				delete(s.Quota, "in_flight") // as coordinators report, not Raft state
				delete(s.Quota, "throttled")
				c2 = 0
			}
			out, _, c3 := bins.Gust(r.t, co.GRPC, "-o", "json", "schedule", "ls")
			s.Schedules = json.RawMessage(out)
			var peers []proccluster.Peer
			if bins.GustJSON(r.t, co.GRPC, &peers, "raft", "peers") {
				for _, p := range peers {
					if p.State == "leader" {
						s.Leader = p.Name
					}
				}
			}
			if c1 != 0 || c2 != 0 || c3 != 0 {
				s.Leader = "?unreachable"
			}
			states = append(states, s)
		}
		same := states[0].Leader != "" && !strings.HasPrefix(states[0].Leader, "?")
		for _, s := range states[1:] {
			same = same && reflect.DeepEqual(s, states[0])
		}
		if same {
			r.check(invRaft, true, "3 coordinators agree on functions, quota, schedules; leader %s", states[0].Leader)
			return
		}
		if time.Now().After(deadline) {
			var d []string
			for i, s := range states {
				d = append(d, fmt.Sprintf("%s: leader=%s quota=%v fns=%.300s schedules=%.300s", r.c.Coordinators[i].Name, s.Leader, s.Quota, s.Fns, s.Schedules))
			}
			r.check(invRaft, false, "coordinators disagree after 20 s:\n%s", strings.Join(d, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkLeaks stops every node with SIGTERM, then looks for what the
// workers' sandboxes could have left: processes, cgroups, mounts, loop
// devices.
func (r *run) checkLeaks() {
	clean := r.c.StopAll(r.t)
	var leaks []string
	if !clean {
		leaks = append(leaks, "a node ignored SIGTERM")
	}
	var parents, dirs []string
	for _, n := range r.c.All() {
		dirs = append(dirs, n.DataDir)
	}
	for _, w := range r.c.Workers {
		abs, _ := filepath.Abs(w.DataDir)
		sum := sha256.Sum256([]byte(abs))
		parents = append(parents, "/gust/"+hex.EncodeToString(sum[:6]))
	}
	// Processes: a sandbox uid's inside our cgroups, or anything
	// naming our data dirs. Sandboxes of other tests on this host are not ours.
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		status, err := os.ReadFile(p + "/status")
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile(p + "/cgroup")
		cmdline, _ := os.ReadFile(p + "/cmdline")
		var uid int
		if i := strings.Index(string(status), "\nUid:\t"); i >= 0 {
			fmt.Sscanf(string(status)[i+len("\nUid:\t"):], "%d", &uid)
		}
		sandboxUser := sandbox.IsSandboxUID(uid)
		ours := false
		for _, par := range parents {
			ours = ours || strings.Contains(string(cg), par)
		}
		for _, d := range dirs {
			ours = ours || strings.Contains(string(cmdline), d)
		}
		if ours {
			leaks = append(leaks, fmt.Sprintf("process %s (uid %d, a sandbox's: %v) %q", filepath.Base(p), uid, sandboxUser, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	// Cgroups: anything left under a worker's parent, in any hierarchy.
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		for _, par := range parents {
			entries, err := os.ReadDir(root + par)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if e.IsDir() {
					leaks = append(leaks, "cgroup "+root+par+"/"+e.Name())
				}
			}
		}
	}
	// Mounts naming our data dirs.
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		for _, d := range dirs {
			if strings.Contains(line, d) {
				leaks = append(leaks, "mount "+line)
				break
			}
		}
	}
	// Loop devices of sandboxes' /tmp, backed by images under our data
	// dirs: each detaches once its sandbox's mount namespace is gone,
	// which the kernel finishes a moment after the processes.
	loops := func() []string {
		var out []string
		for _, d := range dirs {
			for _, l := range testutil.LoopDevices(d) {
				out = append(out, "loop device "+l+" backed by an image under "+d)
			}
		}
		return out
	}
	left := loops()
	for deadline := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = loops() {
		time.Sleep(50 * time.Millisecond)
	}
	leaks = append(leaks, left...)
	r.check(invLeaks, len(leaks) == 0, "after SIGTERM of all nodes: %d leaked %v", len(leaks), leaks)
	r.c = nil
}

// ---- scenarios ----

// Account limit 6; a burst of 30 long invocations spread over the three
// coordinators' HTTP fronts while the leader is kill -9'd at a random
// moment: never more than 6 run at once.
func scenarioQuotaLeaderKill(r *run) {
	c := r.c
	r.deploy("span", "10s")
	r.setQuota(6, "span")
	// A burst without a fault first: how many the limit lets run.
	hc0 := &http.Client{Timeout: 30 * time.Second}
	base := make([]span, 30)
	var wg0 sync.WaitGroup
	for i := range base {
		wg0.Add(1)
		go func() {
			defer wg0.Done()
			res, _ := proccluster.InvokeSpan(hc0, c.Coordinators[i%3].HTTP, "span", 1500)
			base[i] = res.Span
		}()
	}
	wg0.Wait()
	r.logf("baseline burst of 30 without a fault: peak %d at once", proccluster.MaxOverlap(spansNonZero(base)))
	leader := c.Leader(r.t, c.Coordinators)
	killAt := r.randDur(0, 1200*time.Millisecond)
	r.logf("leader %s killed %v into the burst", leader.Name, killAt)
	var load *loader
	if r.full {
		load = startLoad(c, "span", 4, 300)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	results := make([]proccluster.HTTPResult, 30)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], _ = proccluster.InvokeSpan(hc, c.Coordinators[i%3].HTTP, "span", 1500)
		}()
	}
	close(start)
	time.Sleep(killAt)
	leader.Kill9()
	wg.Wait()
	var spans []span
	ran, throttled := 0, 0
	for _, res := range results {
		if res.Span.End > 0 {
			spans = append(spans, res.Span)
			ran++
		}
		if res.Status == 429 {
			throttled++
		}
	}
	r.logf("burst: %d ran, %d got 429", ran, throttled)
	if load != nil {
		time.Sleep(r.randDur(1*time.Second, 3*time.Second))
		leader.Start(r.t)
		time.Sleep(2 * time.Second)
		r.logf("%s", load.halt())
		spans = append(spans, load.spans...)
	}
	r.checkLimit("span", 6, spans)
	r.healAll()
}

// 40 acknowledged async invocations; then kill -9 of the leader and of a
// worker at random moments while they run: all 40 end succeeded.
func scenarioAsyncKills(r *run) {
	c := r.c
	r.deploy("ev", "10s")
	n := 40
	if r.full {
		n = 60
	}
	ids := r.enqueue("ev", n, 300)
	r.logf("%d of %d async events acknowledged", len(ids), n)
	leader := c.Leader(r.t, c.Coordinators)
	time.Sleep(r.randDur(0, 500*time.Millisecond))
	leader.Kill9()
	w := r.pick(c.Workers)
	d := r.randDur(200*time.Millisecond, 1500*time.Millisecond)
	time.Sleep(d)
	w.Kill9()
	r.logf("killed leader %s, then worker %s %v later", leader.Name, w.Name, d)
	// The survivors carry on; the dead come back with their data dirs.
	time.Sleep(r.randDur(2*time.Second, 4*time.Second))
	r.healAll()
	r.checkAsync(ids, n)
}

// An @every 1s schedule across a leader kill: the fired count follows the
// clock (no tick doubled, none dropped beyond one late), and the function
// ran once per recorded tick.
func scenarioScheduleLeaderKill(r *run) {
	c := r.c
	r.deploy("tick", "5s")
	all := proccluster.Addrs(c.Coordinators...)
	bins.MustGust(r.t, all, "schedule", "add", "every1s", "--function", "tick", "--cron", "@every 1s", "--payload", `{"action":"span","n":1}`)
	added := time.Now()
	time.Sleep(r.randDur(2*time.Second, 4*time.Second))
	leader := c.Leader(r.t, c.Coordinators)
	leader.Kill9()
	down := r.randDur(2*time.Second, 5*time.Second)
	r.logf("leader %s killed %.1fs after the schedule was added, restarted %v later", leader.Name, time.Since(added).Seconds(), down)
	time.Sleep(down)
	leader.Start(r.t)
	r.c.WaitHealthy(r.t, 60*time.Second, 5, 3)
	time.Sleep(r.randDur(2*time.Second, 3*time.Second)) // steady state after the heal
	var list []struct {
		Name  string
		Fired int64
	}
	fired := int64(-1)
	if bins.GustJSON(r.t, all, &list, "schedule", "ls") {
		for _, s := range list {
			if s.Name == "every1s" {
				fired = s.Fired
			}
		}
	}
	elapsed := time.Since(added).Seconds()
	bins.MustGust(r.t, all, "schedule", "rm", "every1s")
	spans := c.SettledSpans(r.t, "tick")
	want := int64(elapsed) // @every 1s: the first tick one second after add
	r.check(invSchedule, fired >= want-2 && fired <= want+1,
		"fired %d in %.1fs (want %d; one late tick and one at the edge allowed)", fired, elapsed, want)
	r.check(invSchedule, int64(len(spans)) >= fired-1 && int64(len(spans)) <= fired+1,
		"the function ran %d times for %d recorded ticks; start gaps (s) %s", len(spans), fired, tickGaps(spans))
}

func spansNonZero(in []span) []span {
	var out []span
	for _, s := range in {
		if s.End > 0 {
			out = append(out, s)
		}
	}
	return out
}

func tickGaps(spans []span) string {
	sort.Slice(spans, func(i, j int) bool { return spans[i].Start < spans[j].Start })
	var g []string
	for i := 1; i < len(spans); i++ {
		g = append(g, fmt.Sprintf("%.1f", float64(spans[i].Start-spans[i-1].Start)/1e9))
	}
	return "[" + strings.Join(g, " ") + "]"
}

// SIGSTOP of a random follower for a random while, under sync load and
// async events, then SIGCONT.
func scenarioSigstop(r *run) {
	c := r.c
	r.deploy("span", "10s")
	r.deploy("ev", "10s")
	r.setQuota(6, "span")
	leader := c.Leader(r.t, c.Coordinators)
	f := r.pick(c.Followers(leader))
	load := startLoad(c, "span", 6, 300)
	time.Sleep(r.randDur(500*time.Millisecond, 2*time.Second))
	f.Signal(syscall.SIGSTOP)
	d := r.randDur(3*time.Second, 8*time.Second)
	r.logf("SIGSTOP follower %s for %v", f.Name, d)
	ids := r.enqueue("ev", 20, 100)
	r.logf("%d of 20 async events acknowledged", len(ids))
	time.Sleep(d)
	f.Signal(syscall.SIGCONT)
	time.Sleep(2 * time.Second)
	r.logf("%s", load.halt())
	r.checkLimit("span", 6, load.spans)
	r.healAll()
	r.checkAsync(ids, 0)
}

// kill -9 of a random follower; while it is down the others take writes
// (a function, a quota, a schedule) and async events; it restarts with
// its data dir, rejoins, and converges (checked by the raft invariant).
func scenarioRestartFollower(r *run) {
	c := r.c
	r.deploy("ev", "10s")
	leader := c.Leader(r.t, c.Coordinators)
	f := r.pick(c.Followers(leader))
	load := startLoad(c, "ev", 3, 100)
	time.Sleep(r.randDur(500*time.Millisecond, 2*time.Second))
	f.Kill9()
	r.logf("killed follower %s", f.Name)
	rest := c.Followers(f)
	live := proccluster.Addrs(rest...)
	testutil.Eventually(r.t, 15*time.Second, func() bool {
		_, _, code := bins.Gust(r.t, live, "fn", "deploy", "while-down", "--code", probeDir())
		return code == 0
	}, "deploy with a follower down never worked")
	bins.MustGust(r.t, live, "quota", "set", "--concurrency", "77")
	bins.MustGust(r.t, live, "schedule", "add", "hourly", "--function", "ev", "--cron", "@every 1h", "--payload", `{"action":"echo"}`)
	ids := r.enqueue("ev", 20, 100)
	r.logf("%d of 20 async events acknowledged", len(ids))
	time.Sleep(r.randDur(time.Second, 3*time.Second))
	f.Start(r.t)
	r.c.WaitHealthy(r.t, 60*time.Second, 5, 3)
	testutil.Eventually(r.t, 20*time.Second, func() bool {
		out, _, code := bins.Gust(r.t, f.GRPC, "fn", "ls")
		return code == 0 && strings.Contains(out, "while-down")
	}, "restarted %s never served the function deployed while it was down", f.Name)
	r.logf("%s", load.halt())
	r.checkAsync(ids, 0)
}

// A coordinator (random: leader or follower) cut off from the others'
// Raft and gossip and from the workers, under load with limit 6; healed
// after a while. The others keep a quorum; the limit holds; state
// converges after the heal.
func scenarioPartition(r *run) {
	c := r.c
	r.deploy("span", "10s")
	r.deploy("ev", "10s")
	r.setQuota(6, "span")
	victim := r.pick(c.Coordinators)
	rules := partitionRules(c, victim)
	for _, rule := range rules {
		if out, err := iptables("-A", rule); err != nil {
			for _, undo := range rules {
				iptables("-D", undo)
			}
			r.logf("iptables unavailable (%v %s): partition scenario n/a", err, out)
			return
		}
	}
	healed := false
	heal := func() {
		if !healed {
			for _, rule := range rules {
				iptables("-D", rule)
			}
			healed = true
		}
	}
	r.t.Cleanup(heal)
	load := startLoad(c, "span", 6, 300)
	d := r.randDur(4*time.Second, 8*time.Second)
	r.logf("partitioned %s for %v", victim.Name, d)
	rest := c.Followers(victim)
	majorityLeader := c.WaitLeader(r.t, rest, 20*time.Second)
	r.logf("majority leader %s", majorityLeader.Name)
	ids := r.enqueue("ev", 20, 100)
	r.logf("%d of 20 async events acknowledged", len(ids))
	time.Sleep(d)
	heal()
	time.Sleep(2 * time.Second)
	r.logf("%s", load.halt())
	r.checkLimit("span", 6, load.spans)
	r.healAll()
	r.checkAsync(ids, 0)
}

// partitionRules cut the victim off on one loopback. Incoming: anything
// to its Raft and gossip ports. Outgoing: its dials leave from ephemeral
// ports, so they are matched by owner — in this scenario each coordinator
// runs as its own uid — and by the other nodes' ports they go to. Its gRPC
// and HTTP fronts stay reachable from the test's clients.
func partitionRules(c *cluster, victim *node) []string {
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	var rules []string
	var others []string
	for _, n := range c.All() {
		if n == victim {
			continue
		}
		others = append(others, port(n.GRPC), port(n.Gossip))
		if n.Raft != "" {
			others = append(others, port(n.Raft))
		}
	}
	for _, pr := range []string{"tcp", "udp"} {
		for _, p := range []string{victim.Raft, victim.Gossip} {
			rules = append(rules, fmt.Sprintf("INPUT -i lo -p %s --dport %s -j DROP", pr, port(p)))
		}
		rules = append(rules, fmt.Sprintf("OUTPUT -o lo -p %s -m owner --uid-owner %d -m multiport --dports %s -j DROP",
			pr, victim.UID, strings.Join(others, ",")))
	}
	return rules
}

// asOwnUID runs coordinator i as uid 20001+i, so iptables can match the
// packets it sends.
func asOwnUID(t *testing.T, i int, n *node) {
	n.UID = 20001 + i
	for d := n.DataDir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	if err := os.Chown(n.DataDir, n.UID, n.UID); err != nil {
		t.Fatal(err)
	}
	os.Chmod(bins.Dir, 0o755)
}

func iptables(op, rule string) (string, error) {
	args := append([]string{"-w", op}, strings.Fields(rule)...)
	out, err := exec.Command("iptables", args...).CombinedOutput()
	return string(out), err
}
