package sandbox

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/gustfaas/gust/internal/loopback"
	"golang.org/x/sys/unix"
)

// netNS is a network namespace with only loopback, plus the Runtime API
// listener bound inside it. The open namespace file keeps it alive; closing
// both frees it, so a crash leaves no bind mount behind.
type netNS struct {
	file     *os.File
	listener net.Listener
}

// newNetNS creates a namespace from a locked OS thread, brings loopback up,
// opens a listener in it and returns the thread to the host namespace.
func newNetNS() (_ *netNS, err error) {
	type result struct {
		ns  *netNS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, restored, err := enterNewNetNS()
		if restored {
			// Only a thread back in the host namespace may serve other
			// goroutines; otherwise it dies with this goroutine.
			runtime.UnlockOSThread()
		}
		ch <- result{ns, err}
	}()
	r := <-ch
	return r.ns, r.err
}

func enterNewNetNS() (ns *netNS, restored bool, err error) {
	host, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, fmt.Errorf("open host netns: %w", err)
	}
	defer host.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("unshare netns: %w", err)
	}
	defer func() {
		if e := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); e != nil {
			err = fmt.Errorf("return to host netns: %w", e)
			restored = false
			return
		}
		restored = true
		if err != nil && ns != nil {
			ns.close()
			ns = nil
		}
	}()
	if err := loopback.Up(); err != nil {
		return nil, false, err
	}
	file, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, false, fmt.Errorf("open sandbox netns: %w", err)
	}
	ln, err := net.Listen("tcp", RuntimeAPIAddr)
	if err != nil {
		file.Close()
		return nil, false, fmt.Errorf("listen in sandbox netns: %w", err)
	}
	return &netNS{file: file, listener: ln}, false, nil
}

// path is what libcontainer opens to join the namespace.
func (n *netNS) path() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.file.Fd())
}

func (n *netNS) close() {
	n.listener.Close()
	n.file.Close()
}
