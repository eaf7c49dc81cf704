package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gustfaas/gust/internal/testutil"
)

// The plain fork/exec reference runs the real aws-lambda-go bootstrap
// against the in-process Runtime API stub: it must get as far as its first
// answer (aws-lambda-go exits on any status code it does not expect).
func TestExecBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/hello")
	}
	boot := testutil.BuildStatic(t, "../examples/hello", filepath.Join(t.TempDir(), "bootstrap"))
	stub, err := startRuntimeStub([]byte(`{"name":"bench"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	for i := 0; i < 3; i++ {
		toNext, toAnswer, err := execBootstrap(context.Background(), stub, boot, bootstrapEnv(stub.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		if toNext <= 0 || toAnswer < toNext {
			t.Errorf("exec → /next %v, exec → answer %v", toNext, toAnswer)
		}
	}
	if _, err := execTrue(context.Background()); err != nil {
		t.Fatal(err)
	}
}
