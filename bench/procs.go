package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// proc is a child process the bench started (gustd, aws-lambda-rie), with
// its output in a log file for when it fails.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startProc starts bin with args, its stdout and stderr going to
// dir/name.log.
func startProc(dir, name, bin string, args []string, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if env != nil {
		cmd.Env = env
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process to finish (SIGINT: gustd drains), and kills it
// after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// kill ends the process at once.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// gustd is one `gustd dev` (coordinator and worker in one process).
type gustd struct {
	*proc
	grpcAddr, httpAddr string
}

// startGustd starts `gustd dev` on free loopback ports with its own data
// directory under dir, and waits until it is ready.
func startGustd(ctx context.Context, dir, bin, name string, extra ...string) (*gustd, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"dev", "--data-dir", filepath.Join(dir, name), "--grpc", grpcAddr, "--http", httpAddr, "--drain-timeout", "5s"}, extra...)
	p, err := startProc(dir, name, bin, args, nil)
	if err != nil {
		return nil, err
	}
	g := &gustd{proc: p, grpcAddr: grpcAddr, httpAddr: httpAddr}
	if err := waitHTTP(ctx, "http://"+httpAddr+"/readyz", 60*time.Second, p.exited); err != nil {
		g.stop(10 * time.Second)
		return nil, fmt.Errorf("gustd dev never became ready: %w\n%s", err, g.tail())
	}
	// Measure a worker in its steady state: while it fills its stock of
	// stem cells at start, container creation takes the CPUs.
	if err := waitStemCells(ctx, "http://"+httpAddr+"/metrics", 60*time.Second, p.exited); err != nil {
		g.stop(10 * time.Second)
		return nil, fmt.Errorf("gustd dev never filled its stem cells: %w\n%s", err, g.tail())
	}
	return g, nil
}

// waitStemCells polls a gustd dev's metrics until its worker's stock of
// stem cells is full.
func waitStemCells(ctx context.Context, url string, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		ready, target, err := stemCells(hc, url)
		if err == nil && ready >= target {
			return nil
		}
		if err := pause(ctx, deadline, exited, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%g of %g ready: %w", ready, target, err)
		}
	}
}

func stemCells(hc *http.Client, url string) (ready, target float64, err error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	gauge := func(name string) (float64, error) {
		f := families[name]
		if f == nil || len(f.GetMetric()) == 0 {
			return 0, fmt.Errorf("no %s", name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	if ready, err = gauge("gust_worker_stem_cells"); err != nil {
		return 0, 0, err
	}
	target, err = gauge("gust_worker_stem_cells_target")
	return ready, target, err
}

// freeAddr is a loopback TCP address nothing listens on at the moment.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitTCP polls until addr accepts connections.
func waitTCP(ctx context.Context, addr string, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if err := pause(ctx, deadline, exited, 2*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
}

// waitHTTP polls until url answers 200.
func waitHTTP(ctx context.Context, url string, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := pause(ctx, deadline, exited, 20*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
	}
}

var errExited = errors.New("the process exited")

// pause waits d, failing if the deadline passed, ctx ended or the process
// exited.
func pause(ctx context.Context, deadline time.Time, exited <-chan struct{}, d time.Duration) error {
	if time.Now().After(deadline) {
		return errors.New("timed out")
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-exited:
		return errExited
	case <-t.C:
		return nil
	}
}

// copyFile copies src to dst, creating dst's directory, executable.
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
