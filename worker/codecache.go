package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/gustfaas/gust/internal/codezip"
	"github.com/gustfaas/gust/worker/workerapi"
)

// codeCache unpacks code zips once per digest into dir/<digest>, verifying
// the sha256 before anything is extracted.
type codeCache struct {
	dir    string
	src    CodeSource
	limits codezip.Limits

	mu      sync.Mutex
	pending map[string]*sync.Mutex // one fetch per digest at a time
	// have lists the digests unpacked here; the pool state that placement
	// reads is built after every invocation, so it must not read the disk.
	// Replaced, never changed in place.
	have []string
}

func newCodeCache(dir string, src CodeSource) (*codeCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("code cache: %w", err)
	}
	// Leftover temporary files from a crash are of no use.
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	for _, t := range tmps {
		os.RemoveAll(t)
	}
	c := &codeCache{dir: dir, src: src, limits: codezip.DefaultLimits(), pending: map[string]*sync.Mutex{}}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && validDigest(e.Name()) {
			c.have = append(c.have, e.Name())
		}
	}
	return c, nil
}

// ensure returns the directory holding the digest's unpacked code.
func (c *codeCache) ensure(ctx context.Context, digest string) (string, error) {
	if !validDigest(digest) {
		return "", fmt.Errorf("%w: bad digest %q", workerapi.ErrCode, digest)
	}
	final := filepath.Join(c.dir, digest)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	c.mu.Lock()
	lock, ok := c.pending[digest]
	if !ok {
		lock = &sync.Mutex{}
		c.pending[digest] = lock
	}
	c.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := c.fetch(ctx, digest, final); err != nil {
		return "", fmt.Errorf("%w: %s: %w", workerapi.ErrCode, digest, err)
	}
	c.mu.Lock()
	c.have = append(c.have[:len(c.have):len(c.have)], digest)
	c.mu.Unlock()
	return final, nil
}

func (c *codeCache) fetch(ctx context.Context, digest, final string) error {
	rc, err := c.src.OpenCode(ctx, digest)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer rc.Close()
	zf, err := os.CreateTemp(c.dir, ".tmp-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(zf.Name())
	defer zf.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(zf, h), io.LimitReader(rc, c.limits.MaxZipped+1))
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("sha256 mismatch: got %s", got)
	}
	tmpDir, err := os.MkdirTemp(c.dir, ".tmp-*")
	if err != nil {
		return err
	}
	if err := codezip.Extract(ctx, zf, n, tmpDir, c.limits); err != nil {
		os.RemoveAll(tmpDir)
		return fmt.Errorf("extract: %w", err)
	}
	// The sandbox user must be able to read /var/task.
	if err := os.Chmod(tmpDir, 0o755); err != nil {
		os.RemoveAll(tmpDir)
		return err
	}
	if err := os.Rename(tmpDir, final); err != nil {
		os.RemoveAll(tmpDir)
		return err
	}
	return nil
}

func validDigest(d string) bool {
	if len(d) != 64 {
		return false
	}
	_, err := hex.DecodeString(d)
	return err == nil
}

// digests lists the code digests unpacked here; the caller must not
// modify the slice.
func (c *codeCache) digests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.have
}
