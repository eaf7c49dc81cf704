package flagconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

// Precedence is command line, then GUST_<FLAG>, then the config file; an
// unknown key in the file is an error.
func TestApplyPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("data-dir: /from/file\ngrpc: file:1\nhttp: file:2\njoin: [a:1, b:2]\n"), 0o644)
	t.Setenv("GUST_GRPC", "env:1")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	grpcAddr := fs.String("grpc", "", "")
	httpAddr := fs.String("http", "", "")
	join := fs.StringSlice("join", nil, "")
	if err := fs.Parse([]string{"--http", "flag:3"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs, file); err != nil {
		t.Fatal(err)
	}
	if *dataDir != "/from/file" || *grpcAddr != "env:1" || *httpAddr != "flag:3" || len(*join) != 2 {
		t.Fatalf("got data-dir=%s grpc=%s http=%s join=%v", *dataDir, *grpcAddr, *httpAddr, *join)
	}
	os.WriteFile(file, []byte("nmae: typo\n"), 0o644)
	if err := Apply(pflag.NewFlagSet("y", pflag.ContinueOnError), file); err == nil {
		t.Fatal("unknown key accepted")
	}
}
