package codezip

import (
	"fmt"
	"io"
)

// budget tracks the unzipped bytes still allowed. Every byte that comes out
// of the decompressor is charged here; sizes declared in headers play no
// part, so lying headers, overlapping entries or high-ratio streams cannot
// make us decompress more than the limit (plus at most one read buffer).
type budget struct {
	limit int64
	left  int64
	buf   []byte // shared copy buffer: one allocation per archive, not per entry
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, left: limit, buf: make([]byte, 32<<10)}
}

func (b *budget) exceeded() error {
	return tooLargef("code archive too large: unzipped size exceeds the limit of %d bytes (%s)",
		b.limit, humanBytes(b.limit))
}

// copy decompresses e into dst and charges the budget. It reads at most
// left+1 bytes, so it stops as soon as the limit is passed. It reads to EOF
// otherwise, which is when archive/zip verifies the size and CRC-32. Read
// failures are refusals (corrupt archive); write failures are not, because
// a full disk says nothing about the archive.
func (b *budget) copy(dst io.Writer, e *entry) (int64, error) {
	rc, err := e.f.Open()
	if err != nil {
		return 0, invalidCause(err, "code archive entry %q: cannot read entry", e.f.Name)
	}
	defer rc.Close()
	ew := &errWriter{w: dst}
	n, err := io.CopyBuffer(ew, io.LimitReader(rc, b.left+1), b.buf)
	if ew.err != nil {
		return n, fmt.Errorf("codezip: write %q: %w", e.name, ew.err)
	}
	if n > b.left {
		b.left = 0
		return n, b.exceeded()
	}
	b.left -= n
	if err != nil {
		return n, invalidCause(err, "code archive entry %q: corrupt entry data", e.f.Name)
	}
	return n, nil
}

// readLink reads a symlink entry's body (its target), bounded both by
// maxLinkTarget and by the budget.
func (b *budget) readLink(e *entry) (string, error) {
	rc, err := e.f.Open()
	if err != nil {
		return "", invalidCause(err, "code archive entry %q: cannot read entry", e.f.Name)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if int64(len(data)) > b.left {
		b.left = 0
		return "", b.exceeded()
	}
	b.left -= int64(len(data))
	if len(data) > maxLinkTarget {
		return "", invalidf("code archive entry %q: symlink target is longer than %d bytes", e.f.Name, maxLinkTarget)
	}
	if err != nil {
		return "", invalidCause(err, "code archive entry %q: corrupt entry data", e.f.Name)
	}
	return string(data), nil
}

// errWriter remembers write errors so copy can tell them from read errors.
// It deliberately hides any ReaderFrom of the destination, which would
// bypass that distinction.
type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
