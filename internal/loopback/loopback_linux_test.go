package loopback_test

import (
	"net"
	"runtime"
	"testing"

	"github.com/gustfaas/gust/internal/loopback"
	"github.com/gustfaas/gust/internal/testutil"
	"golang.org/x/sys/unix"
)

// In a new network namespace lo starts down, and nothing listens on
// 127.0.0.1; after Up it is up and a listener there accepts a connection.
func TestUp(t *testing.T) {
	testutil.RequireRoot(t)
	errc := make(chan error, 1)
	var before, after uint16
	go func() {
		// Never unlocked: the thread, left in the new namespace, ends with
		// this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		var err error
		if before, err = loFlags(); err != nil {
			errc <- err
			return
		}
		if err := loopback.Up(); err != nil {
			errc <- err
			return
		}
		if after, err = loFlags(); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errc <- err
			return
		}
		defer ln.Close()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			conn.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if before&unix.IFF_UP != 0 {
		t.Fatalf("lo of a new namespace was already up (flags %#x): the test proves nothing", before)
	}
	if after&unix.IFF_UP == 0 || after&unix.IFF_LOOPBACK == 0 {
		t.Fatalf("lo flags after Up: %#x, want IFF_UP and IFF_LOOPBACK", after)
	}
}

func loFlags() (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, err
	}
	return ifr.Uint16(), nil
}
