package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newStdLogger adapts memberlist's *log.Logger to slog. memberlist tags
// each line with a level ("[WARN] memberlist: ..."); only warnings and
// errors are passed on, because its INFO and DEBUG lines (every probe,
// every stream) would drown the caller's logs.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	level, msg := memberlistLine(string(p))
	if level >= slog.LevelWarn {
		w.l.Log(context.Background(), level, msg, "lib", "memberlist")
	}
	return len(p), nil
}

var memberlistLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
	{"Err:", slog.LevelError},
	{"[WARN]", slog.LevelWarn},
	{"[INFO]", slog.LevelInfo},
	{"[DEBUG]", slog.LevelDebug},
	{"[TRACE]", slog.LevelDebug},
}

// memberlistLine splits a memberlist log line into level and message.
// Untagged lines are unexpected, so they are kept as warnings.
func memberlistLine(s string) (slog.Level, string) {
	s = strings.TrimSpace(s)
	for _, l := range memberlistLevels {
		if rest, ok := strings.CutPrefix(s, l.tag); ok {
			rest = strings.TrimSpace(rest)
			return l.level, strings.TrimPrefix(rest, "memberlist: ")
		}
	}
	return slog.LevelWarn, s
}
