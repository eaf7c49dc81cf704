package worker

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
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

	read := func(opts LogOptions) string {
		var out bytes.Buffer
		if err := w.ReadLogs(context.Background(), "f", opts, func(b []byte) error { out.Write(b); return nil }); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got, want := read(LogOptions{}), "old one\nold two\nnew one, in two parts\nnew two\n"; got != want {
		t.Errorf("plain read:\n%q\nwant\n%q", got, want)
	}
	since := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	if got, want := read(LogOptions{Since: since}), "new one, in two parts\nnew two\n"; got != want {
		t.Errorf("since read:\n%q\nwant\n%q", got, want)
	}
	got := read(LogOptions{Since: since, Timestamps: true})
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
	if err := w.ReadLogs(context.Background(), "chatty", LogOptions{}, func(b []byte) error { out.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	if n := out.Len(); n > 64<<10 || n < 16<<10 {
		t.Errorf("retained %d bytes of log, want at most 64 KB and more than a little", n)
	}
	if !strings.HasSuffix(out.String(), "the last line\n") {
		t.Errorf("the newest line was not kept")
	}
}
