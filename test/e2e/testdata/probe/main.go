// Command probe is the e2e suite's function: one aws-lambda-go handler
// whose behaviour the event picks ({"action": ...}). It is built static
// (CGO_ENABLED=0, -tags lambda.norpc) and deployed as /var/task/bootstrap,
// so it runs unchanged on AWS Lambda and on gust.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Event selects what the probe does.
type Event struct {
	Action string `json:"action"`
	// Data is echoed back by "echo".
	Data any `json:"data,omitempty"`
	// Pad is ignored except for its length, to make big events.
	Pad string `json:"pad,omitempty"`
	// Key is the variable "env" reads.
	Key string `json:"key,omitempty"`
	// N is milliseconds (sleep), megabytes (alloc), an exit code (exit),
	// bytes (big) or a loopback port (plant, look).
	N int `json:"n,omitempty"`
	// Line is written to stderr by "log".
	Line string `json:"line,omitempty"`
	// Paths are host paths "isolation" must not see and "files" reads.
	Paths []string `json:"paths,omitempty"`
	// Addrs are what "connect" dials: "tcp:host:port", "udp:host:port",
	// "unix:@abstract-name".
	Addrs []string `json:"addrs,omitempty"`
	// Marker names what "mount", "files", "plant" and "look" leave or seek.
	Marker string `json:"marker,omitempty"`
	// Pids are host pids "look" signals (with signal 0).
	Pids []int `json:"pids,omitempty"`
	// RequestContext and RequestPayload arrive in an on-failure
	// destination record; "echo" logs them.
	RequestContext map[string]any  `json:"requestContext,omitempty"`
	RequestPayload json.RawMessage `json:"requestPayload,omitempty"`
	// Args are an extra action's own arguments (see extraActions).
	Args json.RawMessage `json:"args,omitempty"`
}

// extraActions are actions defined in files of their own (attack_*.go),
// each registered from an init function, so that suites can add probes
// without editing the switch in handle.
var extraActions = map[string]func(ctx context.Context, e Event) (any, error){}

// counter counts invocations served by this process: kept across warm
// invocations, reset by a cold start.
var counter int

// hog keeps "alloc" memory reachable so the GC cannot free it.
var hog [][]byte

func handle(ctx context.Context, e Event) (any, error) {
	counter++
	switch e.Action {
	case "echo", "":
		if e.RequestContext != nil {
			fmt.Printf("DESTINATION %v %s\n", e.RequestContext["condition"], e.RequestPayload)
		}
		return map[string]any{"data": e.Data, "pad_len": len(e.Pad)}, nil
	case "count":
		id := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			id = lc.AwsRequestID
		}
		return map[string]any{"count": counter, "pid": os.Getpid(), "request_id": id}, nil
	case "env":
		out := map[string]any{"value": os.Getenv(e.Key)}
		for _, k := range []string{
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
			"AWS_REGION", "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_LAMBDA_RUNTIME_API", "TZ",
		} {
			if v, ok := os.LookupEnv(k); ok {
				out[k] = v
			}
		}
		return out, nil
	case "trace":
		// aws-lambda-go sets _X_AMZN_TRACE_ID and the context value from
		// the Lambda-Runtime-Trace-Id header of each invocation.
		fromCtx, _ := ctx.Value("x-amzn-trace-id").(string)
		return map[string]any{"env": os.Getenv("_X_AMZN_TRACE_ID"), "ctx": fromCtx}, nil
	case "error":
		return nil, errors.New("boom")
	case "log":
		fmt.Fprintln(os.Stderr, e.Line)
		return map[string]any{"logged": e.Line}, nil
	case "span":
		// Reports its own start and end, so tests can count overlap from
		// the function's side.
		start := time.Now()
		time.Sleep(time.Duration(e.N) * time.Millisecond)
		end := time.Now()
		// Also in the log, for invocations whose caller never sees the answer.
		fmt.Printf("SPAN %d %d\n", start.UnixNano(), end.UnixNano())
		return map[string]any{"start_ns": start.UnixNano(), "end_ns": end.UnixNano()}, nil
	case "sleep":
		// Deliberately deaf to ctx: a timeout must be the platform's doing.
		time.Sleep(time.Duration(e.N) * time.Millisecond)
		return map[string]any{"slept_ms": e.N}, nil
	case "alloc":
		for i := 0; i < e.N; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			hog = append(hog, b)
		}
		return map[string]any{"allocated_mb": len(hog)}, nil
	case "exit":
		os.Exit(e.N)
	case "panic":
		panic("kaboom")
	case "big":
		return strings.Repeat("x", e.N), nil
	case "isolation":
		return isolation(e), nil
	// The hostile actions (hostile.go).
	case "forkbomb":
		return nil, forkBomb()
	case "forkbomb-hold":
		return nil, forkBombHold()
	case "spin":
		spin()
	case "filltmp":
		return fillTmp(), nil
	case "mount":
		return mountAttempts(e.Marker), nil
	case "ptrace":
		return ptraceAttempts(), nil
	case "modules":
		return moduleAttempts(), nil
	case "rawsock":
		return rawSocketAttempts(), nil
	case "connect":
		return connectAttempts(e.Addrs), nil
	case "files":
		return files(e.Paths, e.Marker), nil
	case "plant":
		return plant(e.Marker, e.N)
	case "look":
		return look(e.Marker, e.N, e.Pids), nil
	case "inotify-hold":
		return inotifyHold(), nil
	case "inotify-release":
		inotifyRelease()
		return map[string]any{"released": true}, nil
	case "inotify-one":
		return inotifyOne(), nil
	}
	if f, ok := extraActions[e.Action]; ok {
		return f(ctx, e)
	}
	return nil, fmt.Errorf("unknown action %q", e.Action)
}

// isolation reports what the function can see and do.
func isolation(e Event) map[string]any {
	out := map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "euid": os.Geteuid(), "pid": os.Getpid()}
	if u, err := user.Current(); err == nil {
		out["user"] = u.Username
	}
	_, err := os.ReadFile("/etc/shadow")
	out["shadow_err"] = errString(err)
	cmdline, err := os.ReadFile("/proc/1/cmdline")
	out["pid1_cmdline"] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	out["pid1_err"] = errString(err)
	out["task_write_err"] = errString(os.WriteFile("/var/task/x", []byte("x"), 0o644))
	out["tmp_write_err"] = errString(os.WriteFile("/tmp/x", []byte("x"), 0o644))
	out["root_write_err"] = errString(os.WriteFile("/x", []byte("x"), 0o644))
	out["hostname"], _ = os.Hostname()
	ifaces, err := net.Interfaces()
	names := []string{}
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	out["ifaces"] = names
	out["ifaces_err"] = errString(err)
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (k == "CapEff" || k == "CapPrm" || k == "CapBnd" || k == "NoNewPrivs" || k == "Seccomp") {
			out[k] = strings.TrimSpace(v)
		}
	}
	_ = os.MkdirAll("/tmp/mnt", 0o755)
	out["mount_err"] = errString(syscall.Mount("tmpfs", "/tmp/mnt", "tmpfs", 0, ""))
	out["ptrace_err"] = ptraceChild()
	visible := []string{}
	for _, p := range e.Paths {
		if _, err := os.Stat(p); err == nil {
			visible = append(visible, p)
		}
	}
	out["host_paths_visible"] = visible
	return out
}

// ptraceChild starts a child of this process and tries to attach to it:
// allowed for an unprivileged parent, so a failure is the sandbox's doing.
func ptraceChild() string {
	self, err := os.Executable()
	if err != nil {
		return "executable: " + err.Error()
	}
	cmd := exec.Command(self)
	cmd.Env = []string{"PROBE_CHILD=sleep"}
	if err := cmd.Start(); err != nil {
		return "start child: " + err.Error()
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := syscall.PtraceAttach(cmd.Process.Pid); err != nil {
		return err.Error()
	}
	_ = syscall.PtraceDetach(cmd.Process.Pid)
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func main() {
	switch os.Getenv("PROBE_CHILD") {
	case "sleep":
		time.Sleep(10 * time.Second)
		return
	case "exit":
		return
	case "traceme":
		traceMe()
		return
	}
	// PROBE_INIT_EXIT=N makes the function die during init, before it
	// asks for its first event.
	if v := os.Getenv("PROBE_INIT_EXIT"); v != "" {
		fmt.Fprintln(os.Stderr, "probe: exiting during init")
		code, _ := strconv.Atoi(v)
		os.Exit(code)
	}
	lambda.Start(handle)
}
