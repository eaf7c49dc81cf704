package lambdahttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/bodyread"
)

// How slowly a request body may arrive (Options.BodyGrace and
// Options.MinBodyRate). A client must send the body at an average of
// DefaultMinBodyRate once the grace is over: 32 kbit/s, slower than any
// link someone deploys or invokes over (a 6 MiB payload may then take 25
// minutes, a 70 MiB code upload almost 5 hours), yet enough that a request
// trickling a byte now and then is cut off after seconds, not held open.
const (
	DefaultBodyGrace   = 10 * time.Second
	DefaultMinBodyRate = 4 << 10 // bytes per second
)

// initialBodyBuffer is the most readBody allocates before any of the body
// has arrived; typical invocation payloads fit.
const initialBodyBuffer = 4 << 10

// errTooLarge and errTooSlow are readAtMost's refusals; readBody turns them
// into API errors.
var (
	errTooLarge = errors.New("request body is over the limit")
	errTooSlow  = errors.New("request body arrived too slowly")
)

// readBody reads the request body, refusing it with 413
// RequestTooLargeException past limit bytes: at once when the declared
// Content-Length is over it, else as soon as limit+1 bytes have arrived.
// Memory follows what arrives, never what the client declares (see
// readAtMost): a client announcing 70 MB and sending a byte costs a few KiB.
// A body that arrives too slowly (see pacedBody) gets 408
// RequestTimeoutException.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := readAtMost(r.Body, limit, r.ContentLength)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, tooLarge(-1, limit)
	case errors.Is(err, errTooSlow):
		return nil, &apierr.Error{Name: requestTimeout, Message: err.Error()}
	case err != nil:
		return nil, &apierr.Error{Name: invalidRequestContent, Message: fmt.Sprintf("could not read the request body: %v", err)}
	}
	return b, nil
}

func tooLarge(n, limit int64) error {
	if n < 0 {
		return apierr.New(apierr.RequestTooLarge, "request payload is over the %d byte limit", limit)
	}
	return apierr.New(apierr.RequestTooLarge, "request payload of %d bytes is over the %d byte limit", n, limit)
}

// readAtMost reads r to EOF, or fails with errTooLarge once more than limit
// bytes have come, allocating as the body arrives (bodyread.ReadAtMost).
func readAtMost(r io.Reader, limit, declared int64) ([]byte, error) {
	b, err := bodyread.ReadAtMost(r, limit, declared, initialBodyBuffer)
	if errors.Is(err, bodyread.ErrTooLarge) {
		return nil, errTooLarge
	}
	return b, err
}

// paceBody bounds how long the request's body may take to arrive: it
// returns r with its body wrapped in a pacedBody. Without a connection to
// set deadlines on (httptest's recorder), r is returned as is.
func (h *handler) paceBody(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	rc := http.NewResponseController(w)
	start := time.Now()
	// Set at once, so the bound also covers a body the handler never reads,
	// which net/http reads (up to 256 KiB) and discards after the answer.
	if err := rc.SetReadDeadline(start.Add(h.opts.BodyGrace)); err != nil {
		return r
	}
	paced := r.WithContext(r.Context()) // a copy: the server's own r keeps its body
	paced.Body = &pacedBody{ReadCloser: r.Body, rc: rc, start: start, grace: h.opts.BodyGrace, rate: h.opts.MinBodyRate,
		deadline: start.Add(h.opts.BodyGrace)}
	return paced
}

// pacedBody holds a request body to a minimum average rate: once grace has
// passed, it must have delivered rate bytes per second since start. Before
// each Read the connection's read deadline is set to start + grace +
// received/rate, so a client ahead of that pace banks time for a stall, and
// one that falls behind is cut off with errTooSlow. After a timeout the
// deadline stays passed, so net/http gives up on the rest of the body
// rather than wait for it. After EOF the deadline is left alone: net/http
// then lifts it and reads the connection in the background to notice a
// client that leaves, and a deadline passing there would cancel the
// request's context, and with it a long invocation.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64 // bytes per second
	n     int64 // bytes received
	eof   bool
	// deadline is the read deadline set last. It is moved on only once the
	// pace has earned a slack more (a second, or a quarter of the grace if
	// less), so a small body costs no deadline call beyond paceBody's (each
	// is a timer update on the hot path); a client may thus be cut off up
	// to that slack before its exact pace.
	deadline time.Time
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.ReadCloser.Read(p)
	}
	due := b.start.Add(b.grace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
	if due.Sub(b.deadline) >= min(time.Second, b.grace/4) {
		if err := b.rc.SetReadDeadline(due); err != nil {
			return 0, fmt.Errorf("set read deadline: %w", err)
		}
		b.deadline = due
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: %d bytes in %s; after the first %s, at least %d bytes per second are needed",
			errTooSlow, b.n, time.Since(b.start).Round(time.Second), b.grace, b.rate)
	}
	return n, err
}
