package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// benchThroughput runs closed-loop warm invokes from conc clients for dur
// against gustd dev, with admission on or off (--no-quotas), and returns
// invocations per second and every latency.
func benchThroughput(work, gustdBin, bootstrap string, quotas bool, conc int, dur time.Duration) (float64, []time.Duration, error) {
	grpcAddr, httpAddr := freeAddr(), freeAddr()
	args := []string{"dev", "--data-dir", filepath.Join(work, fmt.Sprintf("tp-%v-%d", quotas, time.Now().UnixNano())), "--grpc", grpcAddr, "--http", httpAddr}
	if !quotas {
		args = append(args, "--no-quotas")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(gustdBin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	if !waitHTTP("http://" + httpAddr + "/readyz") {
		return 0, nil, fmt.Errorf("gustd never ready: %s", stderr.String())
	}
	c, err := client.New([]string{grpcAddr}, "")
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	code, err := zipBootstrap(bootstrap)
	if err != nil {
		return 0, nil, err
	}
	ctx := context.Background()
	if _, err := c.Deploy(ctx, &gustv1.FunctionConfig{Name: "tp"}, bytes.NewReader(code)); err != nil {
		return 0, nil, err
	}
	payload := []byte(`{"name":"bench"}`)
	// Warm one sandbox per client.
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Invoke(ctx, &gustv1.InvokeRequest{Function: "tp", Payload: payload}) }()
	}
	wg.Wait()
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	deadline := time.Now().Add(dur)
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				_, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: "tp", Payload: payload})
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if errs > 0 {
		return 0, nil, fmt.Errorf("%d invocations failed", errs)
	}
	return float64(len(lat)) / elapsed.Seconds(), lat, nil
}
