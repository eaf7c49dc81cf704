package worker

import "sync"

// tailSize is how much of an invocation's log `invoke --log` returns, as on Lambda.
const tailSize = 4096

// logTail keeps the last tailSize bytes a sandbox wrote since the current
// invocation began. It is the sandbox's stdout and stderr.
type logTail struct {
	mu  sync.Mutex
	buf []byte
}

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
