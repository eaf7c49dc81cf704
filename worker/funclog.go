package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
