//go:build unix

package codezip

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestExtractIgnoresUmask: workers may run with a restrictive umask, but the
// sandbox uid (neither owner nor group) must still read the tree, so modes
// must not depend on it. Not parallel: the umask is process-wide, and serial
// tests never overlap parallel ones.
func TestExtractIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	z := buildZip(t,
		zent{name: "a/b/run", mode: 0o755, body: "#!/bin/sh"},
		zent{name: "a/data", mode: 0o644, body: "d"},
		zent{name: "c/"})
	dir, check := sandbox(t)
	if err := Extract(t.Context(), bytes.NewReader(z), int64(len(z)), dir, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	check()
	checkTreeSafe(t, dir)
	for p, want := range map[string]fs.FileMode{
		".": fs.ModeDir | 0o755, "a": fs.ModeDir | 0o755, "a/b": fs.ModeDir | 0o755,
		"c": fs.ModeDir | 0o755, "a/b/run": 0o755, "a/data": 0o644,
	} {
		info, err := os.Lstat(filepath.Join(dir, p))
		if err != nil || info.Mode() != want {
			t.Errorf("%s: mode %v (err %v), want %v", p, info.Mode(), err, want)
		}
	}
}

// TestZipDirRefusesFifo: special files cannot be represented safely, so the
// CLI must refuse them rather than silently skip them.
func TestZipDirRefusesFifo(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	err := ZipDir(dir, &bytes.Buffer{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("named pipe")) {
		t.Errorf("ZipDir with a fifo = %v; want an error naming the named pipe", err)
	}
}
