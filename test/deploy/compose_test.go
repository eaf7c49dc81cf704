// Package deploy_test brings up deploy/docker-compose.yml — three
// coordinators and two workers, each a gustd container built FROM scratch —
// and checks what the compose file promises: the cluster forms, deploys and
// runs a function through the published ports, and keeps serving (reads,
// invokes and writes) after `kill c1`, the bootstrap coordinator and first
// Raft leader.
//
// It needs Docker and a compose tool, takes about ten seconds and the host
// ports 127.0.0.1:7070–7072 and 7080–7082, so it runs only when asked:
// `make deploy-test` (GUST_DEPLOY_TEST=1), and under CI=true (`make test`
// builds the binaries first). Asked, it fails rather than skips when Docker
// is not usable. GUST_COMPOSE picks the tool ("docker compose"
// or "docker-compose"); the default is the first that answers.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const repo = "../.."

var (
	composeFile = filepath.Join(repo, "deploy", "docker-compose.yml")
	gustBin     = filepath.Join(repo, "bin", "gust")
	helloDir    = filepath.Join(repo, "bin", "hello")
)

// Host ports the compose file publishes, c1 first.
var (
	grpcAddrs = []string{"127.0.0.1:7070", "127.0.0.1:7071", "127.0.0.1:7072"}
	httpAddrs = []string{"127.0.0.1:7080", "127.0.0.1:7081", "127.0.0.1:7082"}
)

// compose runs one compose tool against one project.
type compose struct {
	tool    []string // "docker compose" or "docker-compose"
	project string
}

func (c compose) cmd(args ...string) *exec.Cmd {
	full := append(append([]string{}, c.tool[1:]...), "-f", composeFile, "-p", c.project)
	return exec.Command(c.tool[0], append(full, args...)...)
}

func (c compose) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := c.cmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(c.tool, " "), strings.Join(args, " "), err, out)
	}
}

// findCompose returns the compose tool to use, or why there is none.
func findCompose() ([]string, error) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("docker is not usable: %v: %s", err, bytes.TrimSpace(out))
	}
	candidates := [][]string{{"docker", "compose"}, {"docker-compose"}}
	if v := os.Getenv("GUST_COMPOSE"); v != "" {
		candidates = [][]string{strings.Fields(v)}
	}
	for _, tool := range candidates {
		args := append(append([]string{}, tool[1:]...), "version")
		if exec.Command(tool[0], args...).Run() == nil {
			return tool, nil
		}
	}
	return nil, fmt.Errorf("no compose tool answers (tried %v)", candidates)
}

// gust runs the CLI against addrs and returns stdout, or an error with stderr.
func gust(addrs []string, args ...string) (string, error) {
	cmd := exec.Command(gustBin, append([]string{"--addr", strings.Join(addrs, ",")}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("gust %s: %v: %s%s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()), strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func gustJSON(addrs []string, v any, args ...string) error {
	out, err := gust(addrs, append([]string{"-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// poll calls cond every interval until it returns nil, and fails the test
// with cond's last error once within has passed. It returns the time taken.
func poll(t *testing.T, within, interval time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(interval)
	}
}

type nodeView struct{ Name, Role, Status, Address string }

type peerView struct {
	Name, Address, State string
	Voter                bool
}

type envelope struct {
	Worker        string          `json:"worker"`
	ColdStart     bool            `json:"cold_start"`
	FunctionError string          `json:"function_error"`
	Payload       json.RawMessage `json:"payload"`
}

// healthy checks that the coordinators at addrs see wantVoters Raft voters
// with one leader among them and every one of names alive in gossip.
func healthy(addrs []string, wantVoters int, names ...string) error {
	var peers []peerView
	if err := gustJSON(addrs, &peers, "raft", "peers"); err != nil {
		return err
	}
	voters, leaders := 0, 0
	for _, p := range peers {
		if p.Voter {
			voters++
		}
		if p.State == "leader" {
			leaders++
		}
	}
	if voters != wantVoters || leaders != 1 {
		return fmt.Errorf("raft peers: %d voters and %d leaders, want %d and 1: %+v", voters, leaders, wantVoters, peers)
	}
	var nodes []nodeView
	if err := gustJSON(addrs, &nodes, "nodes"); err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, n := range nodes {
		alive[n.Name] = n.Status == "alive"
	}
	for _, name := range names {
		if !alive[name] {
			return fmt.Errorf("nodes: %s not alive: %+v", name, nodes)
		}
	}
	return nil
}

func invoke(addrs []string, fn, name string) (envelope, error) {
	var e envelope
	if err := gustJSON(addrs, &e, "invoke", fn, "--payload", fmt.Sprintf(`{"name":%q}`, name)); err != nil {
		return e, err
	}
	if e.FunctionError != "" {
		return e, fmt.Errorf("function error %s: %s", e.FunctionError, e.Payload)
	}
	if want := "hello, " + name; !bytes.Contains(e.Payload, []byte(want)) {
		return e, fmt.Errorf("payload %s does not say %q", e.Payload, want)
	}
	return e, nil
}

func TestCompose(t *testing.T) {
	if os.Getenv("GUST_DEPLOY_TEST") != "1" && os.Getenv("CI") != "true" {
		t.Skip("starts a Docker Compose cluster: set GUST_DEPLOY_TEST=1 (make deploy-test); CI runs it")
	}
	tool, err := findCompose()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(repo, "bin", "gustd"), gustBin, filepath.Join(helloDir, "bootstrap")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: run `make build bin/hello/bootstrap` first (make deploy-test does)", err)
		}
	}
	for _, a := range append(append([]string{}, grpcAddrs...), httpAddrs...) {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Fatalf("%s is already in use (a cluster from `make cluster-up`? `make cluster-down` stops it)", a)
		}
	}
	c := compose{tool: tool, project: fmt.Sprintf("gustdeploytest%d", os.Getpid())}
	t.Logf("compose tool: %s, project %s", strings.Join(tool, " "), c.project)
	begin := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.cmd("logs", "--no-color", "--tail", "60").CombinedOutput()
			t.Logf("---- compose logs ----\n%s", out)
		}
		start := time.Now()
		if out, err := c.cmd("down", "-v", "--remove-orphans", "--timeout", "20").CombinedOutput(); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
		t.Logf("down -v: %.1fs; whole test %.1fs", time.Since(start).Seconds(), time.Since(begin).Seconds())
	})

	start := time.Now()
	c.run(t, "up", "-d", "--build")
	t.Logf("up -d --build: %.1fs", time.Since(start).Seconds())

	took := poll(t, 90*time.Second, 250*time.Millisecond, "3 raft voters and 5 alive nodes", func() error {
		return healthy(grpcAddrs, 3, "c1", "c2", "c3", "w1", "w2")
	})
	t.Logf("cluster formed %.1fs after up", took.Seconds())

	out, err := gust(grpcAddrs, "fn", "deploy", "hello", "--code", helloDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy: %s", strings.TrimSpace(out))

	// Each coordinator serves the invoke, c1 through its own port alone.
	for i, a := range grpcAddrs {
		var e envelope
		took := poll(t, 30*time.Second, 250*time.Millisecond, "invoke via "+a, func() (err error) {
			e, err = invoke([]string{a}, "hello", "compose")
			return err
		})
		t.Logf("invoke via c%d (%s): worker %s cold %v, %.0f ms", i+1, a, e.Worker, e.ColdStart, took.Seconds()*1000)
	}

	var before []peerView
	if err := gustJSON(grpcAddrs, &before, "raft", "peers"); err != nil {
		t.Fatal(err)
	}
	for _, p := range before {
		if p.State == "leader" {
			t.Logf("raft leader before kill c1: %s", p.Name)
		}
	}

	c.run(t, "kill", "c1")
	killed := time.Now()
	rest := grpcAddrs[1:]
	var e envelope
	took = poll(t, 30*time.Second, 100*time.Millisecond, "invoke through c2, c3 after kill c1", func() (err error) {
		e, err = invoke(rest, "hello", "after-kill")
		return err
	})
	t.Logf("invoke through c2,c3 after kill c1: ok in %.2fs (worker %s)", took.Seconds(), e.Worker)
	// The client's fail-over: c1's port now refuses, the others answer.
	if _, err := invoke(grpcAddrs, "hello", "failover"); err != nil {
		t.Fatalf("invoke with c1 listed first: %v", err)
	}
	// The Lambda REST API on a surviving coordinator's published HTTP port.
	poll(t, 30*time.Second, 250*time.Millisecond, "HTTP invoke via c2", func() error {
		resp, err := http.Post("http://"+httpAddrs[1]+"/2015-03-31/functions/hello/invocations", "application/json",
			strings.NewReader(`{"name":"http"}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("hello, http")) {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
		return nil
	})
	// c1 bootstrapped the cluster and is usually its leader: a write after
	// its death shows a new leader took over.
	poll(t, 30*time.Second, 250*time.Millisecond, "deploy after kill c1", func() error {
		_, err := gust(rest, "fn", "deploy", "hello2", "--code", helloDir)
		return err
	})
	t.Logf("deploy after kill c1: ok %.2fs after the kill", time.Since(killed).Seconds())
	poll(t, 30*time.Second, 250*time.Millisecond, "invoke hello2", func() error {
		_, err := invoke(rest, "hello2", "new-leader")
		return err
	})
	var peers []peerView
	if err := gustJSON(rest, &peers, "raft", "peers"); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.State == "leader" {
			t.Logf("raft leader after kill c1: %s", p.Name)
			if p.Name == "c1" {
				t.Fatalf("c1 still reported as leader: %+v", peers)
			}
		}
	}
}
