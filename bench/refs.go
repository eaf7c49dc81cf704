package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runcBundle is a minimal OCI bundle running /bin/true: `runc spec`'s
// default config (read-only root, its own namespaces) with /bin/true and
// the two libraries it needs.
type runcBundle struct {
	runc string
	dir  string
	seq  atomic.Int64
}

func newRuncBundle(ctx context.Context, runc, work string) (*runcBundle, error) {
	dir := filepath.Join(work, "runc-bundle")
	rootfs := filepath.Join(dir, "rootfs")
	out, err := exec.CommandContext(ctx, "ldd", "/bin/true").Output()
	if err != nil {
		return nil, fmt.Errorf("ldd /bin/true: %w", err)
	}
	files := []string{"/bin/true"}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			files = append(files, f)
		}
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(rootfs, f)); err != nil {
			return nil, err
		}
	}
	// Modes share the work dir: a second bundle replaces the first's spec.
	os.Remove(filepath.Join(dir, "config.json"))
	if b, err := exec.CommandContext(ctx, runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, b)
	}
	cfgPath := filepath.Join(dir, "config.json")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	cfg = bytes.Replace(cfg, []byte(`"terminal": true`), []byte(`"terminal": false`), 1)
	cfg = bytes.Replace(cfg, []byte(`"sh"`), []byte(`"/bin/true"`), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, err
	}
	return &runcBundle{runc: runc, dir: dir}, nil
}

// run is one `runc run` of /bin/true, timed as a whole process: create,
// start, run, delete.
func (b *runcBundle) run(ctx context.Context) (time.Duration, error) {
	id := fmt.Sprintf("gust-bench-%d-%d", os.Getpid(), b.seq.Add(1))
	cmd := exec.CommandContext(ctx, b.runc, "run", "--bundle", b.dir, id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("runc run: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

// runcVersion is runc's first version line, for the report.
func runcVersion(ctx context.Context, runc string) string {
	out, err := exec.CommandContext(ctx, runc, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// execTrue is one fork/exec of /bin/true, until it has exited: the floor
// of starting any process here.
func execTrue(ctx context.Context) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "/bin/true")
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

// runtimeStub is a tiny in-process AWS Lambda Runtime API (2018-06-01)
// for a bootstrap run as a plain process: the first /next of an armed
// sample gets one event, its /response ends the sample, and later /next
// calls wait until the process is killed. It times, per process, exec to
// the first /next (the process's start-up floor) and exec to its first
// answer (start-up plus one invocation, no isolation).
type runtimeStub struct {
	ln    net.Listener
	srv   *http.Server
	event []byte

	mu    sync.Mutex
	armed bool
	next  chan time.Time // the armed sample's first /next
	done  chan time.Time // its /response
	fail  chan string    // its /error or /init/error
}

func startRuntimeStub(event []byte) (*runtimeStub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &runtimeStub{ln: ln, event: event}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", s.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", s.handleResult(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", s.handleResult(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", s.handleResult(true))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the value of AWS_LAMBDA_RUNTIME_API.
func (s *runtimeStub) Addr() string { return s.ln.Addr().String() }

func (s *runtimeStub) Close() error { return s.srv.Close() }

// arm readies the stub for one process and returns its signals.
func (s *runtimeStub) arm() (next, done <-chan time.Time, fail <-chan string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = true
	s.next, s.done, s.fail = make(chan time.Time, 1), make(chan time.Time, 1), make(chan string, 1)
	return s.next, s.done, s.fail
}

func (s *runtimeStub) handleNext(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	s.mu.Lock()
	first := s.armed
	s.armed = false
	next := s.next
	s.mu.Unlock()
	if !first {
		<-r.Context().Done() // the process is killed while it waits here
		return
	}
	next <- at
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", "bench-"+strconv.FormatInt(at.UnixNano(), 36))
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(at.Add(time.Minute).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	w.WriteHeader(http.StatusOK)
	w.Write(s.event)
}

func (s *runtimeStub) handleResult(failed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusAccepted)
		s.mu.Lock()
		done, fail := s.done, s.fail
		s.mu.Unlock()
		if failed {
			select {
			case fail <- string(b):
			default:
			}
			return
		}
		select {
		case done <- at:
		default:
		}
	}
}

// execBootstrap runs the bootstrap as a plain process against the stub and
// returns the time from exec to its first /next and to its first answer.
func execBootstrap(ctx context.Context, stub *runtimeStub, bootstrap string, env []string) (toNext, toAnswer time.Duration, err error) {
	next, done, fail := stub.arm()
	cmd := exec.Command(bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	wait := func(ch <-chan time.Time) (time.Duration, error) {
		select {
		case at := <-ch:
			return at.Sub(start), nil
		case msg := <-fail:
			return 0, fmt.Errorf("bootstrap reported an error: %s", msg)
		case err := <-exited:
			exited <- err
			return 0, fmt.Errorf("bootstrap exited: %v", err)
		case <-timeout.C:
			return 0, errors.New("bootstrap: no Runtime API call within 10 s")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if toNext, err = wait(next); err != nil {
		return 0, 0, err
	}
	if toAnswer, err = wait(done); err != nil {
		return 0, 0, err
	}
	return toNext, toAnswer, nil
}

// bootstrapEnv is the environment a Lambda runtime expects, pointed at the
// stub.
func bootstrapEnv(runtimeAPI string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=bench",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_REGION=us-east-1",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
}

// rie is one aws-lambda-rie process serving the bootstrap.
type rie struct {
	*proc
	lambda *lambdaClient
}

// rieFunction is the only function name aws-lambda-rie serves.
const rieFunction = "function"

// rieRuntimeAPI is the address aws-lambda-rie always serves its Runtime
// API on: two RIEs on one host cannot run at once.
const rieRuntimeAPI = "127.0.0.1:9001"

// startRIE starts aws-lambda-rie with the bootstrap on a free port and
// waits until it accepts connections (it starts the bootstrap only at the
// first invoke).
func startRIE(ctx context.Context, dir, bin, bootstrap string, hc *http.Client, seq int) (*rie, error) {
	// The previous RIE's port may take a moment to be released; another
	// program's holds it for good.
	deadline := time.Now().Add(5 * time.Second)
	for listening(rieRuntimeAPI) {
		if err := pause(ctx, deadline, nil, 5*time.Millisecond); err != nil {
			return nil, fmt.Errorf("%s, where aws-lambda-rie serves its Runtime API, is taken by another process (another aws-lambda-rie?)", rieRuntimeAPI)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "AWS_LAMBDA_FUNCTION_NAME="+rieFunction)
	p, err := startProc(dir, fmt.Sprintf("rie-%d", seq), bin, []string{"--runtime-interface-emulator-address", addr, bootstrap}, env)
	if err != nil {
		return nil, err
	}
	for _, a := range []string{addr, rieRuntimeAPI} {
		if err := waitTCP(ctx, a, 10*time.Second, p.exited); err != nil {
			p.kill()
			return nil, fmt.Errorf("aws-lambda-rie never listened: %w\n%s", err, p.tail())
		}
	}
	select {
	case <-p.exited:
		return nil, fmt.Errorf("aws-lambda-rie exited at start:\n%s", p.tail())
	default:
	}
	return &rie{proc: p, lambda: &lambdaClient{hc: hc, base: "http://" + addr}}, nil
}

// listening reports whether something accepts connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
