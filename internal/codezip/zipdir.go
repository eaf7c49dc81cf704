package codezip

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// fixedModTime is stamped on every entry ZipDir writes. Archives are stored
// by digest, so the same tree must give the same bytes no matter when it
// was checked out or touched. 1980-01-01 is the earliest DOS timestamp, so
// every unzip tool shows it as a real date.
var fixedModTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// folderItem is one path collected from the folder before anything is
// written, so the tree can be checked as a whole (symlinks) first.
type folderItem struct {
	rel    string // slash-separated, relative to the folder
	kind   kind
	perm   fs.FileMode
	target string
}

// ZipDir writes a zip of the folder's tree to w; the CLI uses it for
// `--code FOLDER`. Entry names are relative to dir with forward slashes,
// directories end in "/", and the walk is in lexical order with a fixed
// modification time, so the same tree always yields the same bytes (the
// archive's digest is its storage key).
//
// Regular files are Deflate-compressed and their mode is normalised to 0644,
// or 0755 if any exec bit is set: that is all Extract keeps, and normalising
// keeps the digest independent of the local umask. Symlinks are stored as
// zip symlink entries (os.ModeSymlink, body = target) provided they resolve
// inside the tree; one leaving the tree, an absolute one, a special file
// (fifo, socket, device) or a name Validate would refuse is an error wrapping
// ErrInvalid, so the CLI fails before uploading. An empty folder is refused
// for the same reason. Nothing is written to w when the tree is refused.
//
// Size limits are not enforced here: the coordinator is the authority.
func ZipDir(dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("codezip: open folder: %w", err)
	}
	defer root.Close()

	items, err := collectFolder(root)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return invalidf("code folder %q is empty", dir)
	}

	zw := zip.NewWriter(w)
	for _, it := range items {
		if err := writeItem(zw, root, it); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("codezip: finish zip: %w", err)
	}
	return nil
}

// collectFolder walks the tree (without following symlinks) and applies the
// same name and symlink rules as Validate.
func collectFolder(root *os.Root) ([]folderItem, error) {
	var items []folderItem
	nodes := map[string]node{"": {kind: kindDir}}
	// fs.WalkDir visits entries in lexical order, which is what makes the
	// output deterministic, and reports symlinks without following them.
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("codezip: walk folder: %w", err)
		}
		if p == "." {
			return nil
		}
		if _, err := cleanName(p); err != nil {
			return fmt.Errorf("code folder entry %q: %w", p, err)
		}
		it := folderItem{rel: p}
		switch typ := d.Type(); {
		case typ.IsDir():
			it.kind = kindDir
		case typ.IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("codezip: stat %q: %w", p, err)
			}
			it.kind, it.perm = kindFile, 0o644
			if info.Mode().Perm()&0o111 != 0 {
				it.perm = 0o755
			}
		case typ&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return fmt.Errorf("codezip: read symlink %q: %w", p, err)
			}
			if len(target) > maxLinkTarget {
				return invalidf("code folder entry %q: symlink target is longer than %d bytes", p, maxLinkTarget)
			}
			it.kind, it.target = kindSymlink, target
		default:
			return invalidf("code folder entry %q: unsupported file type %s (only regular files, directories and symlinks are allowed)", p, describeType(typ))
		}
		nodes[p] = node{kind: it.kind, target: it.target}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := newResolver(nodes)
	for _, it := range items {
		if it.kind != kindSymlink {
			continue
		}
		if err := res.check(it.rel, it.target); err != nil {
			return nil, fmt.Errorf("code folder entry %q: %w", it.rel, err)
		}
	}
	return items, nil
}

// writeItem appends one collected path to the zip.
func writeItem(zw *zip.Writer, root *os.Root, it folderItem) error {
	hdr := &zip.FileHeader{Name: it.rel, Modified: fixedModTime}
	switch it.kind {
	case kindDir:
		hdr.Name += "/"
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeDir | 0o755)
	case kindSymlink:
		hdr.Method = zip.Store // a few bytes: compressing would only add overhead
		hdr.SetMode(fs.ModeSymlink | 0o777)
	default:
		hdr.Method = zip.Deflate
		hdr.SetMode(it.perm)
	}
	zf, err := zw.CreateHeader(hdr)
	if err != nil {
		return fmt.Errorf("codezip: add %q: %w", it.rel, err)
	}
	switch it.kind {
	case kindSymlink:
		if _, err := io.WriteString(zf, it.target); err != nil {
			return fmt.Errorf("codezip: add %q: %w", it.rel, err)
		}
	case kindFile:
		f, err := root.Open(it.rel)
		if err != nil {
			return fmt.Errorf("codezip: open %q: %w", it.rel, err)
		}
		defer f.Close()
		// Re-check after opening: the walk saw a regular file, but it may
		// have been replaced (e.g. by a fifo, which would block the read).
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			return fmt.Errorf("codezip: %q is no longer a regular file", it.rel)
		}
		if _, err := io.Copy(zf, f); err != nil {
			return fmt.Errorf("codezip: add %q: %w", it.rel, err)
		}
	}
	return nil
}
