package worker

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gustfaas/gust/internal/tenant"
	"github.com/gustfaas/gust/worker/workerapi"
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
//
// Files are opened through an os.Root on the folder, and only for valid
// function names, so no name reaches outside it. At most maxOpen files are
// open at once (the least recently written is closed first) and a file
// unwritten for idleAfter is closed: a worker that ran thousands of
// functions, since deleted, does not hold a descriptor for each.
type functionLogs struct {
	dir      string
	root     *os.Root
	maxBytes int64 // per function, both files together
	// maxOpen and idleAfter bound the open files; rate and burst bound
	// what each sandbox's stamper takes in (see lineStamper.output).
	maxOpen     int
	idleAfter   time.Duration
	rate, burst int64
	// dropped counts the bytes of sandbox output dropped over the rate.
	dropped atomic.Int64
	closed  atomic.Bool // by close: writes fail rather than reopen a file

	mu   sync.Mutex
	open map[string]*functionLog // by name; each holds an open file or a write in progress
	lru  list.List               // of *functionLog, most recently written first

	stop chan struct{}
	done chan struct{}
}

const (
	// maxOpenLogs is how many functions' logs stay open at once.
	maxOpenLogs = 256
	// logIdleAfter closes a log nobody wrote to for this long.
	logIdleAfter = time.Minute
	// logRate and logBurst bound the output a sandbox may log, in bytes
	// per second and bytes at once (a token bucket): a flood past them is
	// dropped, with a line that says how much.
	logRate  = 4 << 20
	logBurst = 8 << 20
)

// stampLayout is the time at the start of every retained line.
const stampLayout = "2006-01-02T15:04:05.000Z"

// stampLen is a stamp and the space after it.
const stampLen = len(stampLayout) + 1

func newFunctionLogs(dir string, maxBytes int64) (*functionLogs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("function logs: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("function logs: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = int64(DefaultConfig().LogRetentionMB) << 20
	}
	f := &functionLogs{
		dir: dir, root: root, maxBytes: maxBytes,
		maxOpen: maxOpenLogs, idleAfter: logIdleAfter, rate: logRate, burst: logBurst,
		open: map[string]*functionLog{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go f.closeIdleLoop()
	return f, nil
}

var (
	errLogName  = errors.New("function log: bad function name")
	errLogsDone = errors.New("function log: closed")
)

// writer returns what writes to one function's log. A name that is not a
// function's gets a writer that refuses every write, and no file.
func (f *functionLogs) writer(name string) *logWriter {
	w := &logWriter{logs: f, name: name}
	if !tenant.ValidStored(name) {
		w.err = fmt.Errorf("%w: %q", errLogName, name)
	}
	return w
}

// logWriter appends to one function's log; each Write is one write(2),
// so lines from sandboxes of the same function do not tear.
type logWriter struct {
	logs *functionLogs
	name string
	err  error // the name is not valid
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	return w.logs.write(w.name, p)
}

// functionLog is one function's open log file. users and elem are
// guarded by functionLogs.mu; the file by mu.
type functionLog struct {
	name     string
	users    int // writes in progress: the file is not closed under them
	elem     *list.Element
	lastUsed time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
}

func (f *functionLogs) write(name string, p []byte) (int, error) {
	l, err := f.acquire(name)
	if err != nil {
		return 0, err
	}
	defer f.release(l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if f.closed.Load() {
		return 0, errLogsDone
	}
	file := name + ".log"
	if l.f == nil || l.size >= f.maxBytes/2 {
		if l.f != nil {
			l.f.Close()
			l.f = nil
			if err := f.root.Rename(file, file+".1"); err != nil {
				return 0, fmt.Errorf("rotate %s: %w", file, err)
			}
		}
		fh, err := f.root.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return 0, err
		}
		l.f, l.size = fh, st.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// acquire returns a function's log, marked in use and most recent.
func (f *functionLogs) acquire(name string) (*functionLog, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		return nil, errLogsDone
	}
	l, ok := f.open[name]
	if !ok {
		l = &functionLog{name: name}
		l.elem = f.lru.PushFront(l)
		f.open[name] = l
	} else {
		f.lru.MoveToFront(l.elem)
	}
	l.users++
	l.lastUsed = time.Now()
	return l, nil
}

// release ends a write, then closes the least recently written logs past
// maxOpen (those in use wait for their next release).
func (f *functionLogs) release(l *functionLog) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.users--
	for e := f.lru.Back(); e != nil && len(f.open) > f.maxOpen; {
		victim := e.Value.(*functionLog)
		e = e.Prev()
		if victim.users == 0 {
			f.dropLocked(victim)
		}
	}
}

// dropLocked closes a log nobody is writing; f.mu is held.
func (f *functionLogs) dropLocked(l *functionLog) {
	f.lru.Remove(l.elem)
	delete(f.open, l.name)
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// closeIdle closes the logs last written before since.
func (f *functionLogs) closeIdle(since time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for e := f.lru.Back(); e != nil; {
		l := e.Value.(*functionLog)
		e = e.Prev()
		if !l.lastUsed.Before(since) {
			return // the rest were written later
		}
		if l.users == 0 {
			f.dropLocked(l)
		}
	}
}

func (f *functionLogs) closeIdleLoop() {
	defer close(f.done)
	tick := time.NewTicker(f.idleAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-tick.C:
			f.closeIdle(now.Add(-f.idleAfter))
		}
	}
}

// openFiles is how many log files are open, for tests.
func (f *functionLogs) openFiles() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.open {
		if l.f != nil {
			n++
		}
	}
	return n
}

// close closes every log; writes after it fail.
func (f *functionLogs) close() {
	f.mu.Lock()
	if f.open == nil {
		f.mu.Unlock()
		return
	}
	f.closed.Store(true)
	for _, l := range f.open {
		l.mu.Lock()
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		l.mu.Unlock()
	}
	f.open = nil
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	f.root.Close()
}

// lineStamper is one sandbox's writer into its function's log: it puts the
// time at the start of each line and hands each write on as one write, so
// whole lines from sandboxes of one function do not interleave.
//
// What the sandbox writes (output) is rate-limited by a token bucket:
// past it, output is dropped until the bucket is a quarter full again,
// and one line then says how much was dropped. The worker's own lines
// (Write: START, END, REPORT) always pass.
type lineStamper struct {
	dst     io.Writer
	now     func() time.Time
	dropped *atomic.Int64 // the logs' count of dropped bytes

	mu          sync.Mutex
	mid         bool // the last write ended inside a line
	rate, burst float64
	tokens      float64
	filled      time.Time // when tokens was last topped up
	dropping    bool
	lost        int64 // bytes dropped since the last marker line
}

func newLineStamper(dst *logWriter) *lineStamper {
	l := dst.logs
	return &lineStamper{dst: dst, now: time.Now, dropped: &l.dropped,
		rate: float64(l.rate), burst: float64(l.burst), tokens: float64(l.burst)}
}

// Write stamps the worker's own lines into the log; they are never
// dropped, and a drop not yet told of is told first.
func (s *lineStamper) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tellLostLocked()
	return s.writeLocked(p)
}

// output stamps what the sandbox wrote into the log, within the rate; it
// reports whether output is being dropped, so the reader can slow down.
func (s *lineStamper) output(p []byte) (dropping bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.tokens = min(s.burst, s.tokens+now.Sub(s.filled).Seconds()*s.rate)
	s.filled = now
	if s.dropping {
		if s.tokens < s.burst/4 {
			s.dropLocked(len(p))
			return true
		}
		s.dropping = false
		s.tellLostLocked()
	}
	keep := p
	if n := int(s.tokens); n < len(p) {
		keep, s.dropping = p[:n], true
		s.dropLocked(len(p) - n)
	}
	s.tokens -= float64(len(keep))
	s.writeLocked(keep) // a failed write loses the output, as the function cannot be told
	return s.dropping
}

// dropLocked counts n bytes of output dropped.
func (s *lineStamper) dropLocked(n int) {
	s.lost += int64(n)
	s.dropped.Add(int64(n))
}

// tellLostLocked writes the line that says how much output was dropped
// since it last did, if any, on a line of its own.
func (s *lineStamper) tellLostLocked() {
	if s.lost == 0 {
		return
	}
	line := fmt.Appendf(nil, "[gust] %d bytes of log output dropped: rate over %g MB/s\n", s.lost, s.rate/(1<<20))
	if s.mid {
		line = append([]byte{'\n'}, line...)
	}
	s.lost = 0
	s.writeLocked(line) // a failed write loses the line, as it would any other
}

func (s *lineStamper) writeLocked(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
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

// followPoll is how often a followed log is checked for more.
const followPoll = 200 * time.Millisecond

// maxLogLine is the longest line ReadLogs sends whole: a longer one (a
// function that never writes a newline) is sent in pieces of this size,
// each but the last ended by lineSplitMark, so a reader holds at most
// about two pieces and every message stays far under gRPC's limit.
const maxLogLine = 64 << 10

// lineSplitMark ends each piece of a line that was split.
const lineSplitMark = " [gust: line continues]\n"

// ReadLogs sends a function's retained log (the rotated part first) to
// send in runs of whole lines, a line longer than maxLogLine in pieces;
// with opts.Follow it goes on with what is written later until ctx ends.
// A function that never ran here has an empty log.
func (w *Worker) ReadLogs(ctx context.Context, name string, opts workerapi.LogOptions, send func([]byte) error) error {
	if !tenant.ValidStored(name) {
		return fmt.Errorf("%w: bad function name %q", workerapi.ErrCode, name)
	}
	// A root of its own: reading does not depend on the writers' (nor
	// end with them).
	root, err := os.OpenRoot(w.logs.dir)
	if err != nil {
		return fmt.Errorf("function logs: %w", err)
	}
	defer root.Close()
	file := name + ".log"
	follow := opts.Follow
	filter := logFilter{opts: opts}
	cut := lineCutter{max: maxLogLine}
	emit := func(b []byte) error {
		if out := filter.lines(cut.feed(b)); len(out) > 0 {
			return send(out)
		}
		return nil
	}
	if err := streamFile(root, file+".1", emit); err != nil {
		return err
	}
	f, err := root.Open(file)
	if errors.Is(err, os.ErrNotExist) && follow {
		f, err = waitForFile(ctx, root, file)
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
			if out := filter.lines(cut.pending); len(out) > 0 {
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
		if cur, err := root.Stat(file); err == nil {
			if held, err := f.Stat(); err == nil && !os.SameFile(cur, held) {
				if nf, err := root.Open(file); err == nil {
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

// lineCutter turns reads of a log into runs of whole lines: it holds a
// partial last line until its newline, and cuts any line longer than max
// into pieces (at a UTF-8 boundary), each ended by lineSplitMark.
type lineCutter struct {
	max     int
	pending []byte // a partial last line, at most max bytes
	out     []byte
}

// feed returns the lines (and pieces) that b completes; the result is
// only valid until the next call.
func (c *lineCutter) feed(b []byte) []byte {
	c.pending = append(c.pending, b...)
	c.out = c.out[:0]
	p := c.pending
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i >= 0 && i <= c.max {
			c.out, p = append(c.out, p[:i+1]...), p[i+1:]
			continue
		}
		if i < 0 && len(p) <= c.max {
			break // a partial line: wait for the rest
		}
		n := c.max
		for k := n; k > c.max-utf8.UTFMax && k > 0; k-- {
			if utf8.RuneStart(p[k]) {
				n = k
				break
			}
		}
		c.out = append(append(c.out, p[:n]...), lineSplitMark...)
		p = p[n:]
	}
	c.pending = append(c.pending[:0], p...)
	return c.out
}

func streamFile(root *os.Root, name string, emit func([]byte) error) error {
	f, err := root.Open(name)
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

func waitForFile(ctx context.Context, root *os.Root, name string) (*os.File, error) {
	for {
		f, err := root.Open(name)
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
	opts workerapi.LogOptions
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
