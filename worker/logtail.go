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

// overRatePause is how long the pump waits after a chunk its function's
// log dropped for passing the rate: the flooding sandbox then waits on its
// own writes, and its flood costs the worker a read per pause rather than
// all the CPU a read loop can take.
const overRatePause = 5 * time.Millisecond

// errOverRate ends a drain after a chunk that was dropped for the rate.
var errOverRate = errors.New("log output over the rate")

// logTail keeps the last tailSize bytes a sandbox wrote since the current
// invocation began. The sandbox writes stdout and stderr into one pipe we
// own. Every read from the pipe happens under drainMu together with what is
// done with the bytes, so sync can empty the pipe itself and know that no
// byte read before it is still on its way into the tail.
type logTail struct {
	r, w *os.File
	done chan struct{}
	keep *lineStamper // the function's retained log, each line stamped; may be nil

	drainMu sync.Mutex // held while reading the pipe and storing what was read
	chunk   []byte     // read buffer, under drainMu
	closing atomic.Bool

	mu  sync.Mutex
	buf []byte
}

func newLogTail(keep *logWriter) (*logTail, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	l := &logTail{r: r, w: w, done: make(chan struct{}), keep: stamped(keep), chunk: make([]byte, 32<<10)}
	go l.pump()
	return l, nil
}

// attachLogTail reads a pipe whose write end a sandbox already holds (a
// stem cell's output).
func attachLogTail(r *os.File, keep *logWriter) *logTail {
	l := &logTail{r: r, done: make(chan struct{}), keep: stamped(keep), chunk: make([]byte, 32<<10)}
	go l.pump()
	return l
}

// stamped puts the time at the start of each line written to keep.
func stamped(keep *logWriter) *lineStamper {
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
	// The raw connection, not Fd: Fd would switch the pipe to blocking mode
	// and pin a thread. Read calls drain when the pipe is readable.
	rc, err := l.r.SyscallConn()
	if err != nil {
		l.Write([]byte("[gust: log pipe: " + err.Error() + "]\n"))
		return
	}
	var end error
	for end == nil {
		err := rc.Read(func(fd uintptr) bool {
			l.drainMu.Lock()
			defer l.drainMu.Unlock()
			end = l.drain(int(fd))
			return end != nil // nil: the pipe is empty for now, wait
		})
		if err != nil && end == nil {
			end = err
		}
		if errors.Is(end, errOverRate) {
			end = nil
			time.Sleep(overRatePause)
		}
	}
	if !errors.Is(end, io.EOF) && !l.closing.Load() {
		l.Write([]byte("[gust: log pipe: " + end.Error() + "]\n"))
	}
}

// drain reads the pipe until it is empty (nil) or ends (io.EOF or the
// error), storing every chunk before it reads the next; drainMu is held.
// It stops early (errOverRate) after a chunk the function's log dropped.
func (l *logTail) drain(fd int) error {
	for {
		n, err := unix.Read(fd, l.chunk)
		switch {
		case n > 0:
			l.Write(l.chunk[:n])
			if l.keep != nil && l.keep.output(l.chunk[:n]) {
				return errOverRate
			}
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return err
		default: // n == 0: every writer is gone
			return io.EOF
		}
	}
}

// sync takes into the tail everything the sandbox wrote before now: a
// function's last log line, written before it answered, then lands in its
// own invocation's tail rather than the next one's. It reads the pipe
// itself; holding drainMu, it also waits out a chunk the pump has read but
// not yet stored.
func (l *logTail) sync() {
	rc, err := l.r.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		l.drainMu.Lock()
		defer l.drainMu.Unlock()
		// The pipe is emptied whatever the rate; an end is the pump's to report.
		for errors.Is(l.drain(int(fd)), errOverRate) {
		}
	})
}

// close releases the pipe after the sandbox is destroyed.
func (l *logTail) close() {
	l.started()
	select {
	case <-l.done:
	case <-time.After(time.Second):
	}
	l.closing.Store(true)
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
