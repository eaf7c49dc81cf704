package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// functionLogs keeps each function's output (every sandbox, every
// invocation, with the START/END/REPORT lines) in DATA/logs/NAME.log.
// Retention is bounded per function by size (Config.LogRetentionMB): when
// the file passes half the bound it is rotated once, to NAME.log.1, which
// replaces the previous one, so a chatty function cannot fill the disk and
// the newest half of the bound at least is always kept.
//
// Every line starts with when the worker read it from the sandbox, in UTC,
// "2006-01-02T15:04:05.000Z " (stampLayout and a space), so readers can
// select lines by time (gust logs --since); ReadLogs strips the stamp
// unless asked for it. Lines without a stamp (a log written before stamps)
// count as written when the line before them was.
type functionLogs struct {
	dir      string
	maxBytes int64 // per function, both files together
	mu       sync.Mutex
	files    map[string]*functionLog
}

// stampLayout is the time at the start of every retained line.
const stampLayout = "2006-01-02T15:04:05.000Z"

// stampLen is a stamp and the space after it.
const stampLen = len(stampLayout) + 1

func newFunctionLogs(dir string, maxBytes int64) (*functionLogs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("function logs: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = int64(DefaultConfig().LogRetentionMB) << 20
	}
	return &functionLogs{dir: dir, maxBytes: maxBytes, files: map[string]*functionLog{}}, nil
}

// writer returns the shared log of one function.
func (f *functionLogs) writer(name string) *functionLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.files[name]
	if !ok {
		l = &functionLog{path: filepath.Join(f.dir, name+".log"), rotateAt: f.maxBytes / 2}
		f.files[name] = l
	}
	return l
}

func (f *functionLogs) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.files {
		l.close()
	}
}

// functionLog appends to one file; each Write is one write(2), so lines
// from sandboxes of the same function do not tear.
type functionLog struct {
	path     string
	rotateAt int64
	mu       sync.Mutex
	f        *os.File
	size     int64
}

func (l *functionLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.size >= l.rotateAt {
		if l.f != nil {
			l.f.Close()
			os.Rename(l.path, l.path+".1")
		}
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		st, _ := f.Stat()
		l.f, l.size = f, st.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// lineStamper is one sandbox's writer into its function's log: it puts the
// time at the start of each line and hands each write on as one write, so
// whole lines from sandboxes of one function do not interleave.
type lineStamper struct {
	dst io.Writer
	now func() time.Time

	mu  sync.Mutex
	mid bool // the last write ended inside a line
}

func newLineStamper(dst io.Writer) *lineStamper {
	return &lineStamper{dst: dst, now: time.Now}
}

func (s *lineStamper) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	stamp := append(s.now().UTC().AppendFormat(make([]byte, 0, stampLen), stampLayout), ' ')
	out := make([]byte, 0, len(p)+stampLen*(1+bytes.Count(p, []byte{'\n'})))
	for len(p) > 0 {
		if !s.mid {
			out = append(out, stamp...)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			out, s.mid = append(out, p...), true
			break
		}
		out, p, s.mid = append(out, p[:i+1]...), p[i+1:], false
	}
	if _, err := s.dst.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

func (l *functionLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// followPoll is how often a followed log is checked for more.
const followPoll = 200 * time.Millisecond

// LogOptions selects what ReadLogs sends.
type LogOptions struct {
	// Follow goes on with what is written later, until ctx ends.
	Follow bool
	// Since, if set, keeps only lines written at or after it.
	Since time.Time
	// Timestamps keeps each line's time prefix (stampLayout and a space).
	Timestamps bool
}

// ReadLogs sends a function's retained log (the rotated part first) to
// send in runs of whole lines; with opts.Follow it goes on with what is
// written later until ctx ends. A function that never ran here has an
// empty log.
func (w *Worker) ReadLogs(ctx context.Context, name string, opts LogOptions, send func([]byte) error) error {
	if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: bad function name %q", ErrCode, name)
	}
	path := filepath.Join(w.logs.dir, name+".log")
	follow := opts.Follow
	filter := logFilter{opts: opts}
	var pending []byte // a partial last line, held until its newline
	emit := func(b []byte) error {
		pending = append(pending, b...)
		if i := bytes.LastIndexByte(pending, '\n'); i >= 0 {
			if out := filter.lines(pending[:i+1]); len(out) > 0 {
				if err := send(out); err != nil {
					return err
				}
			}
			pending = append(pending[:0], pending[i+1:]...)
		}
		return nil
	}
	if err := streamFile(path+".1", emit); err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && follow {
		f, err = waitForFile(ctx, path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := emit(buf[:n]); err != nil {
				return err
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !follow {
			if out := filter.lines(pending); len(out) > 0 {
				return send(out)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
		// Rotated: the file we hold was renamed to .1; go on with the new one.
		if cur, err := os.Stat(path); err == nil {
			if held, err := f.Stat(); err == nil && !os.SameFile(cur, held) {
				if nf, err := os.Open(path); err == nil {
					for { // drain what the old file still had
						n, _ := f.Read(buf)
						if n == 0 {
							break
						}
						if err := emit(buf[:n]); err != nil {
							nf.Close()
							return err
						}
					}
					f.Close()
					f = nf
				}
			}
		}
	}
}

func streamFile(path string, emit func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := emit(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func waitForFile(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, os.ErrNotExist
		case <-time.After(followPoll):
		}
	}
}

// logFilter drops the lines before opts.Since and strips the stamps.
type logFilter struct {
	opts LogOptions
	last time.Time // the stamp of the line before
}

// lines filters a run of lines (the last may lack its newline), in place.
func (f *logFilter) lines(b []byte) []byte {
	if f.opts.Since.IsZero() && f.opts.Timestamps {
		return b
	}
	out := b[:0]
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		text := line
		if hasStamp(line) {
			if !f.opts.Since.IsZero() {
				if t, err := time.Parse(stampLayout, string(line[:stampLen-1])); err == nil {
					f.last = t
				}
			}
			if !f.opts.Timestamps {
				text = line[stampLen:]
			}
		}
		if f.opts.Since.IsZero() || !f.last.Before(f.opts.Since) {
			out = append(out, text...) // never longer than what it read: in place is safe
		}
	}
	return out
}

// hasStamp reports whether a line starts with a stamp (by its shape).
func hasStamp(line []byte) bool {
	return len(line) >= stampLen && line[4] == '-' && line[7] == '-' && line[10] == 'T' &&
		line[13] == ':' && line[16] == ':' && line[19] == '.' && line[23] == 'Z' && line[24] == ' '
}
