package worker

import (
	"fmt"
	"strings"
	"testing"
)

// TestLogTailSync checks that a line written before sync is in the tail
// when sync returns, every time: a function's last line before it answers
// must land in its own invocation's log, never the next one's.
func TestLogTailSync(t *testing.T) {
	l, err := newLogTail(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := l.writer()
	defer func() {
		w.Close()
		l.close()
	}()
	for i := range 20000 {
		l.reset()
		line := fmt.Sprintf("line %d\n", i)
		if _, err := w.WriteString(line); err != nil {
			t.Fatal(err)
		}
		l.sync()
		if got := l.String(); got != line {
			t.Fatalf("after sync, invocation %d's tail is %q, want %q", i, got, line)
		}
	}
	w.WriteString("last\n")
	w.Close()
	<-l.done
	if got := l.String(); !strings.HasSuffix(got, "last\n") {
		t.Fatalf("after EOF the tail is %q", got)
	}
}
