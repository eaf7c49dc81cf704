package codezip

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Limits bound what an archive may hold. They exist because archives come
// from users: without them one upload could exhaust the coordinator's memory
// or a worker's disk. A zero or negative field means "use the default", so
// Limits{} behaves like DefaultLimits().
type Limits struct {
	// MaxZipped caps the archive's own size in bytes (default 50 MiB).
	MaxZipped int64
	// MaxUnzipped caps the total of the ACTUAL decompressed bytes of all
	// entries (default 250 MiB). Sizes declared in zip headers are never
	// trusted: decompression stops as soon as the real total passes the cap.
	MaxUnzipped int64
	// MaxFiles caps the number of files, directories and symlinks the
	// archive creates (default 20000). Parent directories that no entry
	// lists but a path implies ("a/b/f" implies "a" and "a/b") count too:
	// otherwise one entry could create thousands of directories.
	MaxFiles int
}

// Default limits, matching AWS Lambda's documented quotas for .zip packages.
const (
	DefaultMaxZipped   int64 = 50 << 20
	DefaultMaxUnzipped int64 = 250 << 20
	DefaultMaxFiles          = 20000
)

// Bounds on every path in an archive. They are fixed rather than part of
// Limits because they protect the hosts, not a quota: a worker extracts
// under its data directory and mounts the tree at /var/task, and both the
// extraction and the sandbox's hard-link copy of the tree must stay well
// under Linux's PATH_MAX (4096) and cost little per path.
const (
	// MaxPathLen is the longest path an entry may have, in bytes, without
	// the trailing slash of a directory.
	MaxPathLen = 1024
	// MaxDepth is the most elements a path may have ("a/b/f" has 3).
	MaxDepth = 64
)

// DefaultLimits returns the platform's standard limits (50 MiB zipped,
// 250 MiB unzipped, 20000 files and directories).
func DefaultLimits() Limits {
	return Limits{MaxZipped: DefaultMaxZipped, MaxUnzipped: DefaultMaxUnzipped, MaxFiles: DefaultMaxFiles}
}

// withDefaults fills unset fields so a zero Limits never refuses everything.
func (l Limits) withDefaults() Limits {
	if l.MaxZipped <= 0 {
		l.MaxZipped = DefaultMaxZipped
	}
	if l.MaxUnzipped <= 0 {
		l.MaxUnzipped = DefaultMaxUnzipped
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// ErrInvalid is wrapped by every refusal of an archive's content, so callers
// can map it to InvalidParameterValueException without parsing messages.
// I/O failures unrelated to the archive (disk full, unreadable source) do not
// wrap it.
var ErrInvalid = errors.New("invalid code archive")

// ErrTooLarge is wrapped when a size limit (zipped or unzipped) is exceeded.
// It itself wraps ErrInvalid, so errors.Is matches both: callers that only
// know ErrInvalid still refuse the upload, while those that care can tell a
// size problem apart. The refusal's message names the limit that was hit.
var ErrTooLarge error = &sentinel{msg: "code archive too large", parent: ErrInvalid}

// sentinel is an error value that wraps another sentinel; it exists so
// ErrTooLarge can be errors.Is-equal to ErrInvalid with a clean message.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.parent }

// refusal is the concrete error for a rejected archive. Its message is
// meant to be shown to the user as is, so it does not repeat the sentinel's
// text; errors.Is still reaches the sentinel (and the underlying cause, if
// any) through Unwrap.
type refusal struct {
	msg   string
	kind  error // ErrInvalid or ErrTooLarge
	cause error // optional, e.g. zip.ErrFormat or zip.ErrChecksum
}

func (e *refusal) Error() string { return e.msg }

func (e *refusal) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// invalidf builds a refusal wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// invalidCause builds a refusal wrapping ErrInvalid and cause, appending the
// cause's text so the user sees what the zip reader complained about.
func invalidCause(cause error, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), kind: ErrInvalid, cause: cause}
}

// tooLargef builds a refusal wrapping ErrTooLarge (and thus ErrInvalid).
func tooLargef(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), kind: ErrTooLarge}
}

// Validate reads the whole archive, decompressing every entry and counting
// the real bytes, and returns nil if Extract would accept it. Otherwise the
// error wraps ErrInvalid (and ErrTooLarge for size limits) and its message
// says what is wrong, e.g.
// `code archive entry "../x": path escapes the archive root`.
//
// The coordinator calls it before storing an upload, so bad archives are
// refused with a clear message instead of failing later on a worker.
func Validate(r io.ReaderAt, size int64, lim Limits) error {
	lim = lim.withDefaults()
	a, err := inspect(r, size, lim)
	if err != nil {
		return err
	}
	for i := range a.entries {
		e := &a.entries[i]
		if e.kind == kindSymlink {
			continue // inspect already read and counted the target
		}
		n, err := a.budget.copy(io.Discard, e)
		if err != nil {
			return err
		}
		if e.kind == kindDir && n > 0 {
			return invalidf("code archive entry %q: directory entry has content", e.f.Name)
		}
	}
	return nil
}

// Extract validates the archive and writes it into dir, which must exist and
// be empty. It never writes outside dir: names are checked, entries below a
// symlink are refused, symlinks must resolve inside the tree, and all writes
// go through an os.Root as a second line of defence.
//
// Permissions are normalised for a read-only mount used by a non-root uid:
// directories (dir itself included) are 0755, regular files 0644, or 0755 when
// the zip mode had any exec bit; setuid/setgid/sticky bits are dropped and the
// process umask does not matter. Device files, fifos, sockets and duplicate
// entries are refused.
//
// Entry structure and symlinks are checked before anything is written; the
// unzipped-size limit and entry checksums are enforced while writing, so on
// error dir may be partially filled and the caller must remove it. Errors
// about the archive wrap ErrInvalid; file-system failures do not. ctx is
// checked before each file or directory is written, so a cancelled caller
// stops the extraction.
func Extract(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits) error {
	lim = lim.withDefaults()
	a, err := inspect(r, size, lim)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("codezip: open extraction directory: %w", err)
	}
	defer root.Close()
	if err := ensureEmpty(root, dir); err != nil {
		return err
	}
	// The sandbox uid must be able to traverse the tree, whatever the umask.
	if err := root.Chmod(".", 0o755); err != nil {
		return fmt.Errorf("codezip: extract: chmod %q: %w", dir, err)
	}
	return a.writeTree(ctx, root)
}

// ensureEmpty refuses a non-empty destination: extracting over existing
// files could merge two functions' code or follow a pre-existing symlink.
func ensureEmpty(root *os.Root, dir string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("codezip: open extraction directory: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("codezip: read extraction directory: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("codezip: extraction directory %q is not empty", dir)
	}
	return nil
}

// writeTree creates every node of the inspected tree below root, parents
// before children, in one depth-first pass that keeps the chain of open
// directories from root down to the current one (at most MaxDepth). Each
// node is then created by name inside its already-open parent: resolving
// every path again from root, as os.Root does, costs one openat per level
// and made deep trees quadratic.
func (a *archive) writeTree(ctx context.Context, root *os.Root) error {
	explicit := make(map[string]*entry, len(a.entries))
	for i := range a.entries {
		explicit[a.entries[i].name] = &a.entries[i]
	}
	paths := make([]string, 0, len(a.nodes))
	for p := range a.nodes {
		if p != "" {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, comparePaths)

	type openDir struct {
		path string
		root *os.Root
	}
	chain := []openDir{{"", root}}
	defer func() {
		for _, d := range chain[1:] {
			d.root.Close()
		}
	}()
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("codezip: extract: %w", err)
		}
		parent, base := parentOf(p), p[strings.LastIndexByte(p, '/')+1:]
		for len(chain) > 1 && chain[len(chain)-1].path != parent {
			chain[len(chain)-1].root.Close()
			chain = chain[:len(chain)-1]
		}
		if chain[len(chain)-1].path != parent {
			// comparePaths puts each directory right before its
			// contents, and inspect made every parent a directory node.
			return fmt.Errorf("codezip: extract: parent of %q is not open (internal error)", p)
		}
		dir := chain[len(chain)-1].root
		e := explicit[p] // nil for a directory no entry lists
		if a.nodes[p].kind == kindDir {
			sub, err := a.mkdir(dir, p, base, e)
			if err != nil {
				return err
			}
			chain = append(chain, openDir{p, sub})
			continue
		}
		if err := a.writeEntry(dir, base, e); err != nil {
			return err
		}
	}
	return nil
}

// mkdir creates the directory p (named base in dir) and returns it opened.
func (a *archive) mkdir(dir *os.Root, p, base string, e *entry) (*os.Root, error) {
	if err := dir.Mkdir(base, 0o755); err != nil {
		return nil, fmt.Errorf("codezip: extract: create directory %q: %w", p, err)
	}
	sub, err := dir.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("codezip: extract: open directory %q: %w", p, err)
	}
	// Mkdir honours the umask; the sandbox uid needs 0755.
	if err := sub.Chmod(".", 0o755); err != nil {
		sub.Close()
		return nil, fmt.Errorf("codezip: extract: chmod directory %q: %w", p, err)
	}
	if e != nil {
		// Directories get no body, but the reader still verifies there is
		// none, keeping Extract exactly as strict as Validate.
		n, err := a.budget.copy(io.Discard, e)
		if err == nil && n > 0 {
			err = invalidf("code archive entry %q: directory entry has content", e.f.Name)
		}
		if err != nil {
			sub.Close()
			return nil, err
		}
	}
	return sub, nil
}

// writeEntry writes one file or symlink entry, named base, into dir.
func (a *archive) writeEntry(dir *os.Root, base string, e *entry) error {
	if e.kind == kindSymlink {
		if err := dir.Symlink(e.target, base); err != nil {
			return fmt.Errorf("codezip: extract: create symlink %q: %w", e.name, err)
		}
		return nil
	}
	// O_EXCL: never reuse or follow something already at this path.
	f, err := dir.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.perm)
	if err != nil {
		return fmt.Errorf("codezip: extract: create file %q: %w", e.name, err)
	}
	// fchmod is not subject to the umask, unlike the mode given to open.
	if err := f.Chmod(e.perm); err != nil {
		f.Close()
		return fmt.Errorf("codezip: extract: chmod file %q: %w", e.name, err)
	}
	if _, err := a.budget.copy(f, e); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("codezip: extract: write file %q: %w", e.name, err)
	}
	return nil
}

// comparePaths orders clean paths like strings.Compare, except that '/'
// sorts before every other byte, so "a/b" comes before "a-b". Each
// directory is then immediately followed by everything below it: the order
// of a depth-first walk.
func comparePaths(x, y string) int {
	for i := 0; i < len(x) && i < len(y); i++ {
		cx, cy := x[i], y[i]
		switch {
		case cx == cy:
			continue
		case cx == '/':
			return -1
		case cy == '/':
			return 1
		}
		return cmp.Compare(cx, cy)
	}
	return cmp.Compare(len(x), len(y))
}

// Digest returns the lowercase hex SHA-256 of r's bytes and how many bytes
// were read. Archives are stored content-addressed by this digest, which is
// why ZipDir is deterministic.
func Digest(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, fmt.Errorf("codezip: digest: read: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
