package codezip

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// deepZip builds the "directory bomb" of the attack trial (mkdeep.py): a
// real bootstrap, then k empty files named NNNNN/ + "a/"×depth + "f", each
// implying depth+1 directories that no entry lists. (mkdeep.py also
// blanked the local headers' names to halve the size; archive/zip reads
// names from the central directory only, so that changes nothing here.)
func deepZip(t testing.TB, k, depth int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, mode fs.FileMode, body string) {
		hdr := &zip.FileHeader{Name: name, Method: zip.Store}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("bootstrap", 0o755, "#!/bin/sh\n")
	for i := range k {
		add(fmt.Sprintf("%05d/", i)+strings.Repeat("a/", depth)+"f", 0o644, "")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allocated returns how many bytes f allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDirectoryBomb is the trial's H4: 1000 entries 2046 levels deep
// (2 million directories that no entry lists) used to cost 2 s of CPU and
// 400 MB to validate and, for one such entry, 8.7 s of CPU to extract. Now
// the first over-long path is refused, with a message of reasonable size.
func TestDirectoryBomb(t *testing.T) {
	z := deepZip(t, 1000, 2044)
	var err error
	alloc := allocated(func() { err = Validate(bytes.NewReader(z), int64(len(z)), DefaultLimits()) })
	assertRefusal(t, "Validate", err, false, "path is 4095 bytes long, more than the limit of 1024 bytes")
	if len(err.Error()) > 300 {
		t.Errorf("message is %d bytes long; the entry name should be shortened: %s", len(err.Error()), err)
	}
	// archive/zip itself holds the 1001 headers (about 8 MB with their
	// names); the tree must not be built on top of that.
	if alloc > 32<<20 {
		t.Errorf("Validate allocated %d MB for an 8 MB archive it refuses", alloc>>20)
	}

	dir, check := sandbox(t)
	err = Extract(t.Context(), bytes.NewReader(z), int64(len(z)), dir, DefaultLimits())
	assertRefusal(t, "Extract", err, false, "more than the limit of 1024 bytes")
	check()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Extract wrote %d entries before refusing", len(ents))
	}
}

// TestPathBounds pins MaxPathLen and MaxDepth at their edges.
func TestPathBounds(t *testing.T) {
	deep := func(levels int) string { return strings.Repeat("d/", levels-1) + "f" }
	long := func(n int) string { // n bytes, elements of at most 255
		var b strings.Builder
		for b.Len() < n {
			if b.Len() > 0 {
				b.WriteByte('/')
			}
			b.WriteString(strings.Repeat("x", min(200, n-b.Len())))
		}
		return b.String()
	}
	if len(long(1024)) != 1024 || len(long(1025)) != 1025 {
		t.Fatal("long() is off")
	}
	tests := []struct {
		name string
		zip  []byte
		want string // "" means accepted
	}{
		{name: "64 levels", zip: buildZip(t, zent{name: deep(MaxDepth), body: "x"})},
		{name: "65 levels", zip: buildZip(t, zent{name: deep(MaxDepth + 1), body: "x"}), want: "path is 65 levels deep, more than the limit of 64 levels"},
		{name: "65 levels as a directory", zip: buildZip(t, zent{name: deep(MaxDepth+1) + "/", mode: fs.ModeDir | 0o755}), want: "65 levels deep"},
		{name: "1024 bytes", zip: buildZip(t, zent{name: long(1024), body: "x"})},
		{name: "1024 bytes and a slash", zip: buildZip(t, zent{name: long(1024) + "/", mode: fs.ModeDir | 0o755})},
		{name: "1025 bytes", zip: buildZip(t, zent{name: long(1025), body: "x"}), want: "path is 1025 bytes long, more than the limit of 1024 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(bytes.NewReader(tc.zip), int64(len(tc.zip)), DefaultLimits())
			dir, check := sandbox(t)
			xerr := Extract(t.Context(), bytes.NewReader(tc.zip), int64(len(tc.zip)), dir, DefaultLimits())
			check()
			if tc.want != "" {
				assertRefusal(t, "Validate", err, false, tc.want)
				assertRefusal(t, "Extract", xerr, false, tc.want)
				return
			}
			if err != nil || xerr != nil {
				t.Fatalf("Validate = %v, Extract = %v; want both to accept", err, xerr)
			}
			checkTreeSafe(t, dir)
		})
	}
}

// TestImpliedDirectoriesCount checks that parent directories no entry lists
// count against MaxFiles, with small limits and with the defaults.
func TestImpliedDirectoriesCount(t *testing.T) {
	// 9 directories and a file: 10 nodes.
	ten := buildZip(t, zent{name: "a/b/c/d/e/f/g/h/i/file", body: "x"})
	eleven := buildZip(t, zent{name: "a/b/c/d/e/f/g/h/i/j/file", body: "x"})
	lim := Limits{MaxFiles: 10}
	if err := Validate(bytes.NewReader(ten), int64(len(ten)), lim); err != nil {
		t.Errorf("10 nodes with MaxFiles 10: %v", err)
	}
	err := Validate(bytes.NewReader(eleven), int64(len(eleven)), lim)
	assertRefusal(t, "Validate", err, false, `more than the limit of 10 files and directories (counting the parent directories its paths imply, such as "a/b/c/d/e/f/g/h/i/j")`)
	dir, check := sandbox(t)
	err = Extract(t.Context(), bytes.NewReader(eleven), int64(len(eleven)), dir, lim)
	assertRefusal(t, "Extract", err, false, "more than the limit of 10 files and directories")
	check()

	// With the defaults: chains as deep as allowed, each entry implying 63
	// directories. 312 chains (19,969 nodes with the bootstrap) fit; 313
	// do not, and are refused without building a tree of millions.
	fits, over := deepZip(t, 312, MaxDepth-2), deepZip(t, 313, MaxDepth-2)
	if err := Validate(bytes.NewReader(fits), int64(len(fits)), DefaultLimits()); err != nil {
		t.Errorf("312 chains of %d levels: %v", MaxDepth, err)
	}
	alloc := allocated(func() { err = Validate(bytes.NewReader(over), int64(len(over)), DefaultLimits()) })
	assertRefusal(t, "Validate", err, false, "more than the limit of 20000 files and directories")
	if alloc > 16<<20 {
		t.Errorf("Validate allocated %d MB to refuse a %d KB archive", alloc>>20, len(over)>>10)
	}
}

// TestExtractDeepTree extracts a tree at the depth limit, with siblings
// whose names sort between a directory and its contents ("a-b" and "a.c"
// come before "a/" byte-wise), and checks every node and mode.
func TestExtractDeepTree(t *testing.T) {
	chain := strings.Repeat("a/", MaxDepth-1) + "f"
	z := buildZip(t,
		zent{name: chain, body: "deep", mode: 0o700},
		zent{name: "a-b/y", body: "y"},
		zent{name: "a.c", body: "c"},
		zent{name: "a/b/z", body: "z"},
		zent{name: "a/b/", mode: fs.ModeDir | 0o700},
		zent{name: "a/l", mode: fs.ModeSymlink | 0o777, body: "b/z"},
		zent{name: "a0/", mode: fs.ModeDir | 0o700},
	)
	dir, check := sandbox(t)
	if err := Extract(t.Context(), bytes.NewReader(z), int64(len(z)), dir, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	check()
	checkTreeSafe(t, dir)
	for p, want := range map[string]string{chain: "deep", "a-b/y": "y", "a.c": "c", "a/b/z": "z", "a/l": "z"} {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, chain)); err != nil || info.Mode() != 0o755 {
		t.Errorf("deep file: %v, %v; want mode 0755", info, err)
	}
	if info, err := os.Stat(filepath.Join(dir, "a0")); err != nil || !info.IsDir() {
		t.Errorf("a0: %v, %v; want a directory", info, err)
	}
}

// TestComparePathsDepthFirst: each directory is followed by its contents.
func TestComparePathsDepthFirst(t *testing.T) {
	got := []string{"b", "a.c", "a/b/c", "a-b", "a/b", "a", "a/b-c", "a/b/c/d"}
	slices.SortFunc(got, comparePaths)
	want := []string{"a", "a/b", "a/b/c", "a/b/c/d", "a/b-c", "a-b", "a.c", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

// TestExtractCancelled checks that a cancelled context stops Extract before
// it writes anything, with an error that is not a refusal of the archive.
func TestExtractCancelled(t *testing.T) {
	z := deepZip(t, 10, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir, check := sandbox(t)
	err := Extract(ctx, bytes.NewReader(z), int64(len(z)), dir, DefaultLimits())
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrInvalid) {
		t.Fatalf("Extract with a cancelled context = %v; want context.Canceled, not ErrInvalid", err)
	}
	check()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Extract wrote %d entries after its context was cancelled", len(ents))
	}
}
