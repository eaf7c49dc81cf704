// Attacks on the coordinator's HTTP front and on code upload (issue 14:
// H2, M7, H4): request bodies declared large and sent a byte at a time,
// headers too large, and zips whose paths imply thousands of directories.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/codezip"
	"github.com/gustfaas/gust/internal/testutil"
)

func TestAttackHTTP(t *testing.T) {
	testutil.RequireRoot(t)
	pprof := freeAddr(t)
	d := startDaemon(t, "--auth", "--pprof", pprof)
	root := readRootToken(t, d)
	d.mustGust(t, "--token", root, "fn", "deploy", "probe", "--code", bin.probeZip)

	t.Run("SlowBodies", func(t *testing.T) { attackSlowBodies(t, d, root, pprof) })
	t.Run("BigHeaders", func(t *testing.T) { attackBigHeaders(t, d) })
	t.Run("DirectoryBomb", func(t *testing.T) { attackDirectoryBomb(t, d, root) })
}

// attackSlowBodies is H2: authenticated requests that declare large bodies
// and send one byte. They used to cost the declared length each at once
// (200 × 6 MB invokes: heap 22 MB → 1.2 GB) and were held as long as the
// client liked. Now they cost what arrived, are cut off with 408 after the
// 10 s grace, and other calls are served meanwhile. Without a token the
// body is never read: 401 at once.
func attackSlowBodies(t *testing.T, d *daemon, root, pprof string) {
	const invokes, creates = 100, 10
	before := heapInuseMB(t, pprof)

	type slow struct {
		c    net.Conn
		kind string
	}
	open := func(method, path, token string, length int) net.Conn {
		c, err := net.Dial("tcp", d.http)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		auth := ""
		if token != "" {
			auth = "Authorization: Bearer " + token + "\r\n"
		}
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: gust\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", method, path, auth, length)
		return c
	}
	var conns []slow
	for range invokes {
		conns = append(conns, slow{open(http.MethodPost, "/2015-03-31/functions/probe/invocations", root, 6<<20), "invoke"})
	}
	for range creates {
		conns = append(conns, slow{open(http.MethodPost, "/2015-03-31/functions", root, 70<<20), "CreateFunction"})
	}
	// Every handler is blocked reading its body: the moment the old code
	// had allocated the declared lengths.
	if !waitFor(5*time.Second, func() bool { return goroutinesIn(t, pprof, "lambdahttp.readBody") >= invokes+creates }) {
		t.Fatalf("only %d of %d slow requests reached the body read", goroutinesIn(t, pprof, "lambdahttp.readBody"), invokes+creates)
	}
	start := time.Now()
	after := heapInuseMB(t, pprof)
	t.Logf("HeapInuse %.0f MB before, %.0f MB with %d slow requests", before, after, invokes+creates)
	if after-before > 64 {
		t.Errorf("heap grew by %.0f MB for %d requests that sent one byte each (declared: %d MB)", after-before, invokes+creates, (invokes*6 + creates*70))
	}

	// Meanwhile a real invocation is served.
	status, _, body := httpInvoke(t, d, root, "probe", `{"action":"echo"}`)
	if status != http.StatusOK {
		t.Errorf("invoke during the attack: %d %s", status, body)
	}

	// Without a token, a declared body is refused before it is read.
	c := open(http.MethodPost, "/2015-03-31/functions/probe/invocations", "", 6<<20)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: got %v, %v; want 401 before any body", resp, err)
	}

	// The slow ones are cut off after the grace, each with its 408.
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for _, s := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.c.SetReadDeadline(time.Now().Add(40 * time.Second))
			key := s.kind + ": "
			if resp, err := http.ReadResponse(bufio.NewReader(s.c), nil); err != nil {
				key += err.Error()
			} else {
				key += resp.Status + " " + resp.Header.Get("X-Amzn-Errortype")
			}
			mu.Lock()
			got[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	want := map[string]int{
		"invoke: 408 Request Timeout RequestTimeoutException":         invokes,
		"CreateFunction: 408 Request Timeout RequestTimeoutException": creates,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slow requests ended as %v; want %v", got, want)
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("slow requests held for %v; the grace is 10 s", took)
	}
}

// attackBigHeaders is M7: headers are read before authentication, so an
// anonymous client could make the coordinator buffer 1 MB per connection.
// Now 64 KiB is the most; larger headers get 431.
func attackBigHeaders(t *testing.T, d *daemon) {
	c, err := net.Dial("tcp", d.http)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go fmt.Fprintf(c, "GET /2015-03-31/functions HTTP/1.1\r\nHost: gust\r\nX-Big: %s\r\n\r\n", strings.Repeat("x", 100<<10))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: got %v, %v; want 431", resp, err)
	}
	// Headers of a usual size still reach authentication.
	if status, _, _ := httpCall(t, http.MethodGet, "http://"+d.http+"/2015-03-31/functions", ""); status != http.StatusUnauthorized {
		t.Errorf("small headers, no token: %d, want 401", status)
	}
}

// attackDirectoryBomb is H4: zip entries whose paths imply thousands of
// directories no entry lists. The trial's shape (one entry 2,047 levels
// deep) was accepted and cost 8.7 s of worker CPU at the first invoke, and
// broke stem-cell cold starts (PATH_MAX). Now deploy refuses it, and
// refuses an archive whose implied directories pass the 20,000 limit; one
// at the path limits deploys and runs from a stem cell.
func attackDirectoryBomb(t *testing.T, d *daemon, root string) {
	probe, err := os.ReadFile(bin.probeDir + "/bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, entries ...zipEntry) string {
		t.Helper()
		p := filepath.Join(dir, name)
		all := append([]zipEntry{{name: "bootstrap", mode: 0o755, data: probe}}, entries...)
		if err := writeZip(p, all); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chain := func(prefix string, levels int) string { // levels elements, the last a file
		return prefix + strings.Repeat("a/", levels-2) + "f"
	}

	deep := write("deep.zip", zipEntry{name: "00000/" + strings.Repeat("a/", 2044) + "f", mode: 0o644})
	var many []zipEntry
	for i := range 313 { // 313 × 64 nodes: more than 20,000
		many = append(many, zipEntry{name: chain(fmt.Sprintf("%05d/", i), codezip.MaxDepth), mode: 0o644})
	}
	wide := write("wide.zip", many...)
	for _, tc := range []struct{ zip, want string }{
		{deep, "path is 4095 bytes long, more than the limit of 1024 bytes"},
		{wide, "more than the limit of 20000 files and directories"},
	} {
		r := d.gust(t, "--token", root, "fn", "deploy", "bomb", "--code", tc.zip)
		if r.code == 0 || !strings.Contains(r.stderr, "InvalidParameterValueException") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("deploy %s: want InvalidParameterValueException %q, got\n%s", filepath.Base(tc.zip), tc.want, r)
		}
		if len(r.stderr) > 1000 {
			t.Errorf("deploy %s: the error is %d bytes long", filepath.Base(tc.zip), len(r.stderr))
		}
	}

	// At the limits: a file 64 levels deep with a 1024-byte path (63
	// directories of 15 bytes and a slash, a name of 16), beside 20 chains
	// as deep (1,280 directories no entry lists).
	longest := strings.Repeat(strings.Repeat("d", 15)+"/", codezip.MaxDepth-1) + strings.Repeat("f", 16)
	if len(longest) != codezip.MaxPathLen {
		t.Fatalf("longest path is %d bytes", len(longest))
	}
	atLimit := []zipEntry{{name: longest, mode: 0o644, data: []byte("deep")}}
	for i := range 20 {
		atLimit = append(atLimit, zipEntry{name: chain(fmt.Sprintf("%02d/", i), codezip.MaxDepth), mode: 0o644})
	}
	d.mustGust(t, "--token", root, "fn", "deploy", "edge", "--code", write("edge.zip", atLimit...))
	args, _ := json.Marshal(map[string]any{"action": "files", "paths": []string{"/var/task/" + longest}})
	env := d.mustInvokeJSON(t, "edge", string(args), "--token", root)
	var report struct{ Read map[string]string }
	decode(t, env.Payload, &report)
	if got := report.Read["/var/task/"+longest]; got != "deep" {
		t.Errorf("the function reads %q from its deepest file, want \"deep\"", got)
	}
	if strings.Contains(d.stderr.String(), "creating a sandbox instead") {
		t.Errorf("a cold start fell back from the stem cell:\n%s", d.stderr.String())
	}
}

// readRootToken returns the root token gustd dev --auth wrote at first start.
func readRootToken(t *testing.T, d *daemon) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, "root.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// httpInvoke invokes name through the Lambda REST API.
func httpInvoke(t *testing.T, d *daemon, token, name, payload string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+d.http+"/2015-03-31/functions/"+name+"/invocations", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// heapInuseMB reads gustd's HeapInuse from its --pprof address.
func heapInuseMB(t *testing.T, pprof string) float64 {
	t.Helper()
	b := pprofText(t, pprof, "heap")
	m := regexp.MustCompile(`(?m)^# HeapInuse = (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no HeapInuse in the heap profile")
	}
	n, _ := strconv.ParseFloat(string(m[1]), 64)
	return n / (1 << 20)
}

// goroutinesIn counts gustd's goroutines with fn on their stack.
func goroutinesIn(t *testing.T, pprof, fn string) int {
	t.Helper()
	n := 0
	// debug=1 groups identical stacks: "N @ 0x…" then "#\t0x…\tfunc+0x…".
	count := regexp.MustCompile(`(?m)^(\d+) @ `)
	for _, group := range strings.Split(string(pprofText(t, pprof, "goroutine")), "\n\n") {
		m := count.FindStringSubmatch(group)
		if m == nil || !strings.Contains(group, "\tgithub.com/gustfaas/gust/coordinator/"+fn+"+") {
			continue
		}
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

func pprofText(t *testing.T, pprof, profile string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + pprof + "/debug/pprof/" + profile + "?debug=1")
	if err != nil {
		t.Fatalf("pprof %s: %v", profile, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("pprof %s: %v", profile, err)
	}
	return b
}
