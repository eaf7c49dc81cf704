// Package testutil holds helpers shared by tests.
package testutil

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireRoot skips a test that needs root, except under CI=true, where it
// fails: CI runs as root, so a skip there would hide a broken test.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI=true: refusing to skip")
	}
	t.Skip("needs root")
}

// BuildStatic builds a Go main package as a static binary the way Lambda
// functions are built (CGO_ENABLED=0, -tags lambda.norpc) and returns its path.
func BuildStatic(t testing.TB, pkgDir, out string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkgDir, err, b)
	}
	abs, _ := filepath.Abs(out)
	return abs
}

// Eventually polls cond every 10 ms until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	portMu   sync.Mutex
	portNext = 20000 + rand.IntN(10000)
)

// FreeAddr returns a loopback address whose port is free for both TCP and
// UDP (gossip binds both). Ports come from below Linux's ephemeral range
// (32768+), so an outgoing connection's source port cannot take one
// between this call and the listener that uses it, and none is handed out
// twice in one test binary.
func FreeAddr(t testing.TB) string {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for tries := 0; tries < 2000; tries++ {
		port := portNext
		portNext++
		if portNext >= 32000 {
			portNext = 20000
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free loopback port")
	return ""
}

// BootstrapZip packs a function binary as a Lambda code zip: one entry,
// bootstrap, mode 0755.
func BootstrapZip(t testing.TB, bootstrap []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write(bootstrap)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// GustdTags and GustdLDFlags build gustd as `make build` does: statically
// linked, because stem cells re-execute it inside sandboxes that have no
// shared libraries.
const (
	GustdTags    = "seccomp netgo osusergo"
	GustdLDFlags = "-extldflags=-static"
)

// BuildGustd builds gustd to out as `make build` does: gustd-init first,
// into cmd/gustd/initexe where gustd embeds it, then gustd. root is the
// module's directory. Tests that start gustd processes build it with this.
func BuildGustd(root, out string) error {
	initOut := filepath.Join(root, "cmd", "gustd", "initexe", "gustd-init")
	// A name of its own, as test packages running side by side (go test
	// without -p 1) build it at once; hidden, so go:embed leaves it out of
	// a gustd built meanwhile.
	f, err := os.CreateTemp(filepath.Dir(initOut), ".gustd-init-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // gone after the rename; left only by a failed build
	if err := BuildGustdInit(root, tmp); err != nil {
		return err
	}
	// Renamed into place, so a build reading it never sees half.
	if err := os.Rename(tmp, initOut); err != nil {
		return fmt.Errorf("install gustd-init: %w", err)
	}
	return buildStaticCgo(root, out, "./cmd/gustd")
}

// BuildGustdInit builds cmd/gustd-init, the sandboxes' small init, to out.
func BuildGustdInit(root, out string) error {
	return buildStaticCgo(root, out, "./cmd/gustd-init")
}

// buildStaticCgo builds pkg with cgo, linked statically as gustd is.
func buildStaticCgo(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-tags", GustdTags, "-ldflags", GustdLDFlags, "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, o)
	}
	return nil
}

// MaxOverlap is the largest number of intervals running at one instant;
// interval(i) gives the i-th of n as start and end. An end and a start at
// the same instant do not overlap.
func MaxOverlap(n int, interval func(i int) (start, end int64)) int {
	type ev struct {
		t     int64
		delta int
	}
	evs := make([]ev, 0, 2*n)
	for i := range n {
		s, e := interval(i)
		evs = append(evs, ev{s, 1}, ev{e, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].t != evs[j].t {
			return evs[i].t < evs[j].t
		}
		return evs[i].delta < evs[j].delta
	})
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// LogSpans reads the "SPAN start end" lines (ns) a test function printed,
// from a worker's retained log of function fn under its data dir (the
// rotated file first). Each retained line starts with a time stamp, so a
// SPAN is found anywhere in its line. Reading the worker's log rather than
// the answers counts invocations whose caller never saw the result.
func LogSpans(workerDataDir, fn string) (starts, ends []int64) {
	for _, name := range []string{fn + ".log.1", fn + ".log"} {
		f, err := os.Open(filepath.Join(workerDataDir, "logs", name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			i := strings.Index(line, "SPAN ")
			if i < 0 {
				continue
			}
			var s, e int64
			if _, err := fmt.Sscanf(line[i:], "SPAN %d %d", &s, &e); err == nil {
				starts, ends = append(starts, s), append(ends, e)
			}
		}
		f.Close()
	}
	return starts, ends
}
