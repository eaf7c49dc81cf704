package codezip

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// kind is what an entry becomes on disk.
type kind uint8

const (
	kindFile kind = iota + 1
	kindDir
	kindSymlink
)

const (
	// maxLinkTarget is PATH_MAX minus the terminating NUL: Linux refuses
	// longer symlink targets anyway, and it bounds what we read into memory.
	maxLinkTarget = 4095
	// maxElemLen mirrors NAME_MAX so an archive Validate accepts does not
	// fail half-way through Extract. (MaxPathLen keeps whole paths far
	// below PATH_MAX.)
	maxElemLen = 255
)

// entry is one validated archive member.
type entry struct {
	f      *zip.File
	name   string // clean relative path, no trailing slash
	kind   kind
	perm   fs.FileMode // on-disk permission for files
	target string      // symlink target
}

// node is what the extracted tree holds at a path, including directories
// that exist only because a deeper entry needs them.
type node struct {
	kind   kind
	target string
}

// archive is the result of the structural checks: everything except the
// bodies of regular files has been verified.
type archive struct {
	entries []entry
	nodes   map[string]node // "" is the root
	budget  *budget
	// maxNodes caps len(nodes) without the root: Limits.MaxFiles, which
	// counts implied parent directories too.
	maxNodes int
}

// inspect opens the archive and runs every check that does not need the
// file bodies: size, entry count, names, types, flags, duplicates, paths
// through symlinks or files, and symlink targets (whose bodies it reads,
// counting them against the unzipped budget).
func inspect(r io.ReaderAt, size int64, lim Limits) (*archive, error) {
	if size < 0 {
		return nil, invalidf("code archive has a negative size (%d bytes)", size)
	}
	if size > lim.MaxZipped {
		return nil, tooLargef("code archive too large: zipped size %d bytes exceeds the limit of %d bytes (%s)",
			size, lim.MaxZipped, humanBytes(lim.MaxZipped))
	}
	// archive/zip materialises every central-directory header before we can
	// look at len(File); count them cheaply first so a 50 MiB archive of
	// tiny headers cannot make us allocate millions of entries.
	if n, ok := countEntries(r, size, lim.MaxFiles); ok && n > lim.MaxFiles {
		return nil, invalidf("code archive has more than the limit of %d entries", lim.MaxFiles)
	}
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath (only with GODEBUG=zipinsecurepath=0) still returns a
	// usable reader; our own name checks give a more precise message.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, invalidCause(err, "code archive is not a valid zip file")
	}
	if len(zr.File) == 0 {
		return nil, invalidf("code archive has no entries")
	}
	if len(zr.File) > lim.MaxFiles {
		return nil, invalidf("code archive has %d entries, more than the limit of %d", len(zr.File), lim.MaxFiles)
	}

	a := &archive{
		entries:  make([]entry, 0, len(zr.File)),
		nodes:    map[string]node{"": {kind: kindDir}},
		budget:   newBudget(lim.MaxUnzipped),
		maxNodes: lim.MaxFiles,
	}
	for _, f := range zr.File {
		e, err := checkEntry(f)
		if err != nil {
			return nil, err
		}
		// Before addParents runs, nodes holds only the root and explicit
		// entries, and cleanName never yields "", so a hit is a duplicate.
		if _, dup := a.nodes[e.name]; dup {
			return nil, invalidf("code archive entry %q: duplicate entry for path %q", f.Name, e.name)
		}
		a.entries = append(a.entries, e)
		a.nodes[e.name] = node{kind: e.kind}
	}
	// Parents are checked once every explicit entry is known, so order in
	// the archive does not matter ("a/x" before or after a symlink "a").
	for i := range a.entries {
		e := &a.entries[i]
		if err := a.addParents(e); err != nil {
			return nil, err
		}
	}
	for i := range a.entries {
		e := &a.entries[i]
		if e.kind != kindSymlink {
			continue
		}
		target, err := a.budget.readLink(e)
		if err != nil {
			return nil, err
		}
		e.target = target
		a.nodes[e.name] = node{kind: kindSymlink, target: target}
	}
	res := newResolver(a.nodes)
	for i := range a.entries {
		e := &a.entries[i]
		if e.kind != kindSymlink {
			continue
		}
		if err := res.check(e.name, e.target); err != nil {
			return nil, fmt.Errorf("code archive entry %q: %w", e.f.Name, err)
		}
	}
	return a, nil
}

// addParents records the implicit parent directories of e, counting them
// against maxNodes, and refuses an entry whose parent is a regular file or a
// symlink. Refusing paths through
// symlinks (even ones pointing inside the tree) is what makes the classic
// "a -> .. then a/escape" attack impossible regardless of entry order, and
// means no write ever needs to follow a link.
func (a *archive) addParents(e *entry) error {
	for i := 0; i < len(e.name); i++ {
		if e.name[i] != '/' {
			continue
		}
		p := e.name[:i]
		n, ok := a.nodes[p]
		switch {
		case !ok:
			if len(a.nodes) > a.maxNodes { // the root is not counted
				return invalidf("code archive creates more than the limit of %d files and directories "+
					"(counting the parent directories its paths imply, such as %s)", a.maxNodes, quoteName(p))
			}
			a.nodes[p] = node{kind: kindDir}
		case n.kind == kindSymlink:
			return invalidf("code archive entry %q: path goes through symlink %q", e.f.Name, p)
		case n.kind == kindFile:
			return invalidf("code archive entry %q: parent %q is a regular file, not a directory", e.f.Name, p)
		}
	}
	return nil
}

// checkEntry validates one header on its own: name, encryption, method and
// file type. It decides the entry's kind and on-disk permission.
func checkEntry(f *zip.File) (entry, error) {
	name, err := cleanName(f.Name)
	if err != nil {
		return entry{}, fmt.Errorf("code archive entry %s: %w", quoteName(f.Name), err)
	}
	// Bit 0: traditional encryption; bit 6: strong encryption. We cannot
	// decrypt, and reading ciphertext as data would only fail later.
	if f.Flags&0x41 != 0 {
		return entry{}, invalidf("code archive entry %q: entry is encrypted", f.Name)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return entry{}, invalidf("code archive entry %q: unsupported compression method %d (only stored and deflate are supported)", f.Name, f.Method)
	}
	mode := f.Mode()
	e := entry{f: f, name: name}
	isDirName := strings.HasSuffix(f.Name, "/")
	switch typ := mode.Type(); {
	case typ == fs.ModeDir:
		e.kind = kindDir
	case typ == fs.ModeSymlink && !isDirName:
		e.kind = kindSymlink
	case typ == 0 && !isDirName:
		e.kind = kindFile
		// Any exec bit (user, group or other) means "executable": the
		// sandbox uid is neither owner nor group, so it needs o+x.
		e.perm = 0o644
		if mode.Perm()&0o111 != 0 {
			e.perm = 0o755
		}
	default:
		return entry{}, invalidf("code archive entry %q: unsupported file type %s (only regular files, directories and symlinks are allowed)", f.Name, describeType(typ))
	}
	return e, nil
}

// describeType names a file type for error messages.
func describeType(t fs.FileMode) string {
	switch {
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe (fifo)"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeSymlink != 0 && t&fs.ModeDir != 0:
		return "symlink with a directory name (trailing slash)"
	case t&fs.ModeIrregular != 0:
		return "irregular file"
	default:
		return fmt.Sprintf("%v", t)
	}
}

// cleanName checks an entry name and returns it without the trailing slash
// that marks directories. Only canonical relative forward-slash paths are
// accepted: anything else is either an escape attempt or ambiguous between
// unzip tools (a backslash is a separator on Windows but not here).
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errPlain("empty name")
	case strings.IndexByte(name, 0) >= 0:
		return "", errPlain("name contains a NUL byte")
	case strings.IndexByte(name, '\\') >= 0:
		return "", errPlain("name contains a backslash; use forward slashes as path separators")
	case name[0] == '/':
		return "", errPlain("absolute path; entry names must be relative to the archive root")
	}
	trimmed := strings.TrimSuffix(name, "/")
	// Before splitting: a 64 KiB name of "a/a/…" would be 32768 elements.
	if len(trimmed) > MaxPathLen {
		return "", errPlain(fmt.Sprintf("path is %d bytes long, more than the limit of %d bytes", len(trimmed), MaxPathLen))
	}
	if depth := strings.Count(trimmed, "/") + 1; depth > MaxDepth {
		return "", errPlain(fmt.Sprintf("path is %d levels deep, more than the limit of %d levels", depth, MaxDepth))
	}
	elems := strings.Split(trimmed, "/")
	// Check ".." first so an escape is reported as such even when the name
	// is also non-canonical.
	for _, el := range elems {
		if el == ".." {
			return "", errPlain("path escapes the archive root")
		}
	}
	if trimmed == "." {
		return "", errPlain("name refers to the archive root itself")
	}
	for _, el := range elems {
		switch {
		case el == "" || el == ".":
			return "", errPlain("name is not a clean relative path (empty or \".\" element)")
		case len(el) > maxElemLen:
			return "", errPlain(fmt.Sprintf("path element is longer than %d bytes", maxElemLen))
		}
	}
	return trimmed, nil
}

// errPlain is a refusal fragment; callers prefix it with the entry name.
// It wraps ErrInvalid itself so the prefixing fmt.Errorf keeps the chain.
func errPlain(msg string) error { return &refusal{msg: msg, kind: ErrInvalid} }

// quoteName quotes an entry name for a message, shortened when long: a
// refused name can be 64 KiB.
func quoteName(name string) string {
	const keep = 80
	if len(name) <= keep {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(name[:keep]), len(name))
}

// parentOf returns the directory part of a clean name ("" for top level).
func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// humanBytes renders a limit for messages, e.g. "250 MiB".
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
