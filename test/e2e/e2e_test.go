// Package e2e tests gust end to end, as a user sees it: it builds gustd,
// the gust CLI and an aws-lambda-go probe function, runs `gustd dev` as
// root, and drives it only through the CLI and the host's /proc and
// /sys/fs/cgroup.
//
// This file proves the user-facing contracts of DESIGN.md on one shared
// gustd: deploying (zip and folder), updating, listing, getting and
// removing functions; invoking them (payload from the flag, a file or
// stdin; cold then warm starts on one process, also after a freeze); the
// function's environment and memory limit; the error payloads and exit
// codes of function errors (returned error, timeout, OOM, exit, panic,
// death during init) and the fresh sandbox after them; the sandbox's
// isolation; platform errors (not found, payload over 6 MB, unsafe or
// bogus archives, bad parameters); big responses; concurrent invocations;
// and log tails.
package e2e

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
)

// maxSyncPayload is DESIGN.md's synchronous payload limit, 6 MB.
const maxSyncPayload = 6 * 1024 * 1024

// TestGustd runs the functional contracts against one gustd dev; the
// subtests run in parallel, each on functions of its own.
func TestGustd(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + d.http + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", path, resp.Status)
		}
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *daemon)
	}{
		{"DeployAndInvoke", testDeployAndInvoke},
		{"FunctionErrors", testFunctionErrors},
		{"InitError", testInitError},
		{"Isolation", testIsolation},
		{"NotFound", testNotFound},
		{"PayloadLimit", testPayloadLimit},
		{"LargeResponse", testLargeResponse},
		{"Concurrency", testConcurrency},
		{"ResponseTooLarge", testResponseTooLarge},
		{"BadCode", testBadCode},
		{"BadConfig", testBadConfig},
		{"LogTail", testLogTail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, d)
		})
	}
}

// functionView is a function as `gust fn get|ls -o json` prints it.
type functionView struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Revision     uint64            `json:"revision"`
	Runtime      string            `json:"runtime"`
	Handler      string            `json:"handler"`
	MemoryMB     int               `json:"memory_mb"`
	Timeout      string            `json:"timeout"`
	Environment  map[string]string `json:"environment"`
	CodeDigest   string            `json:"code_digest"`
	CodeSize     int64             `json:"code_size"`
	LastModified string            `json:"last_modified"`
}

var deployLine = regexp.MustCompile(`^deployed (\S+) \$LATEST \(revision (\d+)\)\ncode sha256:([0-9a-f]{64}) \(([^)]+)\)\n$`)

// testDeployAndInvoke deploys the probe from a .zip and from a folder and
// walks each through the function lifecycle.
func testDeployAndInvoke(t *testing.T, d *daemon) {
	for _, src := range []struct{ name, code string }{
		{"zip", bin.probeZip},
		{"folder", bin.probeDir},
	} {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			fn := "lifecycle-" + src.name

			r := d.deploy(t, fn, src.code, "--memory-mb", "256", "--env", "FOO=bar", "--env", "GREETING=hi there")
			m := deployLine.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("deploy output does not match %s:\n%q", deployLine, r.stdout)
			}
			if m[1] != fn {
				t.Errorf("deploy printed name %q, want %q", m[1], fn)
			}
			rev1, _ := strconv.ParseUint(m[2], 10, 64)
			digest := m[3]
			var zipSize int64
			if src.name == "zip" {
				// The code is content-addressed by the sha256 of the archive.
				data, err := os.ReadFile(src.code)
				if err != nil {
					t.Fatal(err)
				}
				zipSize = int64(len(data))
				sum := sha256.Sum256(data)
				if want := hex.EncodeToString(sum[:]); digest != want {
					t.Errorf("deploy printed code sha256:%s, want the zip's sha256 %s", digest, want)
				}
			}

			// First invoke is cold, the second warm on the same process.
			e1 := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
			e2 := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
			var c1, c2 struct {
				Count     int    `json:"count"`
				Pid       int    `json:"pid"`
				RequestID string `json:"request_id"`
			}
			decode(t, e1.Payload, &c1)
			decode(t, e2.Payload, &c2)
			if !e1.ColdStart || e2.ColdStart {
				t.Errorf("cold_start: first %v, second %v; want true then false", e1.ColdStart, e2.ColdStart)
			}
			if e1.Sandbox == "" || e1.Sandbox != e2.Sandbox {
				t.Errorf("sandbox: first %q, second %q; want the same, non-empty", e1.Sandbox, e2.Sandbox)
			}
			if c1.Count != 1 || c2.Count != 2 || c1.Pid != c2.Pid {
				t.Errorf("warm reuse: counts %d,%d pids %d,%d; want 1,2 on one pid", c1.Count, c2.Count, c1.Pid, c2.Pid)
			}
			for i, e := range []envelope{e1, e2} {
				if e.Worker != "dev" {
					t.Errorf("invoke %d: worker %q, want dev", i+1, e.Worker)
				}
				if e.ExecutedVersion != "$LATEST" {
					t.Errorf("invoke %d: executed_version %q, want $LATEST", i+1, e.ExecutedVersion)
				}
				if e.RequestID == "" || e.FunctionError != "" {
					t.Errorf("invoke %d: request_id %q function_error %q", i+1, e.RequestID, e.FunctionError)
				}
				if e.BilledDurationMs < 1 || e.BilledDurationMs < e.DurationMs {
					t.Errorf("invoke %d: billed_duration_ms %v for duration_ms %v; want ≥ 1 and ≥ duration",
						i+1, e.BilledDurationMs, e.DurationMs)
				}
				if e.MaxMemoryUsedMb <= 0 || e.MaxMemoryUsedMb > 256 {
					t.Errorf("invoke %d: max_memory_used_mb %v, want in (0, 256]", i+1, e.MaxMemoryUsedMb)
				}
			}
			if c1.RequestID != e1.RequestID || c2.RequestID != e2.RequestID || e1.RequestID == e2.RequestID {
				t.Errorf("request ids: function saw %q,%q; envelopes say %q,%q; want equal pairs, distinct",
					c1.RequestID, c2.RequestID, e1.RequestID, e2.RequestID)
			}
			if e1.InitDurationMs <= 0 {
				t.Errorf("cold start init_duration_ms %v, want > 0", e1.InitDurationMs)
			}
			if e2.InitDurationMs != 0 {
				t.Errorf("warm start init_duration_ms %v, want 0", e2.InitDurationMs)
			}
			// An idle sandbox is frozen, and thawed for the next invoke.
			testutil.Eventually(t, 10*time.Second, func() bool { return frozen(e1.Sandbox) },
				"idle sandbox %s was never frozen", e1.Sandbox)
			e3 := d.mustInvokeJSON(t, fn+":$LATEST", `{"action":"count"}`)
			var c3 struct{ Count int }
			decode(t, e3.Payload, &c3)
			if e3.ColdStart || e3.Sandbox != e1.Sandbox || c3.Count != 3 || e3.ExecutedVersion != "$LATEST" {
				t.Errorf("invoke of %s:$LATEST after a freeze: cold_start %v sandbox %q count %d version %q; want warm on %q, count 3, $LATEST",
					fn, e3.ColdStart, e3.Sandbox, c3.Count, e3.ExecutedVersion, e1.Sandbox)
			}
			assertPlatformError(t, d.gust(t, "invoke", fn+":no-such-alias", "--payload", `{"action":"count"}`),
				"ResourceNotFoundException", "invoke "+fn+":no-such-alias")
			// The memory limit is the function's memory.
			if lim, ok := memoryLimit(e1.Sandbox); !ok || lim != 256<<20 {
				t.Errorf("sandbox %s memory limit %d (found %v), want %d", e1.Sandbox, lim, ok, 256<<20)
			}

			// Text output is the payload itself, from --payload, @FILE or stdin.
			event := `{"action":"echo","data":{"k":[1,"two",{"three":true}],"s":"é\n"}}`
			want := `{"data":{"k":[1,"two",{"three":true}],"s":"é\n"},"pad_len":0}`
			file := filepath.Join(t.TempDir(), "event.json")
			if err := os.WriteFile(file, []byte(event), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, how := range []struct {
				name, stdin string
				args        []string
			}{
				{"flag", "", []string{"invoke", fn, "--payload", event}},
				{"file", "", []string{"invoke", fn, "--payload", "@" + file}},
				{"stdin", event, []string{"invoke", fn, "-"}},
			} {
				r := d.gustStdin(t, how.stdin, how.args...)
				if r.code != 0 {
					t.Errorf("invoke (%s): want exit 0, got\n%s", how.name, r)
					continue
				}
				assertJSONEqual(t, "invoke ("+how.name+") stdout", []byte(r.stdout), []byte(want))
			}

			// Environment: the function's own variables and Lambda's.
			var env map[string]string
			decode(t, d.mustInvokeJSON(t, fn, `{"action":"env","key":"FOO"}`).Payload, &env)
			for k, v := range map[string]string{
				"value":                           "bar",
				"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
				"AWS_LAMBDA_FUNCTION_NAME":        fn,
				"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
				"LAMBDA_TASK_ROOT":                "/var/task",
				"_HANDLER":                        "bootstrap",
			} {
				if env[k] != v {
					t.Errorf("in the function %s=%q, want %q (all: %v)", k, env[k], v, env)
				}
			}
			for _, k := range []string{"AWS_REGION", "AWS_LAMBDA_RUNTIME_API", "TZ"} {
				if _, ok := env[k]; !ok || (k != "TZ" && env[k] == "") {
					t.Errorf("in the function %s is not set (all: %v)", k, env)
				}
			}
			decode(t, d.mustInvokeJSON(t, fn, `{"action":"env","key":"GREETING"}`).Payload, &env)
			if env["value"] != "hi there" {
				t.Errorf("in the function GREETING=%q, want %q", env["value"], "hi there")
			}

			// get and ls show it, in text and JSON.
			var got functionView
			decode(t, []byte(d.mustGust(t, "-o", "json", "fn", "get", fn).stdout), &got)
			wantView := functionView{Name: fn, Version: "$LATEST", Revision: rev1, Runtime: "provided", Handler: "bootstrap",
				MemoryMB: 256, Timeout: "3s", Environment: map[string]string{"FOO": "bar", "GREETING": "hi there"}, CodeDigest: digest}
			checkView(t, "fn get -o json", got, wantView)
			if zipSize > 0 && got.CodeSize != zipSize {
				t.Errorf("fn get -o json: code_size %d, want the zip's %d bytes", got.CodeSize, zipSize)
			}
			text := d.mustGust(t, "fn", "get", fn).stdout
			for _, s := range []string{fn, "256 MB", digest, "FOO=bar"} {
				if !strings.Contains(text, s) {
					t.Errorf("fn get: output lacks %q:\n%s", s, text)
				}
			}
			var list []functionView
			decode(t, []byte(d.mustGust(t, "-o", "json", "fn", "ls").stdout), &list)
			found := false
			for _, v := range list {
				if v.Name == fn {
					found = true
					checkView(t, "fn ls -o json", v, wantView)
				}
			}
			if !found {
				t.Errorf("fn ls -o json does not list %s: %+v", fn, list)
			}
			if names := lsNames(t, d); !names[fn] || !names["NAME"] {
				t.Errorf("fn ls: want a NAME column and a row for %s, got rows %v", fn, names)
			}

			// A redeploy updates $LATEST: new revision, new environment.
			var redeployed functionView
			decode(t, []byte(d.mustGust(t, "-o", "json", "fn", "deploy", fn, "--code", src.code,
				"--memory-mb", "256", "--env", "FOO=baz").stdout), &redeployed)
			if redeployed.Revision <= rev1 {
				t.Errorf("redeploy: revision %d, want more than %d", redeployed.Revision, rev1)
			}
			wantView.Revision, wantView.Environment = redeployed.Revision, map[string]string{"FOO": "baz"}
			if src.name != "zip" {
				wantView.CodeDigest = redeployed.CodeDigest // a folder is zipped anew
			}
			checkView(t, "fn deploy -o json", redeployed, wantView)
			decode(t, d.mustInvokeJSON(t, fn, `{"action":"env","key":"FOO"}`).Payload, &env)
			if env["value"] != "baz" {
				t.Errorf("after redeploy FOO=%q, want baz", env["value"])
			}

			// rm: then it is gone for invoke, get, ls and a second rm.
			if r := d.mustGust(t, "fn", "rm", fn); !strings.Contains(r.stdout, fn) {
				t.Errorf("fn rm: output %q does not name the function", r.stdout)
			}
			for _, args := range [][]string{
				{"invoke", fn, "--payload", `{"action":"count"}`},
				{"fn", "get", fn},
				{"fn", "rm", fn},
			} {
				assertPlatformError(t, d.gust(t, args...), "ResourceNotFoundException", strings.Join(args, " "))
			}
			if names := lsNames(t, d); names[fn] {
				t.Errorf("fn ls still lists %s after fn rm", fn)
			}
		})
	}
}

// checkView compares a function as printed with what was deployed.
func checkView(t *testing.T, what string, got, want functionView) {
	t.Helper()
	if got.Name != want.Name || got.Version != want.Version || got.Revision != want.Revision || got.Runtime != want.Runtime ||
		got.Handler != want.Handler || got.MemoryMB != want.MemoryMB || got.Timeout != want.Timeout ||
		got.CodeDigest != want.CodeDigest || !reflect.DeepEqual(got.Environment, want.Environment) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if got.CodeSize <= 0 {
		t.Errorf("%s: code_size %d", what, got.CodeSize)
	}
	if _, err := time.Parse(time.RFC3339, got.LastModified); err != nil {
		t.Errorf("%s: last_modified %q: %v", what, got.LastModified, err)
	}
}

// lsNames returns the first column of `gust fn ls`, header included.
func lsNames(t *testing.T, d *daemon) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, l := range strings.Split(d.mustGust(t, "fn", "ls").stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

// assertPlatformError checks a platform error: exit 1, nothing on stdout,
// stderr starting with the error's name.
func assertPlatformError(t *testing.T, r cliResult, name, what string) {
	t.Helper()
	if r.code != 1 || !strings.HasPrefix(r.stderr, name+": ") || r.stdout != "" {
		t.Errorf("%s: want exit 1, empty stdout and stderr starting %q, got\n%s", what, name+": ", r)
	}
}

func assertJSONEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: not JSON: %v: %q", what, err, got)
		return
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// memoryLimit reads the memory limit of a sandbox's cgroup.
func memoryLimit(id string) (int64, bool) {
	for _, dir := range sandboxCgroups(id) {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}

// testFunctionErrors checks each kind of function error: its error object
// on stdout with exit 2 (text) or in the envelope (json), and that the
// function answers normally right after.
func testFunctionErrors(t *testing.T, d *daemon) {
	for _, tc := range []struct {
		name      string
		flags     []string
		event     string
		errorType string
		message   string // exact; "" to skip
		funcError string // the envelope's function_error; "" for any non-empty one
		// replaced: the sandbox is broken and the next invoke is a cold
		// start elsewhere; otherwise it stays warm.
		replaced         bool
		minWall, maxWall time.Duration
	}{
		{name: "handled", event: `{"action":"error"}`, errorType: "errorString", message: "boom", funcError: "Handled"},
		{name: "timeout", flags: []string{"--timeout", "2s"}, event: `{"action":"sleep","n":5000}`,
			errorType: "Sandbox.Timedout", message: "Task timed out after 2.00 seconds", funcError: "Unhandled",
			replaced: true, minWall: 2 * time.Second, maxWall: 3500 * time.Millisecond},
		{name: "oom", flags: []string{"--memory-mb", "128"}, event: `{"action":"alloc","n":400}`,
			errorType: "Runtime.OutOfMemory", funcError: "Unhandled", replaced: true},
		{name: "exit", event: `{"action":"exit","n":3}`, errorType: "Runtime.ExitError",
			message: "Runtime exited with error: exit status 3", funcError: "Unhandled", replaced: true},
		// aws-lambda-go reports a panic, then exits the process.
		{name: "panic", event: `{"action":"panic"}`, errorType: "string", message: "kaboom", replaced: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fn := "error-" + tc.name
			d.deploy(t, fn, bin.probeZip, tc.flags...)
			checkObject := func(what string, payload []byte) {
				t.Helper()
				var obj map[string]any
				if err := json.Unmarshal(payload, &obj); err != nil {
					t.Errorf("%s: error payload is not a JSON object: %v: %q", what, err, payload)
					return
				}
				if obj["errorType"] != tc.errorType {
					t.Errorf("%s: errorType %v, want %q (payload %s)", what, obj["errorType"], tc.errorType, payload)
				}
				msg, ok := obj["errorMessage"].(string)
				if !ok || (tc.message != "" && msg != tc.message) {
					t.Errorf("%s: errorMessage %v, want %q (payload %s)", what, obj["errorMessage"], tc.message, payload)
				}
			}
			checkWall := func(what string, r cliResult) {
				t.Helper()
				if tc.maxWall > 0 && (r.wall < tc.minWall || r.wall > tc.maxWall) {
					t.Errorf("%s took %s, want between %s and %s", what, r.wall, tc.minWall, tc.maxWall)
				}
			}
			// answers invokes normally and returns the envelope.
			answers := func(what string) envelope {
				t.Helper()
				e, r := d.invokeJSON(t, fn, `{"action":"count"}`)
				if r.code != 0 || e.FunctionError != "" {
					t.Fatalf("%s: want a normal answer, got\n%s", what, r)
				}
				return e
			}

			warm := answers("first invoke")

			// -o json: the envelope carries the error, exit 2.
			e, r := d.invokeJSON(t, fn, tc.event)
			if r.code != 2 {
				t.Errorf("invoke -o json: want exit 2, got\n%s", r)
			}
			if e.FunctionError == "" || (tc.funcError != "" && e.FunctionError != tc.funcError) {
				t.Errorf("invoke -o json: function_error %q, want %q", e.FunctionError, tc.funcError)
			}
			if tc.name == "timeout" && (e.DurationMs < 2000 || e.DurationMs > 3500 || e.BilledDurationMs < 2000) {
				t.Errorf("a 2s timeout reported duration_ms %v billed_duration_ms %v, want about 2000", e.DurationMs, e.BilledDurationMs)
			}
			if e.ColdStart || e.Sandbox != warm.Sandbox {
				t.Errorf("the error invoke ran on sandbox %q (cold %v), want the warm %q", e.Sandbox, e.ColdStart, warm.Sandbox)
			}
			checkObject("invoke -o json payload", e.Payload)
			checkWall("invoke -o json", r)

			after := answers("invoke after the error")
			var c struct{ Count int }
			decode(t, after.Payload, &c)
			if tc.replaced {
				if !after.ColdStart || after.Sandbox == warm.Sandbox || c.Count != 1 {
					t.Errorf("after %s: cold_start %v sandbox %q count %d; want a fresh sandbox (cold, not %q, count 1)",
						tc.name, after.ColdStart, after.Sandbox, c.Count, warm.Sandbox)
				}
				if dirs := sandboxCgroups(warm.Sandbox); len(dirs) > 0 {
					// Destroying may finish just after the answer: give it a moment.
					if !waitFor(5*time.Second, func() bool { return len(sandboxCgroups(warm.Sandbox)) == 0 }) {
						t.Errorf("the broken sandbox's cgroups remain: %v", sandboxCgroups(warm.Sandbox))
					}
				}
			} else if after.ColdStart || after.Sandbox != warm.Sandbox || c.Count != 3 {
				t.Errorf("after a handled error: cold_start %v sandbox %q count %d; want the same warm sandbox %q, count 3",
					after.ColdStart, after.Sandbox, c.Count, warm.Sandbox)
			}

			// Text: the error object on stdout, exit 2.
			r = d.gust(t, "invoke", fn, "--payload", tc.event)
			if r.code != 2 {
				t.Errorf("invoke: want exit 2, got\n%s", r)
			}
			checkObject("invoke stdout", []byte(r.stdout))
			checkWall("invoke", r)
			answers("invoke after the second error")
		})
	}
}

// testInitError checks a function that dies before it asks for an event:
// a Runtime.ExitError function error (exit 2) on each invoke, and its
// sandboxes do not pile up.
func testInitError(t *testing.T, d *daemon) {
	fn := "init-error"
	d.deploy(t, fn, bin.probeZip, "--env", "PROBE_INIT_EXIT=4")
	var seen []string
	for i := range 2 {
		e, r := d.invokeJSON(t, fn, `{"action":"count"}`, "--log")
		var obj struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal(e.Payload, &obj)
		if r.code != 2 || e.FunctionError != "Unhandled" || obj.ErrorType != "Runtime.ExitError" ||
			!strings.Contains(obj.ErrorMessage, "exit status 4") {
			t.Errorf("invoke %d of a function that exits 4 in init: want exit 2, Unhandled, Runtime.ExitError \"…exit status 4\"; got\n%s", i+1, r)
		}
		if !e.ColdStart {
			t.Errorf("invoke %d of a function that never starts: cold_start false", i+1)
		}
		if !strings.Contains(e.LogTail, "probe: exiting during init") {
			t.Errorf("invoke %d: log_tail lacks the function's init output:\n%s", i+1, e.LogTail)
		}
		seen = append(seen, e.Sandbox)
	}
	if !waitFor(5*time.Second, func() bool { return len(sandboxCgroups(seen...)) == 0 }) {
		t.Errorf("the dead sandboxes' cgroups remain: %v", sandboxCgroups(seen...))
	}
}

// testIsolation checks what the function sees from inside its sandbox.
func testIsolation(t *testing.T, d *daemon) {
	fn := "isolation"
	d.deploy(t, fn, bin.probeZip)
	wd, _ := os.Getwd()
	paths, _ := json.Marshal([]string{bin.gustd, d.dataDir, wd, bin.dir})
	e := d.mustInvokeJSON(t, fn, `{"action":"isolation","paths":`+string(paths)+`}`)
	var got struct {
		UID, GID, Euid, Pid                 int
		User                                string
		ShadowErr                           string   `json:"shadow_err"`
		Pid1Cmdline                         string   `json:"pid1_cmdline"`
		TaskWriteErr                        string   `json:"task_write_err"`
		TmpWriteErr                         string   `json:"tmp_write_err"`
		RootWriteErr                        string   `json:"root_write_err"`
		Hostname                            string   `json:"hostname"`
		Ifaces                              []string `json:"ifaces"`
		CapEff, CapPrm, NoNewPrivs, Seccomp string
		MountErr                            string   `json:"mount_err"`
		PtraceErr                           string   `json:"ptrace_err"`
		HostPathsVisible                    []string `json:"host_paths_visible"`
	}
	decode(t, e.Payload, &got)
	t.Logf("inside the sandbox: %s", e.Payload)
	hostName, _ := os.Hostname()
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"runs as a sandbox uid, named sbx_user1051", sandbox.IsSandboxUID(got.UID) && got.Euid == got.UID && got.User == "sbx_user1051"},
		{"gid is not root", got.GID != 0},
		{"/etc/shadow is not readable", got.ShadowErr != ""},
		{"pid 1 is the bootstrap", got.Pid == 1 && strings.Contains(got.Pid1Cmdline, "bootstrap")},
		{"/var/task is read-only", got.TaskWriteErr != ""},
		{"the root filesystem is read-only", got.RootWriteErr != ""},
		{"/tmp is writable", got.TmpWriteErr == ""},
		{"only the loopback interface", reflect.DeepEqual(got.Ifaces, []string{"lo"})},
		{"own hostname", got.Hostname != "" && got.Hostname != hostName},
		{"no effective capabilities", got.CapEff == "0000000000000000"},
		{"no permitted capabilities", got.CapPrm == "0000000000000000"},
		{"no_new_privs", got.NoNewPrivs == "1"},
		{"seccomp filter", got.Seccomp == "2"},
		{"mount(2) fails", strings.Contains(got.MountErr, "operation not permitted")},
		{"ptrace(2) fails", got.PtraceErr != ""},
		{"no host path is visible", len(got.HostPathsVisible) == 0},
	} {
		if !c.ok {
			t.Errorf("isolation: %s: does not hold (%s)", c.what, e.Payload)
		}
	}
	// From the host: the sandbox's process and cgroup limits.
	procs := procsInCgroups(e.Sandbox)
	if len(procs) == 0 {
		t.Errorf("no host process is in sandbox %s's cgroup", e.Sandbox)
	}
	for _, p := range procs {
		if p.uid != got.UID {
			t.Errorf("sandbox process %d (%s) runs as uid %d on the host, want the sandbox's %d", p.pid, p.cmdline, p.uid, got.UID)
		}
	}
	if lim, ok := memoryLimit(e.Sandbox); !ok || lim != 128<<20 {
		t.Errorf("sandbox memory limit %d (found %v), want %d", lim, ok, 128<<20)
	}
	pidsLimited := false
	for _, dir := range sandboxCgroups(e.Sandbox) {
		if b, err := os.ReadFile(filepath.Join(dir, "pids.max")); err == nil {
			v := strings.TrimSpace(string(b))
			pidsLimited = v != "max" && v != ""
		}
	}
	if !pidsLimited {
		t.Errorf("sandbox %s has no pids limit", e.Sandbox)
	}
}

// testNotFound checks the platform error for a function that does not exist.
func testNotFound(t *testing.T, d *daemon) {
	for _, args := range [][]string{
		{"invoke", "no-such-function"},
		{"invoke", "no-such-function", "--payload", `{"action":"count"}`},
		{"-o", "json", "invoke", "no-such-function", "--payload", `{}`},
		{"fn", "get", "no-such-function"},
		{"fn", "rm", "no-such-function"},
	} {
		assertPlatformError(t, d.gust(t, args...), "ResourceNotFoundException", strings.Join(args, " "))
	}
}

// testPayloadLimit checks the 6 MB synchronous payload limit at its edge.
func testPayloadLimit(t *testing.T, d *daemon) {
	fn := "payload-limit"
	d.deploy(t, fn, bin.probeZip)
	dir := t.TempDir()
	event := func(size int) string {
		prefix, suffix := `{"action":"echo","pad":"`, `"}`
		path := filepath.Join(dir, fmt.Sprintf("event-%d.json", size))
		body := prefix + strings.Repeat("x", size-len(prefix)-len(suffix)) + suffix
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	atLimit := event(maxSyncPayload)
	r := d.gust(t, "invoke", fn, "--payload", "@"+atLimit)
	if r.code != 0 {
		t.Errorf("a payload of exactly 6 MB: want exit 0, got\n%.2000s", r)
	} else {
		var got struct {
			PadLen int `json:"pad_len"`
		}
		decode(t, []byte(r.stdout), &got)
		if want := maxSyncPayload - len(`{"action":"echo","pad":""}`); got.PadLen != want {
			t.Errorf("a payload of exactly 6 MB reached the function with pad %d bytes, want %d", got.PadLen, want)
		}
	}
	over := event(maxSyncPayload + 1)
	assertPlatformError(t, d.gust(t, "invoke", fn, "--payload", "@"+over), "RequestTooLargeException", "invoke 6 MB + 1 byte")
	assertPlatformError(t, d.gust(t, "-o", "json", "invoke", fn, "--payload", "@"+over), "RequestTooLargeException", "invoke -o json 6 MB + 1 byte")
	data, err := os.ReadFile(over)
	if err != nil {
		t.Fatal(err)
	}
	assertPlatformError(t, d.gustStdin(t, string(data), "invoke", fn, "-"), "RequestTooLargeException", "invoke 6 MB + 1 byte on stdin")
}

// testLargeResponse checks that big responses come back whole.
func testLargeResponse(t *testing.T, d *daemon) {
	fn := "large-response"
	d.deploy(t, fn, bin.probeZip)
	for _, n := range []int{1 << 20, 5 << 20} {
		r := d.gust(t, "invoke", fn, "--payload", fmt.Sprintf(`{"action":"big","n":%d}`, n))
		want := `"` + strings.Repeat("x", n) + `"`
		if r.code != 0 || strings.TrimSuffix(r.stdout, "\n") != want {
			t.Errorf("a %d byte response: exit %d, stdout of %d bytes, want exit 0 and %d bytes; stderr %s",
				n, r.code, len(r.stdout), len(want), r.stderr)
		}
	}
}

// testResponseTooLarge checks that a response over 6 MB is a function
// error, not a payload, and that the function answers afterwards.
func testResponseTooLarge(t *testing.T, d *daemon) {
	fn := "response-too-large"
	d.deploy(t, fn, bin.probeZip)
	e, r := d.invokeJSON(t, fn, fmt.Sprintf(`{"action":"big","n":%d}`, maxSyncPayload+1))
	var obj struct{ ErrorType, ErrorMessage string }
	_ = json.Unmarshal(e.Payload, &obj)
	if r.code != 2 || e.FunctionError != "Unhandled" || obj.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Errorf("a response over 6 MB: want exit 2, function_error Unhandled, errorType Function.ResponseSizeTooLarge; got exit %d, %q, %.300s\nstderr: %s",
			r.code, e.FunctionError, e.Payload, r.stderr)
	}
	d.mustInvokeJSON(t, fn, `{"action":"count"}`)
}

// testConcurrency checks that concurrent invocations of one function each
// get a sandbox of their own, and all answer.
func testConcurrency(t *testing.T, d *daemon) {
	fn := "concurrency"
	d.deploy(t, fn, bin.probeZip)
	const n = 3
	type result struct {
		r   cliResult
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			r, err := runGust(d.grpc, "", "-o", "json", "invoke", fn, "--payload", `{"action":"sleep","n":700}`)
			results <- result{r, err}
		}()
	}
	sandboxes := map[string]bool{}
	for range n {
		res := <-results
		if res.err != nil || res.r.code != 0 {
			t.Errorf("concurrent invoke: %v\n%s", res.err, res.r)
			continue
		}
		e := envelopeOf(res.r.stdout)
		sandboxes[e.Sandbox] = true
	}
	if len(sandboxes) != n {
		t.Errorf("%d concurrent invocations ran on %d sandboxes (%v), want one each", n, len(sandboxes), sandboxes)
	}
}

// testBadCode checks that archives that are unsafe to unpack are refused
// as InvalidParameterValueException and leave no function behind.
func testBadCode(t *testing.T, d *daemon) {
	probe, err := os.ReadFile(bin.probe)
	if err != nil {
		t.Fatal(err)
	}
	boot := zipEntry{name: "bootstrap", mode: 0o755, data: probe}
	const bombSize = 300 << 20 // over the 250 MB unzipped limit
	bomb, bombCRC := deflateZeros(t, bombSize)
	part, partCRC := deflateZeros(t, 100<<20)
	dir := t.TempDir()
	cases := []struct {
		name    string
		entries []zipEntry
		raw     []byte // instead of entries: not a zip
	}{
		{name: "zip-slip", entries: []zipEntry{boot, {name: "../x", mode: 0o644, data: []byte("x")}}},
		{name: "zip-slip-deep", entries: []zipEntry{boot, {name: "lib/../../../../tmp/gust-e2e-slip", mode: 0o644, data: []byte("x")}}},
		{name: "absolute-path", entries: []zipEntry{boot, {name: "/tmp/gust-e2e-abs", mode: 0o644, data: []byte("x")}}},
		{name: "symlink-out", entries: []zipEntry{boot, {name: "etc", mode: fs.ModeSymlink | 0o777, data: []byte("../../../../etc")}}},
		{name: "symlink-absolute", entries: []zipEntry{boot, {name: "passwd", mode: fs.ModeSymlink | 0o777, data: []byte("/etc/passwd")}}},
		{name: "zip-bomb", entries: []zipEntry{boot, {name: "zeros", mode: 0o644, raw: bomb, crc32: bombCRC, declaredUncompressed: bombSize}}},
		{name: "zip-bomb-lying-header", entries: []zipEntry{boot, {name: "zeros", mode: 0o644, raw: bomb, crc32: bombCRC, declaredUncompressed: 1024}}},
		{name: "zip-bomb-split", entries: []zipEntry{boot,
			{name: "a", mode: 0o644, raw: part, crc32: partCRC, declaredUncompressed: 100 << 20},
			{name: "b", mode: 0o644, raw: part, crc32: partCRC, declaredUncompressed: 100 << 20},
			{name: "c", mode: 0o644, raw: part, crc32: partCRC, declaredUncompressed: 100 << 20}}},
		{name: "not-a-zip", raw: []byte("this is not a zip archive\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".zip")
			if tc.raw != nil {
				if err := os.WriteFile(path, tc.raw, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := writeZip(path, tc.entries); err != nil {
				t.Fatal(err)
			}
			fn := "badcode-" + tc.name
			assertPlatformError(t, d.gust(t, "fn", "deploy", fn, "--code", path), "InvalidParameterValueException", "deploy "+tc.name)
			assertPlatformError(t, d.gust(t, "fn", "get", fn), "ResourceNotFoundException", "fn get after a refused deploy")
		})
	}
	for _, p := range []string{"/tmp/gust-e2e-slip", "/tmp/gust-e2e-abs"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("a refused archive wrote %s on the host", p)
		}
	}
	var list []functionView
	decode(t, []byte(d.mustGust(t, "-o", "json", "fn", "ls").stdout), &list)
	names := lsNames(t, d)
	for _, v := range list {
		if strings.HasPrefix(v.Name, "badcode-") {
			t.Errorf("fn ls -o json lists %s, whose code was refused", v.Name)
		}
	}
	for n := range names {
		if strings.HasPrefix(n, "badcode-") {
			t.Errorf("fn ls lists %s, whose code was refused", n)
		}
	}
}

// deflateZeros returns n zero bytes deflated, and their CRC-32.
func deflateZeros(t *testing.T, n int) ([]byte, uint32) {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for written := 0; written < n; written += len(chunk) {
		c := chunk[:min(len(chunk), n-written)]
		w.Write(c)
		crc.Write(c)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), crc.Sum32()
}

// testBadConfig checks that deploy refuses bad parameters (DESIGN.md's
// limits on memory, timeout and environment; reserved or malformed
// variables; names that are not 1 to 64 letters, digits, '-' or '_') as
// InvalidParameterValueException, and accepts the bounds themselves.
func testBadConfig(t *testing.T, d *daemon) {
	bigEnv := "BIG=" + strings.Repeat("x", 4*1024)
	for _, tc := range []struct {
		name  string
		fn    string // the function's name; "config-"+name when empty
		flags []string
		ok    bool
	}{
		{name: "memory-below-min", flags: []string{"--memory-mb", "127"}},
		{name: "memory-above-max", flags: []string{"--memory-mb", "10241"}},
		{name: "timeout-above-max", flags: []string{"--timeout", "901s"}},
		{name: "env-over-4KB", flags: []string{"--env", bigEnv}},
		{name: "env-reserved-memory", flags: []string{"--env", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=999"}},
		{name: "env-reserved-runtime-api", flags: []string{"--env", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}},
		{name: "env-bad-key", flags: []string{"--env", "1BAD=x"}},
		{name: "name-slash", fn: "a/b"},
		{name: "name-dotdot", fn: "../x"},
		{name: "name-colon", fn: "x:y"},
		{name: "name-space", fn: "has space"},
		{name: "name-65-chars", fn: strings.Repeat("n", 65)},
		{name: "at-the-bounds", fn: strings.Repeat("n", 64), flags: []string{"--memory-mb", "10240", "--timeout", "900s"}, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := tc.fn
			if fn == "" {
				fn = "config-" + tc.name
			}
			r := d.gust(t, append([]string{"fn", "deploy", fn, "--code", bin.probeZip}, tc.flags...)...)
			if tc.ok {
				if r.code != 0 {
					t.Errorf("deploy %s %v: want exit 0, got\n%s", fn, tc.flags, r)
				}
				return
			}
			assertPlatformError(t, r, "InvalidParameterValueException", fmt.Sprintf("deploy %q %.60v", fn, tc.flags))
			for _, v := range listFunctions(t, d) {
				if v.Name == fn {
					t.Errorf("fn ls lists %q after a refused deploy", fn)
				}
			}
		})
	}
}

// listFunctions returns `gust fn ls -o json`.
func listFunctions(t *testing.T, d *daemon) []functionView {
	t.Helper()
	var list []functionView
	decode(t, []byte(d.mustGust(t, "-o", "json", "fn", "ls").stdout), &list)
	return list
}

// testLogTail checks --log: the tail holds the START, END and REPORT lines
// of this request and what the function wrote on stderr during it. The
// function writes its line just before it returns, as functions do; it is
// repeated because losing the line is a race.
func testLogTail(t *testing.T, d *daemon) {
	fn := "log-tail"
	d.deploy(t, fn, bin.probeZip)
	const rounds = 60
	missed := 0
	for i := range rounds {
		line := fmt.Sprintf("probe-stderr-line-%d-%d", i, time.Now().UnixNano())
		e := d.mustInvokeJSON(t, fn, `{"action":"log","line":"`+line+`"}`, "--log")
		for _, want := range []string{
			"START RequestId: " + e.RequestID,
			"END RequestId: " + e.RequestID,
			"REPORT RequestId: " + e.RequestID,
		} {
			if !strings.Contains(e.LogTail, want) {
				t.Errorf("log_tail lacks %q:\n%s", want, e.LogTail)
			}
		}
		// The function's line belongs between START and END.
		start := strings.Index(e.LogTail, "START RequestId: "+e.RequestID)
		end := strings.Index(e.LogTail, "END RequestId: "+e.RequestID)
		at := strings.Index(e.LogTail, line)
		if at < 0 || at < start || at > end {
			missed++
			if missed == 1 {
				t.Errorf("log_tail of round %d lacks the function's stderr line %q between START and END:\n%s", i, line, e.LogTail)
			}
		}
	}
	if missed > 0 {
		t.Errorf("the function's stderr line was missing from %d of %d log tails", missed, rounds)
	}
	event := `{"action":"log","line":"plain"}`
	if plain := d.mustInvokeJSON(t, fn, event); plain.LogTail != "" {
		t.Errorf("without --log the envelope has a log_tail: %q", plain.LogTail)
	}
	// Text: stdout holds the payload only.
	r := d.mustGust(t, "invoke", fn, "--payload", event, "--log")
	assertJSONEqual(t, "invoke --log stdout", []byte(r.stdout), []byte(`{"logged":"plain"}`))
}
