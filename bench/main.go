// Command bench measures gustd dev's cold start and warm invoke side by
// side, in the same run, with two references: `runc run` of /bin/true and
// the AWS Lambda Runtime Interface Emulator serving the same bootstrap.
// It prints a Markdown report for BENCHMARKS.md. Run it as root through
// `make bench`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

func main() {
	var (
		gustd     = flag.String("gustd", "bin/gustd", "gustd binary")
		bootstrap = flag.String("bootstrap", "bin/hello/bootstrap", "function bootstrap (aws-lambda-go, static)")
		rie       = flag.String("rie", "aws-lambda-rie", "aws-lambda-rie binary")
		coldN     = flag.Int("cold", 100, "cold starts per subject")
		warmN     = flag.Int("warm", 2000, "warm invokes per subject")
		tpDur     = flag.Duration("throughput", 5*time.Second, "duration of each throughput round (quotas on/off)")
		asyncN    = flag.Int("async", 4000, "async events to enqueue on a 3-coordinator cluster")
		only      = flag.String("only", "", "run one part only: async")
	)
	flag.Parse()
	if *only == "async" {
		if err := runAsync(*gustd, *bootstrap, *asyncN); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*gustd, *bootstrap, *rie, *coldN, *warmN, *tpDur, *asyncN); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(gustdBin, bootstrap, rieBin string, coldN, warmN int, tpDur time.Duration, asyncN int) error {
	work, err := os.MkdirTemp("", "gust-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	runcCold, err := benchRunc(work, coldN)
	if err != nil {
		return fmt.Errorf("runc: %w", err)
	}
	rieCold, rieWarm, err := benchRIE(rieBin, bootstrap, coldN/4+1, warmN)
	if err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	gustCold, gustWarm, err := benchGust(work, gustdBin, bootstrap, coldN, warmN)
	if err != nil {
		return fmt.Errorf("gust: %w", err)
	}
	viaLeader, viaFollower, err := benchCluster(work, gustdBin, bootstrap, warmN/2)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}

	kernel, _ := exec.Command("uname", "-r").Output()
	fmt.Printf("Run %s on %s, kernel %s, cgroup %s, %d CPUs, %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		hostname(), strings.TrimSpace(string(kernel)), cgroupVersion(), runtime.NumCPU(), runtime.Version())
	fmt.Println("| measurement | samples | p50 ms | p99 ms | p50 ratio | p99 ratio |")
	fmt.Println("|---|---|---|---|---|---|")
	row := func(name string, s, ref []time.Duration) {
		fmt.Printf("| %s | %d | %.2f | %.2f | %s | %s |\n", name, len(s), msq(s, 50), msq(s, 99),
			ratio(s, ref, 50), ratio(s, ref, 99))
	}
	row("`runc run` /bin/true (reference)", runcCold, nil)
	row("aws-lambda-rie first invoke (cold)", rieCold, runcCold)
	row("gust cold start, first invoke (vs runc run)", gustCold, runcCold)
	row("aws-lambda-rie warm invoke (reference)", rieWarm, nil)
	row("gust warm invoke, gRPC (vs RIE warm)", gustWarm, rieWarm)
	row("cluster warm invoke via the Raft leader (reference)", viaLeader, nil)
	row("cluster warm invoke via a follower (vs leader)", viaFollower, viaLeader)

	// Quotas on versus off, alternating rounds so both see the same noise.
	var onRate, offRate []float64
	var onLat, offLat []time.Duration
	for round := 0; round < 2; round++ {
		for _, quotas := range []bool{false, true} {
			rate, lat, err := benchThroughput(work, gustdBin, bootstrap, quotas, 8, tpDur)
			if err != nil {
				return fmt.Errorf("throughput: %w", err)
			}
			if quotas {
				onRate, onLat = append(onRate, rate), append(onLat, lat...)
			} else {
				offRate, offLat = append(offRate, rate), append(offLat, lat...)
			}
		}
	}
	row("warm invoke, 8 clients, quotas off (reference)", offLat, nil)
	row("warm invoke, 8 clients, quotas on (vs off)", onLat, offLat)
	mean := func(v []float64) float64 {
		t := 0.0
		for _, x := range v {
			t += x
		}
		return t / float64(len(v))
	}
	fmt.Printf("\nthroughput, 8 closed-loop clients, %s rounds ×2: quotas off %.0f/s, quotas on %.0f/s (%.2f×)\n",
		tpDur, mean(offRate), mean(onRate), mean(onRate)/mean(offRate))

	return asyncReport(work, gustdBin, bootstrap, asyncN)
}

func runAsync(gustdBin, bootstrap string, asyncN int) error {
	work, err := os.MkdirTemp("", "gust-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	return asyncReport(work, gustdBin, bootstrap, asyncN)
}

func asyncReport(work, gustdBin, bootstrap string, asyncN int) error {
	rounds, ackToStart, err := benchAsync(work, gustdBin, bootstrap, asyncN, []int{16, 32, 64, 128}, 200, 10*time.Second)
	if err != nil {
		return fmt.Errorf("async: %w", err)
	}
	fmt.Printf("\ndurable async enqueue on 3 coordinators + 1 worker, %d events per round, closed-loop clients spread over the coordinators\n", asyncN)
	fmt.Println("| clients | events/s | ack p50 ms | ack p99 ms |")
	fmt.Println("|---|---|---|---|")
	for _, r := range rounds {
		fmt.Printf("| %d | %.0f | %.2f | %.2f |\n", r.clients, r.rate, msq(r.ack, 50), msq(r.ack, 99))
	}
	fmt.Printf("\nsteady Poisson load, 200 events/s for 10 s: acknowledgement to first attempt start, %d events: p50 %.2f ms, p99 %.2f ms\n",
		len(ackToStart), msq(ackToStart, 50), msq(ackToStart, 99))
	return nil
}

// benchRunc times `runc run` of /bin/true in a minimal bundle.
func benchRunc(work string, n int) ([]time.Duration, error) {
	bundle := filepath.Join(work, "runc")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, f := range []string{"/bin/true", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		if err := copyFile(f, filepath.Join(rootfs, f)); err != nil {
			return nil, err
		}
	}
	spec := exec.Command("runc", "spec", "--bundle", bundle)
	if out, err := spec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v %s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	cfg = bytes.Replace(cfg, []byte(`"terminal": true`), []byte(`"terminal": false`), 1)
	cfg = bytes.Replace(cfg, []byte(`"sh"`), []byte(`"/bin/true"`), 1)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		cmd := exec.Command("runc", "run", "--bundle", bundle, fmt.Sprintf("bench-%d-%d", os.Getpid(), i))
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runc run: %v %s", err, b)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// benchRIE starts aws-lambda-rie with the bootstrap: its first invoke
// starts the runtime (cold), later ones reuse it (warm).
func benchRIE(rieBin, bootstrap string, coldN, warmN int) (cold, warm []time.Duration, err error) {
	boot, err := filepath.Abs(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	payload := []byte(`{"name":"bench"}`)
	for i := 0; i < coldN; i++ {
		addr := freeAddr()
		cmd := exec.Command(rieBin, "--runtime-interface-emulator-address", addr, boot)
		cmd.Env = append(os.Environ(), "AWS_LAMBDA_FUNCTION_NAME=function")
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		url := "http://" + addr + "/2015-03-31/functions/function/invocations"
		waitTCP(addr)
		start := time.Now()
		if err := post(hc, url, payload); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, nil, err
		}
		cold = append(cold, time.Since(start))
		if i == coldN-1 {
			for j := 0; j < warmN; j++ {
				start := time.Now()
				if err := post(hc, url, payload); err != nil {
					return nil, nil, err
				}
				warm = append(warm, time.Since(start))
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	return cold, warm, nil
}

func post(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("hello")) {
		return fmt.Errorf("unexpected answer %d %s", resp.StatusCode, b)
	}
	return nil
}

// benchGust starts gustd dev, deploys one function per cold sample (same
// code, so the code cache is warm but every sandbox is new) and times the
// first invoke of each from a gRPC client; then times warm invokes.
func benchGust(work, gustdBin, bootstrap string, coldN, warmN int) (cold, warm []time.Duration, err error) {
	grpcAddr, httpAddr := freeAddr(), freeAddr()
	var stderr bytes.Buffer
	cmd := exec.Command(gustdBin, "dev", "--data-dir", filepath.Join(work, "gust"), "--grpc", grpcAddr, "--http", httpAddr)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	if !waitHTTP("http://" + httpAddr + "/readyz") {
		return nil, nil, fmt.Errorf("gustd never became ready: %s", stderr.String())
	}
	c, err := client.New([]string{grpcAddr}, "")
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	ctx := context.Background()
	code, err := zipBootstrap(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	up, err := c.UploadCode(ctx, bytes.NewReader(code))
	if err != nil {
		return nil, nil, err
	}
	payload := []byte(`{"name":"bench"}`)
	for i := 0; i < coldN; i++ {
		name := fmt.Sprintf("cold-%d", i)
		if _, err := c.PutFunction(ctx, &gustv1.FunctionConfig{Name: name}, up.GetDigest()); err != nil {
			return nil, nil, err
		}
		start := time.Now()
		res, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: name, Payload: payload})
		if err != nil {
			return nil, nil, err
		}
		cold = append(cold, time.Since(start))
		if !res.GetColdStart() || res.GetFunctionError() != "" {
			return nil, nil, fmt.Errorf("cold sample %d: cold=%v error=%s", i, res.GetColdStart(), res.GetPayload())
		}
		// Keep the host's memory and the pool small between samples.
		if err := c.DeleteFunction(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	if _, err := c.PutFunction(ctx, &gustv1.FunctionConfig{Name: "warm"}, up.GetDigest()); err != nil {
		return nil, nil, err
	}
	if _, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: "warm", Payload: payload}); err != nil {
		return nil, nil, err
	}
	for i := 0; i < warmN; i++ {
		start := time.Now()
		res, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: "warm", Payload: payload})
		if err != nil {
			return nil, nil, err
		}
		warm = append(warm, time.Since(start))
		if res.GetColdStart() {
			return nil, nil, fmt.Errorf("warm sample %d was cold", i)
		}
	}
	return cold, warm, nil
}

func msq(s []time.Duration, q int) float64 {
	if len(s) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	idx := (len(c)*q + 99) / 100
	if idx >= len(c) {
		idx = len(c) - 1
	}
	if idx > 0 && q == 50 {
		idx = len(c) / 2
	}
	return float64(c[idx]) / float64(time.Millisecond)
}

func ratio(s, ref []time.Duration, q int) string {
	if ref == nil {
		return "1 (reference)"
	}
	return fmt.Sprintf("%.2f×", msq(s, q)/msq(ref, q))
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitTCP(addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitHTTP(url string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

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

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "v2"
	}
	return "v1"
}
