package proccluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust/internal/testutil"
)

// Function is a Lambda function a test package deploys, built once for
// all its tests.
type Function struct {
	// Out is the binary's path under the binaries' directory, e.g.
	// "fn/bootstrap"; its directory is what `gust fn deploy --code` takes.
	Out string
	// Pkg is the function's Go main package, relative to the module's root.
	Pkg string
}

// Binaries is a directory that Build filled: gustd, gust and the
// functions, each under its name there.
type Binaries struct{ Dir string }

// Path is the path of rel ("gustd", "gust", a Function's Out) in b.
func (b Binaries) Path(rel string) string { return filepath.Join(b.Dir, rel) }

// Build builds into dir gustd (as make build does), the gust CLI, and fns
// as Lambda `provided` bootstraps. root is the module's directory.
func Build(root, dir string, fns ...Function) error {
	if err := testutil.BuildGustd(root, filepath.Join(dir, "gustd")); err != nil {
		return err
	}
	builds := []struct{ out, pkg, tags string }{{"gust", "./cmd/gust", ""}}
	for _, f := range fns {
		builds = append(builds, struct{ out, pkg, tags string }{f.Out, f.Pkg, "lambda.norpc"})
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-tags", b.tags, "-trimpath", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		// Static without cgo: the CLI as make build makes it, and functions
		// as Lambda's provided runtime runs them.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// Main is the body of a TestMain whose tests start gustd processes: it
// builds the binaries and fns into a temporary directory, sets *bins to
// it, runs the tests, and removes the directory. Its result is the exit
// code for os.Exit.
func Main(m *testing.M, bins *Binaries, fns ...Function) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "gust-proccluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(root, dir, fns...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bins.Dir = dir
	return m.Run()
}

// moduleRoot is the directory of the go.mod of the test's working
// directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}
