package main

// Attacks on the worker from inside a sandbox (issue 14, H1, M3, L2): a
// flood of Runtime API connections, some with endless headers, and log
// floods with and without newlines. Each reports what it managed, so the
// e2e suite can judge from outside what the worker let through.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	extraActions["rapi-flood"] = rapiFlood
	extraActions["log-flood"] = logFlood
	if os.Getenv("PROBE_ATTACK_CHILD") == "rapi" {
		rapiChild()
		os.Exit(0)
	}
}

// rapiArgs shape a Runtime API connection flood.
type rapiArgs struct {
	// Parked connections each send GET /next and wait.
	Parked int `json:"parked"`
	// Headers connections each send HeaderKB of header lines that never end.
	Headers  int `json:"headers"`
	HeaderKB int `json:"header_kb"`
	// HoldMs is how long every connection is held open.
	HoldMs int `json:"hold_ms"`
}

// rapiStats is what a flood achieved: connections dialled, refused at
// dial, closed by the server within the hold, and still open at its end.
type rapiStats struct {
	Dialed  int64 `json:"dialed"`
	DialErr int64 `json:"dial_err"`
	Closed  int64 `json:"closed"`
	Held    int64 `json:"held"`
}

// perChild keeps each process under the sandbox's 1,024 descriptors.
const perChild = 800

// rapiFlood opens the connections from child processes (a process has
// too few descriptors for thousands) and sums what they report.
func rapiFlood(_ context.Context, e Event) (any, error) {
	var a rapiArgs
	if err := json.Unmarshal(e.Args, &a); err != nil {
		return nil, fmt.Errorf("rapi-flood args: %w", err)
	}
	var jobs []rapiArgs
	for p, h := a.Parked, a.Headers; p > 0 || h > 0; {
		j := rapiArgs{HeaderKB: a.HeaderKB, HoldMs: a.HoldMs}
		j.Headers = min(h, perChild)
		j.Parked = min(p, perChild-j.Headers)
		p, h = p-j.Parked, h-j.Headers
		jobs = append(jobs, j)
	}
	var (
		mu    sync.Mutex
		total rapiStats
		errs  []error
		wg    sync.WaitGroup
	)
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args, _ := json.Marshal(j)
			cmd := exec.Command("/var/task/bootstrap")
			cmd.Env = append(os.Environ(), "PROBE_ATTACK_CHILD=rapi", "PROBE_ATTACK_ARGS="+string(args))
			out, err := cmd.Output()
			var st rapiStats
			if err == nil {
				err = json.Unmarshal(out, &st)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			total.Dialed += st.Dialed
			total.DialErr += st.DialErr
			total.Closed += st.Closed
			total.Held += st.Held
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// rapiChild is one flooding process: it dials its connections, holds
// them for HoldMs and prints its rapiStats.
func rapiChild() {
	var a rapiArgs
	if err := json.Unmarshal([]byte(os.Getenv("PROBE_ATTACK_ARGS")), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	addr := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	end := time.Now().Add(time.Duration(a.HoldMs) * time.Millisecond)
	var st rapiStats
	var wg sync.WaitGroup
	hold := func(headers bool) {
		defer wg.Done()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			atomic.AddInt64(&st.DialErr, 1)
			return
		}
		defer c.Close()
		atomic.AddInt64(&st.Dialed, 1)
		if headers {
			c.SetWriteDeadline(end)
			_, err = c.Write([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n"))
			line := []byte("X-Pad: " + strings.Repeat("a", 1000) + "\r\n")
			for sent := 0; err == nil && sent < a.HeaderKB<<10; sent += len(line) {
				_, err = c.Write(line)
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				atomic.AddInt64(&st.Closed, 1)
				return
			}
		} else if _, err := c.Write([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			atomic.AddInt64(&st.Closed, 1)
			return
		}
		// The server's answer, if any, or its closing, ends the hold.
		c.SetReadDeadline(end)
		_, err = c.Read(make([]byte, 512))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			atomic.AddInt64(&st.Held, 1)
		} else {
			atomic.AddInt64(&st.Closed, 1)
		}
	}
	for range a.Parked {
		wg.Add(1)
		go hold(false)
	}
	for range a.Headers {
		wg.Add(1)
		go hold(true)
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(st)
}

// floodArgs shape a log flood.
type floodArgs struct {
	// Ms is how long to write; MB stops it earlier (0: no cap).
	Ms int `json:"ms"`
	MB int `json:"mb"`
	// Newlines ends every 100 bytes with a newline; without it the whole
	// flood is one line.
	Newlines bool `json:"newlines"`
	// MBps paces the writes to this many MB per second (0: as fast as
	// the worker takes them).
	MBps float64 `json:"mbps"`
}

// logFlood writes to stdout as fast as the worker takes it.
func logFlood(_ context.Context, e Event) (any, error) {
	var a floodArgs
	if err := json.Unmarshal(e.Args, &a); err != nil {
		return nil, fmt.Errorf("log-flood args: %w", err)
	}
	chunk := []byte(strings.Repeat("x", 64<<10))
	if a.Newlines {
		for i := 99; i < len(chunk); i += 100 {
			chunk[i] = '\n'
		}
	}
	start := time.Now()
	end := start.Add(time.Duration(a.Ms) * time.Millisecond)
	written := 0
	for time.Now().Before(end) && (a.MB == 0 || written < a.MB<<20) {
		if a.MBps > 0 {
			due := start.Add(time.Duration(float64(written) / (a.MBps * (1 << 20)) * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
		p := chunk
		if a.MB > 0 {
			p = p[:min(len(p), a.MB<<20-written)]
		}
		n, err := os.Stdout.Write(p)
		written += n
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"written": written}, nil
}
