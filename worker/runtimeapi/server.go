package runtimeapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxResponseBytes is the AWS limit for a buffered response payload
// (6 MiB); it applies when Options.MaxResponseBytes is not set.
const DefaultMaxResponseBytes = 6 * 1024 * 1024

// DefaultMaxConns is how many connections a runtime may hold open at once
// when Options.MaxConns is not set. Runtimes keep one (aws-lambda-go) or a
// few; the cap is what stops one sandbox from taking all of the worker's
// descriptors and memory with thousands.
const DefaultMaxConns = 8

const (
	// readHeaderTimeout bounds how long a connection may take to send a
	// request's headers. It never affects the long poll on GET /next, whose
	// headers arrive at once; there is deliberately no read or write
	// timeout, because a frozen sandbox stays parked in GET /next for as
	// long as it is kept, and AWS never times that poll out either.
	readHeaderTimeout = 10 * time.Second

	// idleTimeout closes a keep-alive connection with no request in
	// progress (never one parked in GET /next). A runtime whose connection
	// was closed while idle opens another: Go's client retries a GET on a
	// connection the server closed.
	idleTimeout = 30 * time.Second

	// maxHeaderBytes caps one request's headers. It is not smaller because
	// runtimes send the X-Ray cause of a function error as a header of up to
	// 1 MB (aws-lambda-go and the .NET runtime cap it there); a request
	// past it gets 431, which aws-lambda-go treats as fatal. With at most
	// DefaultMaxConns connections, headers hold about 8 MB of the worker
	// per sandbox at worst, for readHeaderTimeout.
	maxHeaderBytes = 1 << 20

	// rememberedIDs is how many delivered request IDs are kept to tell a
	// stale ID (403) from one that was never issued (400). It is bounded so
	// a long-lived warm sandbox does not grow memory forever; IDs older than
	// this are answered like unknown ones (400), which the runtime treats the
	// same way (any non-202 is fatal for it).
	rememberedIDs = 1024
)

// ErrClosed is returned by Invoke and WaitReady once the server is closed.
var ErrClosed = errors.New("runtimeapi: server closed")

// ErrBusy is returned by Invoke when another Invoke is still in progress:
// a sandbox runs one invocation at a time.
var ErrBusy = errors.New("runtimeapi: another invocation is in progress")

// ErrNotDelivered wraps the error of an Invoke whose event no GET /next
// took: the function never saw it, so it may be sent elsewhere.
var ErrNotDelivered = errors.New("runtimeapi: the event was never delivered")

// Invocation is one event handed to the runtime.
type Invocation struct {
	// RequestID identifies the invocation; the runtime echoes it in the URL
	// of its answer. It must be non-empty and must not contain '/'.
	RequestID string
	// Payload is the event, sent as the body of GET /next without copying.
	Payload []byte
	// Deadline is sent as Lambda-Runtime-Deadline-Ms (unix ms). When zero,
	// Invoke uses the deadline of its context.
	Deadline time.Time
	// FunctionARN is sent as Lambda-Runtime-Invoked-Function-Arn.
	FunctionARN string
	// TraceID is sent as Lambda-Runtime-Trace-Id (omitted if empty).
	TraceID string
	// ClientContext is sent as Lambda-Runtime-Client-Context (omitted if
	// empty). aws-lambda-go fails the invocation if it is not JSON.
	ClientContext string
	// CognitoIdentity is sent as Lambda-Runtime-Cognito-Identity (omitted if
	// empty). aws-lambda-go fails the invocation if it is not JSON.
	CognitoIdentity string
}

// Result is what the runtime answered.
type Result struct {
	// Payload is the response body, or the error JSON body when ErrorType
	// is not empty.
	Payload []byte
	// ErrorType is "" on success; otherwise the Lambda-Runtime-Function-Error-Type
	// header (or trailer) value, or errorType from the JSON body, or
	// "Runtime.Unknown".
	ErrorType string
}

// Options tunes a Server. The zero value is ready to use.
type Options struct {
	// MaxResponseBytes caps response and error bodies; larger bodies get 413.
	// Zero or negative means DefaultMaxResponseBytes (6 MiB).
	MaxResponseBytes int64
	// MaxConns caps the connections open at once; one past it is closed
	// as soon as it is accepted. Zero or negative means DefaultMaxConns.
	MaxConns int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger

	// Timeouts other than the defaults, for tests.
	headerTimeout, idleTimeout time.Duration
}

// InitError is the error a runtime reported on POST /runtime/init/error.
type InitError struct {
	// Type is the error type, from the Lambda-Runtime-Function-Error-Type
	// header, the body's errorType, or "Runtime.Unknown".
	Type string
	// Payload is the error body as JSON ({"errorMessage","errorType",...}).
	Payload []byte
}

// Error includes the runtime's errorMessage when the payload carries one, so
// logs say why init failed without decoding the payload.
func (e *InitError) Error() string {
	var body errorBody
	if json.Unmarshal(e.Payload, &body) == nil && body.Message != "" {
		return fmt.Sprintf("runtimeapi: runtime init failed: %s: %s", e.Type, body.Message)
	}
	return "runtimeapi: runtime init failed: " + e.Type
}

// callState is where one invocation is in its hand-off.
type callState int

const (
	stateQueued    callState = iota // in s.queue, waiting for a GET /next
	stateDelivered                  // sent to the runtime, awaiting its answer
	stateReceiving                  // a POST for it is reading its body
	stateAnswered                   // result is set and done is closed
	stateAbandoned                  // Invoke gave up (context done, Close, init error)
)

// call is one Invoke in flight. Its fields other than inv and done are
// guarded by Server.mu.
type call struct {
	inv    Invocation
	done   chan struct{} // closed when the runtime answered
	state  callState
	result Result
}

// Server serves the Runtime API for one sandbox on one listener.
type Server struct {
	ln        *connLimit
	srv       *http.Server
	maxBody   int64
	log       *slog.Logger
	serveDone chan struct{}

	// queue holds the current call while no GET /next has taken it. It has
	// capacity 1 and only ever holds s.current, so a send under mu never
	// blocks; a channel (rather than a cond) lets a waiting GET /next also
	// watch its own connection and Close.
	queue        chan *call
	readyCh      chan struct{} // closed by the first GET /next
	initFailedCh chan struct{} // closed by POST /runtime/init/error
	closedCh     chan struct{} // closed by Close

	// waiting counts GET /next handlers parked for an invocation; tests use
	// it to know the server has noticed a disconnect.
	waiting atomic.Int32

	mu       sync.Mutex
	ready    bool
	initErr  *InitError
	closed   bool
	current  *call
	seen     map[string]struct{} // recently delivered request IDs
	seenRing []string            // the same IDs, oldest first once full
	seenNext int
}

// New starts serving the Runtime API on ln in a goroutine. The server owns
// ln from now on and closes it in Close.
func New(ln net.Listener, opts Options) *Server {
	s := newServer(opts)
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	s.ln = &connLimit{Listener: ln, max: int32(min(maxConns, math.MaxInt32)), log: s.log}
	headerTimeout, idle := cmp.Or(opts.headerTimeout, readHeaderTimeout), cmp.Or(opts.idleTimeout, idleTimeout)
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.route),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http would otherwise print its own errors to stderr.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.serve()
	return s
}

// newServer builds the state without a listener, so the handler can be
// exercised directly (fuzzing) without a network.
func newServer(opts Options) *Server {
	maxBody := opts.MaxResponseBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxResponseBytes
	}
	maxBody = min(maxBody, math.MaxInt64-1) // body reads use limit+1
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		maxBody:      maxBody,
		log:          logger,
		serveDone:    make(chan struct{}),
		queue:        make(chan *call, 1),
		readyCh:      make(chan struct{}),
		initFailedCh: make(chan struct{}),
		closedCh:     make(chan struct{}),
		seen:         make(map[string]struct{}),
	}
}

func (s *Server) serve() {
	defer close(s.serveDone)
	err := s.srv.Serve(s.ln)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return
	}
	// The runtime can no longer reach us, so nothing will ever answer:
	// behave as closed so a waiting Invoke returns instead of hanging.
	s.log.Error("runtime API stopped serving", "err", err)
	s.markClosed()
	_ = s.srv.Close()
}

// WaitReady blocks until the runtime finished init, which it signals with its
// first GET /next. It returns *InitError if the runtime reported an init
// error first, ErrClosed if the server was closed, or ctx.Err().
func (s *Server) WaitReady(ctx context.Context) error {
	select {
	case <-s.readyCh:
	case <-s.initFailedCh:
	case <-s.closedCh:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.initErr != nil:
		return s.initErr
	case s.ready:
		return nil
	case s.closed:
		return ErrClosed
	default:
		return ctx.Err()
	}
}

// Invoke hands inv to the pending (or next) GET /next and waits for the
// runtime's response or error for inv.RequestID.
//
// When ctx is done first it returns ctx.Err() unwrapped and abandons the
// invocation: if no GET /next took it yet it is dropped, otherwise later
// posts for its ID get 403. The runtime is then still busy with it, so the
// caller is expected to kill the runtime (as AWS does on timeout).
// It returns ErrClosed after Close, *InitError after an init error, and
// ErrBusy if another Invoke is in progress.
func (s *Server) Invoke(ctx context.Context, inv Invocation) (Result, error) {
	if err := validate(ctx, &inv); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	c, err := s.enqueue(inv)
	if err != nil {
		return Result{}, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
	case <-s.closedCh:
	case <-s.initFailedCh:
	}
	return s.finish(ctx, c)
}

// validate checks what the runtime needs to route its answer back, and fills
// a missing deadline from ctx because aws-lambda-go fails an invocation
// whose deadline header does not parse.
func validate(ctx context.Context, inv *Invocation) error {
	if inv.RequestID == "" {
		return errors.New("runtimeapi: invocation has no request ID")
	}
	for i := 0; i < len(inv.RequestID); i++ {
		if inv.RequestID[i] == '/' {
			return fmt.Errorf("runtimeapi: request ID %q contains '/'", inv.RequestID)
		}
	}
	if inv.Deadline.IsZero() {
		d, ok := ctx.Deadline()
		if !ok {
			return fmt.Errorf("runtimeapi: invocation %s has no deadline and neither has its context", inv.RequestID)
		}
		inv.Deadline = d
	}
	return nil
}

// enqueue makes inv the current call and offers it to GET /next.
func (s *Server) enqueue(inv Invocation) (*call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.initErr != nil:
		return nil, s.initErr
	case s.current != nil:
		return nil, ErrBusy
	}
	c := &call{inv: inv, done: make(chan struct{}), state: stateQueued}
	select {
	case s.queue <- c:
	default:
		// Unreachable while the queue only holds s.current; fail loudly
		// rather than block while holding the lock.
		return nil, errors.New("runtimeapi: internal error: invocation queue not empty")
	}
	s.current = c
	return c, nil
}

// finish ends the current call: with its result if the runtime answered
// (an answer that raced with cancellation still wins), else by abandoning it.
func (s *Server) finish(ctx context.Context, c *call) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = nil
	if c.state == stateAnswered {
		return c.result, nil
	}
	delivered := c.state != stateQueued
	c.state = stateAbandoned
	// Drop it if no GET /next took it; a handler that already took it sees
	// the abandoned state and goes back to waiting.
	select {
	case <-s.queue:
	default:
	}
	var err error
	switch {
	case s.closed:
		err = ErrClosed
	case s.initErr != nil:
		err = s.initErr
	default:
		err = ctx.Err()
	}
	if !delivered {
		err = fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	return Result{}, err
}

// Close stops serving: the listener and every connection are closed, which
// releases pending GET /next calls, and a pending Invoke returns ErrClosed.
// Close is idempotent.
func (s *Server) Close() error {
	if !s.markClosed() {
		<-s.serveDone
		return nil
	}
	err := s.srv.Close()
	// srv.Close only closes listeners Serve has started on; close ln too in
	// case Close raced ahead of the serving goroutine.
	if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
		err = lerr
	}
	<-s.serveDone
	if err != nil {
		return fmt.Errorf("runtimeapi: close: %w", err)
	}
	return nil
}

// markClosed flips the closed state once and reports whether it did.
func (s *Server) markClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	close(s.closedCh)
	return true
}

// rememberLocked records a delivered request ID so a late or duplicate post
// for it gets 403 instead of 400.
func (s *Server) rememberLocked(id string) {
	if _, ok := s.seen[id]; ok {
		return
	}
	if len(s.seenRing) < rememberedIDs {
		s.seenRing = append(s.seenRing, id)
	} else {
		delete(s.seen, s.seenRing[s.seenNext])
		s.seenRing[s.seenNext] = id
	}
	s.seenNext = (s.seenNext + 1) % rememberedIDs
	s.seen[id] = struct{}{}
}

// Refused is how many connections were closed for passing MaxConns.
func (s *Server) Refused() int64 { return s.ln.refused.Load() }

// connLimit is a listener that serves at most max connections at once. One
// past that is reset as soon as it is accepted: it costs the worker a
// descriptor for a moment and no goroutine, and the runtime that opened it
// sees the refusal at once rather than hanging.
type connLimit struct {
	net.Listener
	max     int32
	open    atomic.Int32
	refused atomic.Int64
	log     *slog.Logger
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		if l.refused.Add(1) == 1 {
			l.log.Warn("runtime API: the runtime opened too many connections; refusing those past the limit", "max", l.max)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset: nothing lingers in TIME_WAIT
		}
		_ = c.Close()
	}
}

// limitedConn gives its place back to the listener when closed.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
