package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/worker/workerapi"
)

// TestLogStampsAndSince: every retained line starts with when it was
// written, a line written in pieces gets one stamp, and ReadLogs keeps
// the lines since a time and strips the stamps unless asked.
func TestLogStampsAndSince(t *testing.T) {
	logs, err := newFunctionLogs(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{logs: logs}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := newLineStamper(logs.writer("f"))
	st.now = func() time.Time { return now }
	st.Write([]byte("old one\nold two\n"))
	now = now.Add(time.Minute)
	st.Write([]byte("new one, in ")) // a line in two writes
	now = now.Add(time.Second)
	st.Write([]byte("two parts\nnew two\n"))
	logs.close()

	read := func(opts workerapi.LogOptions) string {
		var out bytes.Buffer
		if err := w.ReadLogs(context.Background(), "f", opts, func(b []byte) error { out.Write(b); return nil }); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got, want := read(workerapi.LogOptions{}), "old one\nold two\nnew one, in two parts\nnew two\n"; got != want {
		t.Errorf("plain read:\n%q\nwant\n%q", got, want)
	}
	since := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	if got, want := read(workerapi.LogOptions{Since: since}), "new one, in two parts\nnew two\n"; got != want {
		t.Errorf("since read:\n%q\nwant\n%q", got, want)
	}
	got := read(workerapi.LogOptions{Since: since, Timestamps: true})
	want := "2026-12-01T12:01:00.000Z new one, in two parts\n2026-12-01T12:01:01.000Z new two\n"
	if got != want {
		t.Errorf("since with timestamps:\n%q\nwant\n%q", got, want)
	}
}

// TestLogRetentionBounded: a function's log never holds much more than its
// bound, and the newest lines are the ones kept.
func TestLogRetentionBounded(t *testing.T) {
	dir := t.TempDir()
	logs, err := newFunctionLogs(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{logs: logs}
	st := newLineStamper(logs.writer("chatty"))
	line := strings.Repeat("x", 100) + "\n"
	for i := 0; i < 5000; i++ { // about 625 KB with stamps
		st.Write([]byte(line))
	}
	st.Write([]byte("the last line\n"))
	logs.close()
	var out bytes.Buffer
	if err := w.ReadLogs(context.Background(), "chatty", workerapi.LogOptions{}, func(b []byte) error { out.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	if n := out.Len(); n > 64<<10 || n < 16<<10 {
		t.Errorf("retained %d bytes of log, want at most 64 KB and more than a little", n)
	}
	if !strings.HasSuffix(out.String(), "the last line\n") {
		t.Errorf("the newest line was not kept")
	}
}

// TestLogNameStaysInFolder: only a function's stored name (NAME or
// TENANT.NAME) names a log file; any other name is refused for writing and
// reading, and nothing is created outside the logs folder.
func TestLogNameStaysInFolder(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "b", "logs")
	logs, err := newFunctionLogs(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.close()
	w := &Worker{logs: logs}
	for _, name := range []string{
		"../../../x", "../x", "..", ".", "", "a/b", "/abs", "x\x00y", "acme.../x", "acme./x",
		"Acme.fn", "acme.", ".fn", "a.b.c", strings.Repeat("n", 65), "sp ace", "名前",
	} {
		if _, err := logs.writer(name).Write([]byte("pwned\n")); err == nil {
			t.Errorf("write to the log of %q: want an error", name)
		}
		err := w.ReadLogs(context.Background(), name, workerapi.LogOptions{}, func([]byte) error { return nil })
		if !errors.Is(err, workerapi.ErrCode) {
			t.Errorf("read the log of %q: %v, want workerapi.ErrCode", name, err)
		}
	}
	filepath.WalkDir(parent, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a refused name created %s", path)
		}
		return nil
	})
	for _, name := range []string{"fn", "acme.fn", "a-b_C", "acme-1.My_Fn-2", strings.Repeat("n", 64)} {
		if _, err := logs.writer(name).Write([]byte("ok\n")); err != nil {
			t.Errorf("write to the log of %q: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".log")); err != nil {
			t.Errorf("log of %q: %v", name, err)
		}
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestLogFilesBounded: writing the logs of more functions than maxOpen
// keeps at most maxOpen files open, a closed log reopens on its next write
// without losing lines, and idle logs are closed.
func TestLogFilesBounded(t *testing.T) {
	before := openFDs(t)
	logs, err := newFunctionLogs(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.close()
	const functions = 3 * maxOpenLogs
	most := 0
	for round := range 2 {
		for i := range functions {
			if _, err := logs.writer(fmt.Sprintf("acme.f-%d", i)).Write(fmt.Appendf(nil, "round %d\n", round)); err != nil {
				t.Fatal(err)
			}
			most = max(most, openFDs(t)-before)
		}
	}
	// The root of the folder, the log files, and a little for the runtime.
	if most > maxOpenLogs+8 {
		t.Errorf("%d descriptors open while writing %d functions' logs, want at most about %d", most, functions, maxOpenLogs)
	}
	if n := logs.openFiles(); n != maxOpenLogs {
		t.Errorf("%d log files open, want %d", n, maxOpenLogs)
	}
	w := &Worker{logs: logs}
	for _, i := range []int{0, functions / 2, functions - 1} {
		var out bytes.Buffer
		if err := w.ReadLogs(context.Background(), fmt.Sprintf("acme.f-%d", i), workerapi.LogOptions{}, func(b []byte) error { out.Write(b); return nil }); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "round 0\nround 1\n" {
			t.Errorf("log of f-%d: %q, want both rounds", i, got)
		}
	}
	logs.closeIdle(time.Now().Add(time.Hour))
	if n := logs.openFiles(); n != 0 {
		t.Errorf("%d log files open after every log went idle, want 0", n)
	}
	if n := openFDs(t) - before; n > 2 {
		t.Errorf("%d descriptors still open after every log went idle", n)
	}
}

// TestReadLogsSplitsLongLines: a 24 MB line without a newline is sent in
// pieces of at most maxLogLine, each marked, in messages far under gRPC's
// limit, and nothing of it is lost.
func TestReadLogsSplitsLongLines(t *testing.T) {
	logs, err := newFunctionLogs(t.TempDir(), 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.close()
	w := &Worker{logs: logs}
	st := newLineStamper(logs.writer("nonl"))
	st.Write([]byte("before\n"))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	const lineMB = 24
	for range lineMB << 4 {
		st.Write(chunk)
	}
	st.Write([]byte("\nafter\n"))
	for _, follow := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out bytes.Buffer
		biggest := 0
		err := w.ReadLogs(ctx, "nonl", workerapi.LogOptions{Follow: follow}, func(b []byte) error {
			biggest = max(biggest, len(b))
			out.Write(b)
			if bytes.HasSuffix(out.Bytes(), []byte("after\n")) {
				cancel() // all of it came: stop following
			}
			return nil
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if biggest > 4*maxLogLine {
			t.Errorf("follow %v: sent %d bytes at once, want at most %d", follow, biggest, 4*maxLogLine)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		for _, l := range lines {
			if len(l)+1 > maxLogLine+len(lineSplitMark) {
				t.Fatalf("follow %v: a line of %d bytes, want at most %d", follow, len(l), maxLogLine+len(lineSplitMark))
			}
		}
		if n := len(lines); n < lineMB<<4 {
			t.Errorf("follow %v: %d lines, want the long one split into at least %d", follow, n, lineMB<<4)
		}
		whole := strings.ReplaceAll(out.String(), lineSplitMark, "")
		if want := "before\n" + strings.Repeat("x", lineMB<<20) + "\nafter\n"; whole != want {
			t.Errorf("follow %v: the pieces joined are %d bytes, not the %d written", follow, len(whole), len(want))
		}
	}
}

// TestLineCutter: lines up to max pass whole, longer ones are cut at max
// (or before, not to split a UTF-8 character), a partial line waits.
func TestLineCutter(t *testing.T) {
	c := lineCutter{max: 4}
	var got []string
	for _, in := range []string{"ab\nabcd\nabcdefghij", "k\nab", "", "c\n", "éééé\n"} {
		got = append(got, string(c.feed([]byte(in))))
	}
	m := lineSplitMark
	want := []string{"ab\nabcd\nabcd" + m + "efgh" + m, "ijk\n", "", "abc\n", "éé" + m + "éé\n"}
	if !slices.Equal(got, want) {
		t.Errorf("cut:\n%q\nwant\n%q", got, want)
	}
}

// TestLogFloodDropped: a sandbox's output past its burst is dropped until
// the bucket refills, then one line says how much was dropped; the
// worker's own lines always pass and tell of a drop first.
func TestLogFloodDropped(t *testing.T) {
	logs, err := newFunctionLogs(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.close()
	logs.rate, logs.burst = 1<<20, 2<<20
	w := &Worker{logs: logs}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := newLineStamper(logs.writer("flood"))
	st.now = func() time.Time { return now }
	line := []byte(strings.Repeat("y", 1023) + "\n")
	for range 10 << 10 { // 10 MB at once: 2 MB pass
		st.output(line)
	}
	now = now.Add(250 * time.Millisecond) // a quarter of a second refills 256 KB: still dropping
	st.output(line)
	st.Write([]byte("END RequestId: 1\n"))
	now = now.Add(time.Second)
	st.output([]byte("calm again\n"))

	var out bytes.Buffer
	if err := w.ReadLogs(context.Background(), "flood", workerapi.LogOptions{}, func(b []byte) error { out.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	kept := strings.Count(out.String(), string(line))
	if kept != 2<<10 {
		t.Errorf("%d lines of the flood kept, want the burst's %d", kept, 2<<10)
	}
	tail := out.String()[strings.LastIndex(out.String(), string(line))+len(line):]
	want := "[gust] 8389632 bytes of log output dropped: rate over 1 MB/s\nEND RequestId: 1\ncalm again\n"
	if tail != want {
		t.Errorf("after the flood:\n%q\nwant\n%q", tail, want)
	}
	if n := logs.dropped.Load(); n != 8389632 {
		t.Errorf("dropped counter %d, want 8389632", n)
	}
}
