package codezip

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// makeTree creates files from a spec: "path" -> content for files (mode in
// modes, default 0644), "path/" for empty dirs, and links for symlinks.
func makeTree(t *testing.T, dir string, files map[string]string, modes map[string]fs.FileMode, links map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := modes[p]
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile's mode is subject to the umask; force the exact bits.
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
}

func zipDirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ZipDir(dir, &buf); err != nil {
		t.Fatalf("ZipDir: %v", err)
	}
	return buf.Bytes()
}

// TestRoundTrip covers the CLI → coordinator → worker path: ZipDir output is
// deterministic, passes Validate, and Extract reproduces the tree with
// normalised modes and working in-tree symlinks.
func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{
		"hello.txt":          "hello\n",
		"bin/run":            "#!/bin/sh\necho hi\n",
		"secret.txt":         "owner-only",
		"group-exec":         "x",
		"setuid-bin":         "s",
		"sub/deep/file.js":   "module.exports = 1\n",
		"empty/":             "",
		"weird name ü.txt":   "unicode",
		"big.bin":            strings.Repeat("abcdefghij", 100000),
		"sub/deep/emptyfile": "",
	}
	modes := map[string]fs.FileMode{
		"bin/run":    0o755,
		"secret.txt": 0o600,
		"group-exec": 0o710,
		"setuid-bin": 0o755 | fs.ModeSetuid,
	}
	links := map[string]string{
		"link":        "sub/deep/file.js",
		"dirlink":     "sub",
		"sub/up":      "../hello.txt",
		"sub/dangles": "nothing/here",
		"viadir":      "dirlink/deep/file.js",
	}
	makeTree(t, src, files, modes, links)
	// os.Chmod cannot set setuid through the os.FileMode bits portably;
	// it does on Linux, which is what matters here.
	if err := os.Chmod(filepath.Join(src, "setuid-bin"), 0o755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}

	first := zipDirBytes(t, src)
	second := zipDirBytes(t, src)
	if !bytes.Equal(first, second) {
		t.Fatal("two ZipDir runs over the same tree gave different bytes")
	}
	// Timestamps must not leak into the archive.
	later := time.Now().Add(48 * time.Hour)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			os.Chtimes(p, later, later)
		}
		return nil
	})
	if third := zipDirBytes(t, src); !bytes.Equal(first, third) {
		t.Fatal("ZipDir output changed after touching the files' mtimes")
	}

	d1, n1, err := Digest(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(first)
	if want := hex.EncodeToString(sum[:]); d1 != want || n1 != int64(len(first)) {
		t.Fatalf("Digest = %s, %d; want %s, %d", d1, n1, want, len(first))
	}

	// Every non-directory entry must be Deflate except symlinks, and names
	// must use forward slashes without a leading "./".
	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, "./") || strings.Contains(f.Name, "\\") {
			t.Errorf("bad entry name %q", f.Name)
		}
		if f.Mode().IsRegular() && f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want Deflate", f.Name, f.Method)
		}
		// Same-second reruns hide a wall-clock timestamp, so pin it.
		if !f.Modified.Equal(fixedModTime) {
			t.Errorf("%s: modified %v, want the fixed %v", f.Name, f.Modified, fixedModTime)
		}
	}

	if err := Validate(bytes.NewReader(first), int64(len(first)), DefaultLimits()); err != nil {
		t.Fatalf("Validate(ZipDir output): %v", err)
	}
	dst, check := sandbox(t)
	if err := os.Chmod(dst, 0o700); err != nil { // like os.MkdirTemp
		t.Fatal(err)
	}
	if err := Extract(t.Context(), bytes.NewReader(first), int64(len(first)), dst, DefaultLimits()); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	check()
	checkTreeSafe(t, dst)

	wantMode := map[string]fs.FileMode{
		"hello.txt": 0o644, "bin/run": 0o755, "secret.txt": 0o644,
		"group-exec": 0o755, "setuid-bin": 0o755, "sub/deep/file.js": 0o644,
		"weird name ü.txt": 0o644, "big.bin": 0o644, "sub/deep/emptyfile": 0o644,
	}
	for p, content := range files {
		full := filepath.Join(dst, filepath.FromSlash(p))
		info, err := os.Lstat(full)
		if err != nil {
			t.Errorf("%s missing after extract: %v", p, err)
			continue
		}
		if strings.HasSuffix(p, "/") {
			if !info.IsDir() || info.Mode().Perm() != 0o755 {
				t.Errorf("%s: mode %v, want dir 0755", p, info.Mode())
			}
			continue
		}
		if info.Mode() != wantMode[p] {
			t.Errorf("%s: mode %v, want %v", p, info.Mode(), wantMode[p])
		}
		got, err := os.ReadFile(full)
		if err != nil || string(got) != content {
			t.Errorf("%s: content mismatch (err %v)", p, err)
		}
	}
	for p, target := range links {
		got, err := os.Readlink(filepath.Join(dst, filepath.FromSlash(p)))
		if err != nil || got != target {
			t.Errorf("symlink %s -> %q (err %v), want -> %q", p, got, err, target)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dst, "link")); err != nil || string(got) != files["sub/deep/file.js"] {
		t.Errorf("reading through in-tree symlink: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "viadir")); err != nil || string(got) != files["sub/deep/file.js"] {
		t.Errorf("reading through chained symlinks: %q, %v", got, err)
	}
	if info, err := os.Stat(dst); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("extraction root mode %v (err %v), want 0755 so the sandbox uid can enter it", info.Mode(), err)
	}

	// The extracted tree zips back to the same bytes: nothing was lost.
	if again := zipDirBytes(t, dst); !bytes.Equal(first, again) {
		t.Error("ZipDir(Extract(ZipDir(tree))) differs from ZipDir(tree)")
	}
}

// TestRefusals is the table of hostile or broken archives. Each must be
// refused by Validate and by Extract with ErrInvalid and a message naming
// the problem, and Extract must not write outside its directory.
func TestRefusals(t *testing.T) {
	small := Limits{MaxZipped: 1 << 20, MaxUnzipped: 1000, MaxFiles: 5}
	corrupt := buildZip(t, zent{name: "f", body: "hello world", method: methodStore})
	corrupt[bytes.Index(corrupt, []byte("hello world"))] ^= 0xff

	tests := []struct {
		name     string
		zip      []byte
		lim      Limits
		tooLarge bool
		want     string // substring of the message
	}{
		{name: "zip slip", zip: buildZip(t, zent{name: "../../etc/x", body: "pwn"}), want: `"../../etc/x": path escapes the archive root`},
		{name: "inner dotdot", zip: buildZip(t, zent{name: "a/../../x", body: "pwn"}), want: "path escapes the archive root"},
		{name: "dotdot dir", zip: buildZip(t, zent{name: "../", mode: fs.ModeDir | 0o755}), want: "path escapes the archive root"},
		{name: "absolute", zip: buildZip(t, zent{name: "/etc/x", body: "pwn"}), want: "absolute path"},
		{name: "backslash", zip: buildZip(t, zent{name: `..\..\x`, body: "pwn"}), want: "backslash"},
		{name: "backslash benign", zip: buildZip(t, zent{name: `dir\file`, body: "x"}), want: "backslash"},
		{name: "nul", zip: buildZip(t, zent{name: "a\x00b", body: "x"}), want: "NUL"},
		{name: "empty name", zip: buildZip(t, zent{name: "", body: "x"}), want: "empty name"},
		{name: "dot", zip: buildZip(t, zent{name: ".", body: "x"}), want: "archive root itself"},
		{name: "dot dir", zip: buildZip(t, zent{name: "./", mode: fs.ModeDir | 0o755}), want: "archive root itself"},
		{name: "double slash", zip: buildZip(t, zent{name: "a//b", body: "x"}), want: "not a clean relative path"},
		{name: "dot element", zip: buildZip(t, zent{name: "./a", body: "x"}), want: "not a clean relative path"},
		{name: "long element", zip: buildZip(t, zent{name: strings.Repeat("a", 256), body: "x"}), want: "longer than 255 bytes"},
		{name: "symlink absolute", zip: buildZip(t, zent{name: "shadow", mode: fs.ModeSymlink | 0o777, body: "/etc/shadow"}), want: `"/etc/shadow" is absolute`},
		{name: "symlink up", zip: buildZip(t, zent{name: "up", mode: fs.ModeSymlink | 0o777, body: "../x"}), want: "escapes the archive root"},
		{name: "symlink up nested", zip: buildZip(t, zent{name: "d/l", mode: fs.ModeSymlink | 0o777, body: "../../x"}), want: "escapes the archive root"},
		{name: "symlink then write through it", zip: buildZip(t,
			zent{name: "a", mode: fs.ModeSymlink | 0o777, body: ".."},
			zent{name: "a/escape", body: "pwn"}), want: `"a/escape": path goes through symlink "a"`},
		{name: "write through symlink listed first", zip: buildZip(t,
			zent{name: "a/escape", body: "pwn"},
			zent{name: "a", mode: fs.ModeSymlink | 0o777, body: ".."}), want: `path goes through symlink "a"`},
		{name: "write through in-tree symlink", zip: buildZip(t,
			zent{name: "sub/", mode: fs.ModeDir | 0o755},
			zent{name: "a", mode: fs.ModeSymlink | 0o777, body: "sub"},
			zent{name: "a/x", body: "x"}), want: `path goes through symlink "a"`},
		{name: "symlink chain escape", zip: buildZip(t,
			zent{name: "s", mode: fs.ModeSymlink | 0o777, body: "."},
			zent{name: "t", mode: fs.ModeSymlink | 0o777, body: "s/.."}), want: `"s/.." escapes the archive root`},
		{name: "symlink chain escape via deeper link", zip: buildZip(t,
			zent{name: "d/e/f", body: "x"},
			zent{name: "d/s", mode: fs.ModeSymlink | 0o777, body: ".."},
			zent{name: "d/t", mode: fs.ModeSymlink | 0o777, body: "s/../x"}), want: "escapes the archive root"},
		{name: "symlink loop", zip: buildZip(t,
			zent{name: "a", mode: fs.ModeSymlink | 0o777, body: "b"},
			zent{name: "b", mode: fs.ModeSymlink | 0o777, body: "a"}), want: "too many levels of symbolic links"},
		{name: "symlink empty target", zip: buildZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: ""}), want: "empty target"},
		{name: "symlink target too long", zip: buildZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: strings.Repeat("a/", 2100)}), lim: Limits{MaxUnzipped: 1 << 20}, want: "longer than 4095 bytes"},
		{name: "symlink with dir name", zip: buildZip(t, zent{name: "l/", mode: fs.ModeSymlink | 0o777}), want: "unsupported file type"},
		{name: "duplicate file", zip: buildZip(t, zent{name: "f", body: "1"}, zent{name: "f", body: "2"}), want: `duplicate entry for path "f"`},
		{name: "duplicate dir and file", zip: buildZip(t, zent{name: "d/", mode: fs.ModeDir | 0o755}, zent{name: "d", body: "2"}), want: "duplicate entry"},
		{name: "duplicate dir", zip: buildZip(t, zent{name: "d/", mode: fs.ModeDir | 0o755}, zent{name: "d/", mode: fs.ModeDir | 0o755}), want: "duplicate entry"},
		{name: "duplicate symlink over file", zip: buildZip(t, zent{name: "f", body: "1"}, zent{name: "f", mode: fs.ModeSymlink | 0o777, body: "g"}), want: "duplicate entry"},
		{name: "file as parent", zip: buildZip(t, zent{name: "f", body: "1"}, zent{name: "f/g", body: "2"}), want: `parent "f" is a regular file`},
		{name: "encrypted", zip: buildZip(t, zent{name: "f", body: "x", flags: 0x1}), want: "encrypted"},
		{name: "unsupported method", zip: buildZip(t, zent{name: "f", body: "x", method: 12}), want: "unsupported compression method 12"},
		{name: "fifo", zip: buildZip(t, zent{name: "p", mode: fs.ModeNamedPipe | 0o644}), want: "named pipe"},
		{name: "char device", zip: buildZip(t, zent{name: "null", mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}), want: "character device"},
		{name: "block device", zip: buildZip(t, zent{name: "sda", mode: fs.ModeDevice | 0o660}), want: "block device"},
		{name: "socket", zip: buildZip(t, zent{name: "s", mode: fs.ModeSocket | 0o644}), want: "socket"},
		{name: "not a zip", zip: []byte("this is not a zip file, just text"), want: "not a valid zip file"},
		{name: "nothing at all", zip: nil, want: "not a valid zip file"},
		{name: "empty zip", zip: buildZip(t), want: "no entries"},
		{name: "too many files", zip: buildZip(t,
			zent{name: "1"}, zent{name: "2"}, zent{name: "3"}, zent{name: "4"}, zent{name: "5"}, zent{name: "6"}),
			lim: small, want: "more than the limit of 5 entries"},
		{name: "zipped size over limit", zip: buildZip(t, zent{name: "f", body: strings.Repeat("x", 100)}), lim: Limits{MaxZipped: 100}, tooLarge: true, want: "zipped size"},
		{name: "unzipped one over limit", zip: buildZip(t, zent{name: "f", body: strings.Repeat("x", 1001)}), lim: small, tooLarge: true, want: "unzipped size exceeds the limit of 1000 bytes"},
		{name: "unzipped over limit across entries", zip: buildZip(t,
			zent{name: "a", body: strings.Repeat("x", 400)},
			zent{name: "b", body: strings.Repeat("x", 400)},
			zent{name: "c", body: strings.Repeat("x", 400)}), lim: small, tooLarge: true, want: "unzipped size"},
		{name: "symlink bodies count too", zip: buildZip(t,
			zent{name: "a", body: strings.Repeat("x", 999)},
			zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "a"},
			zent{name: "m", mode: fs.ModeSymlink | 0o777, body: "a"}), lim: small, tooLarge: true, want: "unzipped size"},
		{name: "corrupt data", zip: corrupt, want: `entry "f": corrupt entry data`},
		{name: "directory with content", zip: buildZip(t, zent{name: "d", mode: fs.ModeDir | 0o755, body: "data"}), want: `"d": directory entry has content`},
		{name: "lying header", zip: lyingHeaderZip(t, 10, 1<<20), want: "corrupt entry data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			err := Validate(bytes.NewReader(tc.zip), int64(len(tc.zip)), lim)
			assertRefusal(t, "Validate", err, tc.tooLarge, tc.want)

			dir, check := sandbox(t)
			err = Extract(t.Context(), bytes.NewReader(tc.zip), int64(len(tc.zip)), dir, lim)
			assertRefusal(t, "Extract", err, tc.tooLarge, tc.want)
			check()
			checkTreeSafe(t, dir)
		})
	}
}

func assertRefusal(t *testing.T, op string, err error, tooLarge bool, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s accepted the archive; want refusal containing %q", op, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%s error %q does not wrap ErrInvalid", op, err)
	}
	if got := errors.Is(err, ErrTooLarge); got != tooLarge {
		t.Errorf("%s error %q: errors.Is(ErrTooLarge) = %v, want %v", op, err, got, tooLarge)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s error %q does not mention %q", op, err, want)
	}
}

// lyingHeaderZip returns a zip whose single entry claims an uncompressed
// size of claimed bytes but really inflates to real bytes.
func lyingHeaderZip(t *testing.T, claimed uint64, real int) []byte {
	t.Helper()
	var body bytes.Buffer
	var raw bytes.Buffer
	zw := zip.NewWriter(&raw)
	w, _ := zw.Create("x")
	w.Write(make([]byte, real))
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(raw.Bytes()), int64(raw.Len()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.File[0].OpenRaw()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(&body, rc)

	var out bytes.Buffer
	zw = zip.NewWriter(&out)
	hdr := &zip.FileHeader{Name: "x", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(make([]byte, claimed)),
		CompressedSize64: uint64(body.Len()), UncompressedSize64: claimed}
	hdr.SetMode(0o644)
	rw, err := zw.CreateRaw(hdr)
	if err != nil {
		t.Fatal(err)
	}
	rw.Write(body.Bytes())
	zw.Close()
	return out.Bytes()
}

// TestAccepted lists unusual but legitimate archives that must extract.
func TestAccepted(t *testing.T) {
	small := Limits{MaxZipped: 1 << 20, MaxUnzipped: 1000, MaxFiles: 5}
	tests := []struct {
		name  string
		zip   []byte
		lim   Limits
		files map[string]string      // path -> content
		modes map[string]fs.FileMode // path -> exact mode (Lstat)
		links map[string]string      // path -> target
	}{
		{
			name:  "missing parent dir entries",
			zip:   buildZip(t, zent{name: "a/b/c.txt", body: "c"}),
			files: map[string]string{"a/b/c.txt": "c"},
			modes: map[string]fs.FileMode{"a": fs.ModeDir | 0o755, "a/b": fs.ModeDir | 0o755, "a/b/c.txt": 0o644},
		},
		{
			name: "dir entries after their contents",
			zip: buildZip(t, zent{name: "a/b/c.txt", body: "c"},
				zent{name: "a/", mode: fs.ModeDir | 0o700}, zent{name: "a/b/", mode: fs.ModeDir | 0o700}),
			files: map[string]string{"a/b/c.txt": "c"},
			modes: map[string]fs.FileMode{"a": fs.ModeDir | 0o755, "a/b": fs.ModeDir | 0o755},
		},
		{
			name: "special bits dropped",
			zip: buildZip(t, zent{name: "suid", mode: fs.ModeSetuid | fs.ModeSetgid | 0o4755, body: "s"},
				zent{name: "sticky/", mode: fs.ModeDir | fs.ModeSticky | 0o777}, zent{name: "ww", mode: 0o666, body: "w"}),
			modes: map[string]fs.FileMode{"suid": 0o755, "sticky": fs.ModeDir | 0o755, "ww": 0o644},
		},
		{
			name: "any exec bit makes 0755",
			zip: buildZip(t, zent{name: "o", mode: 0o601, body: "o"}, zent{name: "g", mode: 0o610, body: "g"},
				zent{name: "u", mode: 0o700, body: "u"}, zent{name: "none", mode: 0o600, body: "n"}),
			modes: map[string]fs.FileMode{"o": 0o755, "g": 0o755, "u": 0o755, "none": 0o644},
		},
		{
			name: "no unix mode (windows tools)",
			zip: buildZip(t, zent{name: "f.txt", body: "f", noMode: true},
				zent{name: "d/", noMode: true}),
			files: map[string]string{"f.txt": "f"},
			modes: map[string]fs.FileMode{"f.txt": 0o644, "d": fs.ModeDir | 0o755},
		},
		{
			name:  "stored entries",
			zip:   buildZip(t, zent{name: "s", body: "stored", method: methodStore}),
			files: map[string]string{"s": "stored"},
		},
		{
			name: "symlink chain inside",
			zip: buildZip(t, zent{name: "sub/deeper/f", body: "F"},
				zent{name: "s", mode: fs.ModeSymlink | 0o777, body: "sub/deeper"},
				zent{name: "t", mode: fs.ModeSymlink | 0o777, body: "s/../deeper/f"},
				zent{name: "d/l", mode: fs.ModeSymlink | 0o777, body: "../sub/./deeper/f"},
				zent{name: "root", mode: fs.ModeSymlink | 0o777, body: "."}),
			files: map[string]string{"t": "F", "d/l": "F", "s/f": "F", "root/sub/deeper/f": "F"},
			links: map[string]string{"s": "sub/deeper", "t": "s/../deeper/f", "d/l": "../sub/./deeper/f", "root": "."},
		},
		{
			name:  "dangling symlink inside",
			zip:   buildZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "not/there"}),
			links: map[string]string{"l": "not/there"},
		},
		{
			name: "exactly at the limits",
			zip: buildZip(t, zent{name: "a", body: strings.Repeat("x", 500)}, zent{name: "b", body: strings.Repeat("y", 500)},
				zent{name: "c/"}, zent{name: "c/d", body: ""}, zent{name: "e", body: ""}),
			lim:   small,
			files: map[string]string{"a": strings.Repeat("x", 500), "b": strings.Repeat("y", 500)},
		},
		{
			name:  "zero limits mean defaults",
			zip:   buildZip(t, zent{name: "f", body: strings.Repeat("z", 5000)}),
			lim:   Limits{},
			files: map[string]string{"f": strings.Repeat("z", 5000)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(bytes.NewReader(tc.zip), int64(len(tc.zip)), tc.lim); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			dir, check := sandbox(t)
			if err := Extract(t.Context(), bytes.NewReader(tc.zip), int64(len(tc.zip)), dir, tc.lim); err != nil {
				t.Fatalf("Extract: %v", err)
			}
			check()
			checkTreeSafe(t, dir)
			for p, want := range tc.files {
				got, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil || string(got) != want {
					t.Errorf("%s: got %q, %v; want %q", p, got, err, want)
				}
			}
			for p, want := range tc.modes {
				info, err := os.Lstat(filepath.Join(dir, p))
				if err != nil || info.Mode() != want {
					t.Errorf("%s: mode %v (err %v), want %v", p, info.Mode(), err, want)
				}
			}
			for p, want := range tc.links {
				got, err := os.Readlink(filepath.Join(dir, p))
				if err != nil || got != want {
					t.Errorf("%s -> %q (err %v), want %q", p, got, err, want)
				}
			}
		})
	}
}

// TestZipBombStopsEarly builds one entry of 300 MiB of zeros (~300 KiB
// compressed) and checks that with a 10 MiB limit Validate refuses it after
// reading only a small prefix of the compressed data, i.e. it stopped
// decompressing at the limit rather than after the whole stream.
func TestZipBombStopsEarly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	writeZeroBomb(t, &buf, "zeros", 300)
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes, expected < 1 MiB", buf.Len())
	}
	lim := Limits{MaxUnzipped: 10 << 20}
	cr := &countingReaderAt{r: bytes.NewReader(buf.Bytes())}
	err := Validate(cr, int64(buf.Len()), lim)
	assertRefusal(t, "Validate", err, true, "unzipped size exceeds the limit of 10485760 bytes (10 MiB)")
	// 10 MiB of zeros is ~1/30 of the stream; allow generous slack for
	// directory reads and buffering, but far less than the whole stream.
	if got := cr.n.Load(); got > int64(buf.Len())/4 {
		t.Errorf("Validate read %d of %d compressed bytes: it kept decompressing past the limit", got, buf.Len())
	}

	dir, check := sandbox(t)
	err = Extract(t.Context(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), dir, lim)
	assertRefusal(t, "Extract", err, true, "unzipped size")
	check()
	var written int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				written += info.Size()
			}
		}
		return nil
	})
	if written > lim.MaxUnzipped+64<<10 {
		t.Errorf("Extract wrote %d bytes, more than the %d limit", written, lim.MaxUnzipped)
	}
}

// TestZipBombDefaults uses the real default limits: a 600 MiB entry of
// zeros streamed into the zip (never held in memory) must be refused as too
// large. The boundary itself is covered with small limits in TestAccepted
// and TestRefusals; here we pin the default values.
func TestZipBombDefaults(t *testing.T) {
	t.Parallel()
	if got, want := DefaultLimits(), (Limits{MaxZipped: 50 << 20, MaxUnzipped: 250 << 20, MaxFiles: 20000}); got != want {
		t.Fatalf("DefaultLimits() = %+v, want %+v", got, want)
	}
	if testing.Short() {
		t.Skip("decompresses 250 MiB")
	}
	var buf bytes.Buffer
	writeZeroBomb(t, &buf, "zeros", 600)
	cr := &countingReaderAt{r: bytes.NewReader(buf.Bytes())}
	err := Validate(cr, int64(buf.Len()), DefaultLimits())
	assertRefusal(t, "Validate", err, true, "unzipped size exceeds the limit of 262144000 bytes (250 MiB)")
	// 250 of 600 MiB is ~42% of the stream.
	if got := cr.n.Load(); got > int64(buf.Len())/2 {
		t.Errorf("Validate read %d of %d compressed bytes: it kept decompressing past the limit", got, buf.Len())
	}
}

// TestTooManyFilesDefaults checks the default entry limit, including the
// pre-scan that refuses before archive/zip allocates every header.
func TestTooManyFilesDefaults(t *testing.T) {
	t.Parallel()
	build := func(n int) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i := range n {
			hdr := &zip.FileHeader{Name: "f" + strconv.Itoa(i), Method: zip.Store}
			if _, err := zw.CreateHeader(hdr); err != nil {
				t.Fatal(err)
			}
		}
		zw.Close()
		return buf.Bytes()
	}
	over := build(DefaultMaxFiles + 1)
	n, ok := countEntries(bytes.NewReader(over), int64(len(over)), DefaultMaxFiles)
	if !ok || n != DefaultMaxFiles+1 {
		t.Errorf("countEntries = %d, %v; want it to stop at %d", n, ok, DefaultMaxFiles+1)
	}
	err := Validate(bytes.NewReader(over), int64(len(over)), DefaultLimits())
	assertRefusal(t, "Validate", err, false, "more than the limit of 20000 entries")

	at := build(DefaultMaxFiles)
	if err := Validate(bytes.NewReader(at), int64(len(at)), DefaultLimits()); err != nil {
		t.Errorf("Validate(%d entries): %v", DefaultMaxFiles, err)
	}
}

// TestCountEntriesMatchesArchiveZip checks the pre-scan against
// archive/zip on layouts it must understand: comments, prepended data
// (self-extracting archives) and raw (descriptor-less) entries. Zip64
// directories need >65535 entries or >4 GiB and are left to the fuzzers'
// consistency check.
func TestCountEntriesMatchesArchiveZip(t *testing.T) {
	plain := buildZip(t, zent{name: "a", body: "1"}, zent{name: "b/"}, zent{name: "b/c", body: "2"})

	var commented bytes.Buffer
	zw := zip.NewWriter(&commented)
	zw.SetComment(strings.Repeat("c", 2000))
	w, _ := zw.Create("x")
	w.Write([]byte("x"))
	zw.Close()

	var prefixed bytes.Buffer
	prefixed.WriteString(strings.Repeat("#!stub\n", 100))
	zw = zip.NewWriter(&prefixed)
	zw.SetOffset(int64(prefixed.Len()))
	for _, n := range []string{"p", "q"} {
		w, _ := zw.Create(n)
		w.Write([]byte(n))
	}
	zw.Close()
	// Same, but without SetOffset: offsets are relative to the zip start
	// and archive/zip derives a non-zero base.
	var shifted bytes.Buffer
	shifted.WriteString("junkjunk")
	shifted.Write(plain)

	// Raw entries have no data descriptor, a different header layout.
	var raw bytes.Buffer
	zw = zip.NewWriter(&raw)
	for i := range 3 {
		hdr := &zip.FileHeader{Name: "z" + strconv.Itoa(i), Method: zip.Store,
			CompressedSize64: 1, UncompressedSize64: 1, CRC32: crc32.ChecksumIEEE([]byte("z"))}
		rw, _ := zw.CreateRaw(hdr)
		rw.Write([]byte("z"))
	}
	zw.Close()

	for name, data := range map[string][]byte{
		"plain": plain, "comment": commented.Bytes(), "prefixed": prefixed.Bytes(),
		"shifted": shifted.Bytes(), "raw": raw.Bytes(),
	} {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, ok := countEntries(bytes.NewReader(data), int64(len(data)), 1000)
		if !ok || n != len(zr.File) {
			t.Errorf("%s: countEntries = %d, %v; archive/zip sees %d", name, n, ok, len(zr.File))
		}
		if err := Validate(bytes.NewReader(data), int64(len(data)), Limits{}); err != nil {
			t.Errorf("%s: Validate: %v", name, err)
		}
	}
}

// TestCountEntriesBothOffsets: when the directory-end record implies
// prepended data, archive/zip may read the directory at either of two
// offsets; the pre-scan must count the larger, or a crafted archive could
// put its huge directory where the pre-scan does not look.
func TestCountEntriesBothOffsets(t *testing.T) {
	z := buildZip(t, zent{name: "a", body: "a"})
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	// The central directory starts right after the single entry's data
	// descriptor; find it by its signature.
	d := bytes.Index(z, []byte{'P', 'K', 0x01, 0x02})
	if d < 0 || len(zr.File) != 1 {
		t.Fatal("unexpected test archive layout")
	}
	const fakes = 11
	prefix := make([]byte, d, d+fakes*lenDirHeader+16)
	for range fakes {
		var h [lenDirHeader]byte
		copy(h[:], []byte{'P', 'K', 0x01, 0x02})
		prefix = append(prefix, h[:]...)
	}
	prefix = append(prefix, make([]byte, 16)...)
	data := append(prefix, z...)

	n, ok := countEntries(bytes.NewReader(data), int64(len(data)), 10)
	if !ok || n <= 10 {
		t.Errorf("countEntries = %d, %v; want > 10 (the fake directory at the raw offset)", n, ok)
	}
	err = Validate(bytes.NewReader(data), int64(len(data)), Limits{MaxFiles: 10})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate = %v, want a refusal", err)
	}
}

// TestZipDirRefusals: the CLI must fail locally on trees the coordinator
// would refuse, before anything is uploaded.
func TestZipDirRefusals(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		links map[string]string
		want  string
	}{
		{name: "symlink leaving the tree", files: map[string]string{"f": "x"}, links: map[string]string{"out": "../outside"}, want: "escapes the archive root"},
		{name: "nested symlink leaving the tree", files: map[string]string{"d/f": "x"}, links: map[string]string{"d/out": "../../x"}, want: "escapes the archive root"},
		{name: "absolute symlink", links: map[string]string{"shadow": "/etc/shadow"}, want: "is absolute"},
		{name: "chained symlink escape", links: map[string]string{"s": ".", "t": "s/.."}, want: "escapes the archive root"},
		{name: "backslash in name", files: map[string]string{`a\b`: "x"}, want: "backslash"},
		{name: "empty folder", want: "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, dir, tc.files, nil, tc.links)
			var buf bytes.Buffer
			err := ZipDir(dir, &buf)
			if err == nil {
				t.Fatalf("ZipDir accepted the tree; want error containing %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ZipDir error %q: want ErrInvalid mentioning %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("ZipDir wrote %d bytes before refusing", buf.Len())
			}
		})
	}
	t.Run("missing folder", func(t *testing.T) {
		err := ZipDir(filepath.Join(t.TempDir(), "nope"), io.Discard)
		if err == nil || errors.Is(err, ErrInvalid) {
			t.Errorf("ZipDir(missing) = %v; want a plain I/O error", err)
		}
	})
}

// TestExtractDestination: Extract only writes into an existing empty
// directory, and such failures are not blamed on the archive.
func TestExtractDestination(t *testing.T) {
	good := buildZip(t, zent{name: "f", body: "x"})
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"missing":   filepath.Join(t.TempDir(), "missing"),
		"non-empty": nonEmpty,
	} {
		err := Extract(t.Context(), bytes.NewReader(good), int64(len(good)), dir, DefaultLimits())
		if err == nil || errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Extract = %v; want a non-ErrInvalid error", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Extract wrote into a non-empty directory")
	}
}

// TestErrorsIs pins the sentinel relationship callers depend on.
func TestErrorsIs(t *testing.T) {
	if !errors.Is(ErrTooLarge, ErrInvalid) {
		t.Error("ErrTooLarge must wrap ErrInvalid")
	}
	if errors.Is(ErrInvalid, ErrTooLarge) {
		t.Error("ErrInvalid must not match ErrTooLarge")
	}
	bad := buildZip(t, zent{name: "../x", body: "x"})
	err := Validate(bytes.NewReader(bad), int64(len(bad)), DefaultLimits())
	if got, want := err.Error(), `code archive entry "../x": path escapes the archive root`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	notZip := []byte("nope")
	err = Validate(bytes.NewReader(notZip), 4, DefaultLimits())
	if !errors.Is(err, zip.ErrFormat) {
		t.Errorf("not-a-zip error %q should keep zip.ErrFormat as its cause", err)
	}
}

func TestDigestReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, _, err := Digest(io.MultiReader(strings.NewReader("abc"), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("Digest error = %v, want wrapping %v", err, boom)
	}
	d, n, err := Digest(strings.NewReader(""))
	if err != nil || n != 0 || d != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Digest(empty) = %s, %d, %v", d, n, err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
