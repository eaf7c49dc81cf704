// Package bodyread reads a request body of bounded size into memory,
// allocating as the bytes arrive rather than as the sender declares: a
// client that announces 70 MB and sends one byte costs a few KiB. The
// coordinator's Lambda REST front and each sandbox's Runtime API use it.
package bodyread

import (
	"errors"
	"io"
)

// ErrTooLarge is a body past the limit.
var ErrTooLarge = errors.New("body is over the limit")

// ReadAtMost reads r to EOF, or fails with ErrTooLarge once more than
// limit bytes have come. The buffer starts at start bytes (or less) and
// doubles as it fills, so it is never more than twice what has arrived; it
// stops growing at the declared length (-1 if unknown) plus the one byte
// that shows EOF, so an honest body ends in a buffer of its size. A body
// shorter than declared is returned as it came: the caller judges it.
func ReadAtMost(r io.Reader, limit, declared int64, start int) ([]byte, error) {
	ceiling := limit + 1 // one byte past the limit proves the body too large
	if declared >= 0 && declared < limit {
		ceiling = declared + 1
	}
	buf := make([]byte, 0, min(ceiling, int64(start)))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, ErrTooLarge
			}
			if int64(len(buf)) >= ceiling {
				// More than declared: net/http never returns that, but
				// any other reader is still held to the limit.
				ceiling = limit + 1
			}
			grown := make([]byte, len(buf), min(2*int64(max(cap(buf), 1)), ceiling))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > limit {
				return nil, ErrTooLarge
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
