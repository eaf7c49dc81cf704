// Package codestore keeps code zips on disk, content-addressed by sha256.
// It validates every archive before storing it and never stores one twice.
// It knows nothing of functions; raftstore entries name digests it holds.
package codestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gustfaas/gust/internal/codezip"
)

// ErrNotFound means no code is stored under a digest.
var ErrNotFound = errors.New("code not found")

// Store is a directory of <digest>.zip files.
type Store struct {
	dir    string
	limits codezip.Limits
}

// Info describes stored code.
type Info struct {
	Digest       string
	Size         int64
	UnzippedSize int64
}

// Open prepares the directory and removes uploads a crash interrupted.
func Open(dir string, limits codezip.Limits) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("code store: %w", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".upload-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return &Store{dir: dir, limits: limits}, nil
}

// Put streams a zip in, refusing it (codezip.ErrInvalid, or ErrTooLarge
// past the zipped limit, read no further) before anything is stored.
func (s *Store) Put(r io.Reader) (Info, error) {
	f, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return Info{}, fmt.Errorf("code store: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.limits.MaxZipped+1))
	if err != nil {
		return Info{}, fmt.Errorf("receive code: %w", err)
	}
	if n > s.limits.MaxZipped {
		return Info{}, fmt.Errorf("%w: zipped code is over %d bytes", codezip.ErrTooLarge, s.limits.MaxZipped)
	}
	if err := codezip.Validate(f, n, s.limits); err != nil {
		return Info{}, err
	}
	unzipped, err := unzippedSize(f, n)
	if err != nil {
		return Info{}, err
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if err := f.Sync(); err != nil {
		return Info{}, fmt.Errorf("code store: %w", err)
	}
	if err := os.Rename(f.Name(), s.path(digest)); err != nil {
		return Info{}, fmt.Errorf("code store: %w", err)
	}
	return Info{Digest: digest, Size: n, UnzippedSize: unzipped}, nil
}

// Size returns the stored zip's size, or ErrNotFound.
func (s *Store) Size(digest string) (int64, error) {
	if !validDigest(digest) {
		return 0, fmt.Errorf("%w: %q", ErrNotFound, digest)
	}
	st, err := os.Stat(s.path(digest))
	if err != nil {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	return st.Size(), nil
}

// OpenCode opens stored code for reading.
func (s *Store) OpenCode(_ context.Context, digest string) (io.ReadCloser, error) {
	if !validDigest(digest) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, digest)
	}
	f, err := os.Open(s.path(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	return f, err
}

func (s *Store) path(digest string) string { return filepath.Join(s.dir, digest+".zip") }

func validDigest(d string) bool {
	if len(d) != 64 {
		return false
	}
	_, err := hex.DecodeString(d)
	return err == nil
}
