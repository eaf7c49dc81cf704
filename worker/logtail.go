package worker

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// tailSize is how much of an invocation's log `invoke --log` returns, as on Lambda.
const tailSize = 4096

// logTail keeps the last tailSize bytes a sandbox wrote since the current
// invocation began. The sandbox writes stdout and stderr into one pipe we
// own, so we can tell how much it has written but we have not yet read.
type logTail struct {
	r, w *os.File
	read atomic.Int64 // bytes consumed from the pipe
	done chan struct{}
	keep io.Writer // the function's retained log, each line stamped; may be nil

	mu  sync.Mutex
	buf []byte
}

func newLogTail(keep io.Writer) (*logTail, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	l := &logTail{r: r, w: w, done: make(chan struct{}), keep: stamped(keep)}
	go l.pump()
	return l, nil
}

// attachLogTail reads a pipe whose write end a sandbox already holds (a
// stem cell's output).
func attachLogTail(r *os.File, keep io.Writer) *logTail {
	l := &logTail{r: r, done: make(chan struct{}), keep: stamped(keep)}
	go l.pump()
	return l
}

// stamped puts the time at the start of each line written to keep.
func stamped(keep io.Writer) io.Writer {
	if keep == nil {
		return nil
	}
	return newLineStamper(keep)
}

// writer is the pipe's write end for the sandbox's stdout and stderr.
func (l *logTail) writer() *os.File { return l.w }

// started closes our copy of the write end once the sandbox holds its own,
// so the pump sees EOF when the sandbox's processes are gone.
func (l *logTail) started() {
	if l.w != nil {
		l.w.Close()
	}
}

func (l *logTail) pump() {
	defer close(l.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := l.r.Read(buf)
		if n > 0 {
			l.Write(buf[:n])
			if l.keep != nil {
				l.keep.Write(buf[:n])
			}
			l.read.Add(int64(n))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				l.Write([]byte("[gust: log pipe: " + err.Error() + "]\n"))
			}
			return
		}
	}
}

// sync waits (briefly) until everything the sandbox wrote before now has
// been read: a function's last log line, written before it answered, then
// lands in its own invocation's tail rather than the next one's.
func (l *logTail) sync() {
	// Control, not Fd: Fd would switch the pipe to blocking mode and pin a thread.
	rc, err := l.r.SyscallConn()
	if err != nil {
		return
	}
	pending := 0
	ctrlErr := rc.Control(func(fd uintptr) {
		pending, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD: bytes waiting in the pipe
	})
	if ctrlErr != nil || err != nil || pending == 0 {
		return
	}
	target := l.read.Load() + int64(pending)
	deadline := time.Now().Add(50 * time.Millisecond)
	for l.read.Load() < target && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}

// close releases the pipe after the sandbox is destroyed.
func (l *logTail) close() {
	l.started()
	select {
	case <-l.done:
	case <-time.After(time.Second):
	}
	l.r.Close()
}

// Write appends to the current invocation's tail.
func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - tailSize; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

// reset starts a new invocation's log.
func (l *logTail) reset() {
	l.mu.Lock()
	l.buf = l.buf[:0]
	l.mu.Unlock()
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
