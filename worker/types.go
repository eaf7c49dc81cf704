package worker

import (
	"context"
	"io"
)

// CodeSource hands out code zips by digest; the worker verifies them.
type CodeSource interface {
	OpenCode(ctx context.Context, digest string) (io.ReadCloser, error)
}
