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

// maxFunctionLog bounds one function's retained log; past it the file is
// rotated once (to .1), so a chatty function cannot fill the disk.
const maxFunctionLog = 16 << 20

// functionLogs keeps each function's output (every sandbox, every
// invocation, with the START/END/REPORT lines) in DATA/logs/NAME.log.
type functionLogs struct {
	dir   string
	mu    sync.Mutex
	files map[string]*functionLog
}

func newFunctionLogs(dir string) (*functionLogs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("function logs: %w", err)
	}
	return &functionLogs{dir: dir, files: map[string]*functionLog{}}, nil
}

// writer returns the shared log of one function.
func (f *functionLogs) writer(name string) *functionLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.files[name]
	if !ok {
		l = &functionLog{path: filepath.Join(f.dir, name+".log")}
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
	path string
	mu   sync.Mutex
	f    *os.File
	size int64
}

func (l *functionLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.size > maxFunctionLog {
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

// ReadLogs sends a function's retained log (the rotated part first) to
// send in runs of whole lines; with follow it goes on with what is written
// later until ctx ends. A function that never ran here has an empty log.
func (w *Worker) ReadLogs(ctx context.Context, name string, follow bool, send func([]byte) error) error {
	if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: bad function name %q", ErrCode, name)
	}
	path := filepath.Join(w.logs.dir, name+".log")
	var pending []byte // a partial last line, held until its newline
	emit := func(b []byte) error {
		pending = append(pending, b...)
		if i := bytes.LastIndexByte(pending, '\n'); i >= 0 {
			if err := send(pending[:i+1]); err != nil {
				return err
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
			if len(pending) > 0 {
				return send(pending)
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
