package codezip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// zent describes one entry for buildZip. The zero value is a deflated
// regular file with mode 0644.
type zent struct {
	name   string
	mode   fs.FileMode // 0 means 0644 regular file
	body   string
	method uint16 // 0 means Deflate; use methodStore for Store
	flags  uint16 // OR-ed into the header (e.g. 0x1 = encrypted)
	noMode bool   // leave ExternalAttrs and creator unset (MS-DOS attributes, like many Windows tools)
}

// methodStore is a sentinel because zip.Store is 0, the "default" value.
const methodStore = 0xffff

// buildZip writes entries with archive/zip's writer, which performs no name
// checks, so hostile names reach the bytes exactly as given.
func buildZip(t testing.TB, entries ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch e.method {
		case 0:
		case methodStore:
			hdr.Method = zip.Store
		default:
			hdr.Method = e.method
		}
		if !e.noMode {
			mode := e.mode
			if mode == 0 {
				mode = 0o644
			}
			hdr.SetMode(mode)
		}
		var w io.Writer
		var err error
		if hdr.Method != zip.Store && hdr.Method != zip.Deflate {
			// archive/zip has no compressor for other methods: write the
			// body raw so the header still claims the odd method.
			hdr.CRC32 = crc32.ChecksumIEEE([]byte(e.body))
			hdr.CompressedSize64 = uint64(len(e.body))
			hdr.UncompressedSize64 = uint64(len(e.body))
			hdr.Flags |= e.flags
			w, err = zw.CreateRaw(hdr)
		} else {
			hdr.Flags |= e.flags
			w, err = zw.CreateHeader(hdr)
		}
		if err != nil {
			t.Fatalf("create %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatalf("write %q: %v", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

// zeroChunk is the raw deflate encoding of 1 MiB of zeros, sync-flushed so
// it ends on a byte boundary. Repeating it yields a valid stream of N MiB of
// zeros, because its back-references only ever reach zeros. This lets tests
// build multi-hundred-MiB bombs in milliseconds (compressing 300 MiB under
// -race takes tens of seconds) while never holding the expanded bytes.
var zeroChunk = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	return bytes.Clone(b.Bytes())
})

// finalBlock terminates a deflate stream built from zeroChunk copies.
var finalBlock = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	fw.Close()
	return bytes.Clone(b.Bytes())
})

// writeZeroBomb streams to w a zip holding one entry of mib MiB of zeros,
// with honest sizes and CRC in its headers.
func writeZeroBomb(t testing.TB, w io.Writer, name string, mib int) {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var crc uint32
	for range mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	chunk, fin := zeroChunk(), finalBlock()
	zw := zip.NewWriter(w)
	hdr := &zip.FileHeader{
		Name:               name,
		Method:             zip.Deflate,
		CRC32:              crc,
		CompressedSize64:   uint64(len(chunk)*mib + len(fin)),
		UncompressedSize64: uint64(mib) << 20,
	}
	hdr.SetMode(0o644)
	raw, err := zw.CreateRaw(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for range mib {
		if _, err := raw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Write(fin); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// countingReaderAt records how many bytes were read, to prove decompression
// stopped early.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// sandbox returns dir = base/p/x, created and empty, plus a function that
// fails the test if anything other than p exists in base or other than x in
// base/p: an escaping write would land in one of them.
func sandbox(t testing.TB) (dir string, check func()) {
	t.Helper()
	base := t.TempDir()
	parent := filepath.Join(base, "p")
	dir = filepath.Join(parent, "x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		t.Helper()
		for d, want := range map[string]string{base: "p", parent: "x"} {
			ents, err := os.ReadDir(d)
			if err != nil {
				t.Fatalf("read %s: %v", d, err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{want}) {
				t.Fatalf("something was written outside the extraction dir: %s holds %q, want only %q", d, names, want)
			}
		}
	}
}

// checkTreeSafe walks an extracted tree and fails if any node breaks the
// promises Extract makes: only dirs (0755), files (0644/0755) and symlinks
// whose resolution stays inside dir.
func checkTreeSafe(t testing.TB, dir string) {
	t.Helper()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			if mode.Perm() != 0o755 || mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: directory mode %v, want 0755", p, mode)
			}
		case mode.IsRegular():
			if mode != 0o644 && mode != 0o755 {
				t.Errorf("%s: file mode %v, want 0644 or 0755", p, mode)
			}
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				t.Errorf("%s: absolute symlink target %q", p, target)
			}
			if resolved, err := filepath.EvalSymlinks(p); err == nil {
				if rel, err := filepath.Rel(realDir, resolved); err != nil || rel == ".." || (len(rel) > 2 && rel[:3] == "../") {
					t.Errorf("%s: symlink resolves outside the tree to %s", p, resolved)
				}
			}
		default:
			t.Errorf("%s: unexpected file type %v", p, mode.Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
