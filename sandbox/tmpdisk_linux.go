package sandbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/continuity/pkg/ext4"
	"golang.org/x/sys/unix"
)

// tmpDisks gives each sandbox a /tmp on disk: a sparse ext4 image of the
// /tmp size on a loop device, which the sandbox's init mounts at /tmp in
// the sandbox's own mount namespace. A tmpfs /tmp would count against the
// function's memory limit (tmpfs pages are charged to the writer's memory
// cgroup), so a 128 MB function could not fill Lambda's 512 MB /tmp; page
// cache over a disk is reclaimable, so it can.
//
// Nothing of it is left to clean up, even if gustd is killed: the image is
// unlinked as soon as the loop device holds it, the loop device detaches
// itself once nothing has it open or mounted (LO_FLAGS_AUTOCLEAR), and the
// one mount lives in the sandbox's namespace, which ends with its
// processes.
type tmpDisks struct {
	dir string // where images are written, then unlinked

	mu        sync.Mutex
	templates map[int][]extent // by size in MB
}

// extent is one run of a template image's data; the rest is holes.
type extent struct {
	off  int64
	data []byte
}

// minTmpMB is the smallest ext4 image ext4.Create makes; a smaller /tmp
// is a tmpfs.
const minTmpMB = 64

// newTmpDisks reports why disk-backed /tmp cannot work here, in which case
// the caller keeps tmpfs: no loop devices (most containers), too few
// device nodes, or a kernel without LOOP_CONFIGURE (before 5.8). It makes
// and attaches one /tmp of sizeMB to find out.
func newTmpDisks(dir string, sizeMB int) (*tmpDisks, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop devices: %w", err)
	}
	ctl.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Images a killed run was writing (each lives unlinked once attached).
	if old, err := os.ReadDir(dir); err == nil {
		for _, e := range old {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	d := &tmpDisks{dir: dir, templates: map[int][]extent{}}
	probe, err := d.make("probe", max(sizeMB, minTmpMB))
	if err != nil {
		return nil, err
	}
	probe.release()
	return d, nil
}

// fits reports whether a /tmp of sizeMB should be a disk: big enough for
// ext4, and with room for it on the disk under dir. A sandbox whose /tmp
// does not fit gets a tmpfs (its memory then bounds it) rather than
// letting one more image fill the worker's disk.
func (d *tmpDisks) fits(sizeMB int, log *slog.Logger) bool {
	if sizeMB < minTmpMB {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.dir, &st); err != nil {
		return true // make will say what is wrong
	}
	free := int64(st.Bavail) * st.Bsize
	if free < 2*int64(sizeMB)<<20 {
		log.Warn("sandbox /tmp is a tmpfs: too little disk left for its image", "dir", d.dir, "free_mb", free>>20, "tmp_mb", sizeMB)
		return false
	}
	return true
}

// tmpDisk is one sandbox's /tmp: the loop device to mount, held open until
// the sandbox's init has mounted it.
type tmpDisk struct {
	dev          *os.File
	major, minor int64
}

// release lets the device go: from then on the sandbox's mount alone holds
// it, and it detaches when that ends.
func (t *tmpDisk) release() {
	if t != nil {
		t.dev.Close()
	}
}

// make writes sandbox id's /tmp image of sizeMB and attaches it.
func (d *tmpDisks) make(id string, sizeMB int) (*tmpDisk, error) {
	tmpl, err := d.template(sizeMB)
	if err != nil {
		return nil, err
	}
	img := filepath.Join(d.dir, id+".img")
	defer os.Remove(img) // the loop device holds it from here on
	if err := writeImage(img, int64(sizeMB)<<20, tmpl); err != nil {
		return nil, fmt.Errorf("tmp image: %w", err)
	}
	dev, err := attachLoop(img)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dev.Fd()), &st); err != nil {
		dev.Close()
		return nil, fmt.Errorf("stat %s: %w", dev.Name(), err)
	}
	return &tmpDisk{dev: dev, major: int64(unix.Major(st.Rdev)), minor: int64(unix.Minor(st.Rdev))}, nil
}

// template returns the image every /tmp of sizeMB starts from: a fresh
// ext4 whose root is mode 1777 and empty (no lost+found), which takes a
// mount to make, so it is made once.
func (d *tmpDisks) template(sizeMB int) ([]extent, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.templates[sizeMB]; ok {
		return t, nil
	}
	img := filepath.Join(d.dir, fmt.Sprintf("template-%d.img", sizeMB))
	defer os.Remove(img)
	if err := ext4.Create(img, int64(sizeMB)<<20); err != nil {
		return nil, fmt.Errorf("tmp template: %w", err)
	}
	if err := prepareRoot(img, filepath.Join(d.dir, "template-mnt")); err != nil {
		return nil, fmt.Errorf("tmp template: %w", err)
	}
	t, err := readExtents(img)
	if err != nil {
		return nil, fmt.Errorf("tmp template: %w", err)
	}
	d.templates[sizeMB] = t
	return t, nil
}

// prepareRoot mounts img at mnt for a moment to make its root directory
// what /tmp should be.
func prepareRoot(img, mnt string) (err error) {
	dev, err := attachLoop(img)
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev.Name(), mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s: %w", dev.Name(), err)
	}
	defer func() {
		if e := unix.Unmount(mnt, 0); e != nil {
			err = errors.Join(err, fmt.Errorf("unmount %s: %w", mnt, e))
		}
	}()
	if err := unix.Chmod(mnt, 0o1777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := os.Remove(filepath.Join(mnt, "lost+found")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// On the image before the unmount: a sandbox being made meanwhile may
	// hold a copy of this mount, and then the unmount flushes nothing.
	root, err := os.Open(mnt)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := unix.Syncfs(int(root.Fd())); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// readExtents reads the data runs of a sparse file.
func readExtents(path string) ([]extent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var out []extent
	for off := int64(0); off < fi.Size(); {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, fmt.Errorf("seek data: %w", err)
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole: %w", err)
		}
		data := make([]byte, end-start)
		if _, err := f.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		out = append(out, extent{off: start, data: data})
		off = end
	}
	return out, nil
}

// writeImage writes a sparse file of size holding tmpl's extents.
func writeImage(path string, size int64, tmpl []extent) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	for _, e := range tmpl {
		if _, err := f.WriteAt(e.data, e.off); err != nil {
			return err
		}
	}
	return nil
}

// attachLoop attaches img to a free loop device, which detaches itself
// once nothing holds it (LO_FLAGS_AUTOCLEAR).
func attachLoop(img string) (*os.File, error) {
	backing, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	// Another attach may take the device GET_FREE gave us: try the next.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("free loop device: %w", err)
		}
		dev, err := os.OpenFile(fmt.Sprintf("/dev/loop%d", n), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("attach loop device %d: %w", n, err)
		}
	}
	return nil, errors.New("attach loop device: every free one was taken first")
}
