package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ErrNotRoot is returned by Run when it is not root: sandboxes and runc
// need it.
var ErrNotRoot = errors.New("gust bench starts gustd sandboxes and runc containers: run it as root")

// env is what the modes of one run share.
type env struct {
	opts      Options
	log       *slog.Logger
	work      string
	hc        *http.Client // the one HTTP client, for gust and RIE alike
	bootstrap string       // absolute path
	zip       []byte       // the bootstrap as a Lambda code zip
	create    createBody
}

// Run runs the modes of opts in order and returns the report. When a mode
// fails, the report holds every measurement taken so far and the error
// says which mode failed.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Payload) == 0 {
		opts.Payload = DefaultOptions().Payload
	}
	if err := checkBinaries(&opts); err != nil {
		return nil, err
	}
	e := &env{opts: opts, log: opts.Logger, hc: newHTTPClient(max(256, 4*opts.Clients, opts.samples(ModeBurst)))}
	defer e.hc.CloseIdleConnections()
	var err error
	if e.bootstrap, err = filepath.Abs(opts.Bootstrap); err != nil {
		return nil, err
	}
	if e.zip, err = zipBootstrap(e.bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	e.create = newCreateBody(e.zip)
	e.work = opts.WorkDir
	if e.work == "" {
		if e.work, err = os.MkdirTemp("", "gust-bench-"); err != nil {
			return nil, err
		}
		if !opts.KeepWork {
			defer os.RemoveAll(e.work)
		}
	} else if err := os.MkdirAll(e.work, 0o755); err != nil {
		return nil, err
	}

	e.log.Info("work directory", "path", e.work, "kept", opts.KeepWork || opts.WorkDir != "")
	rep := &Report{Machine: probeMachine(ctx, opts.Runc), Run: runInfo(opts)}
	started := time.Now()
	defer func() { rep.ElapsedS = time.Since(started).Seconds() }()
	modes := map[string]func(context.Context) (*section, error){
		ModeCold: e.cold, ModeWarm: e.warm, ModeBurst: e.burst, ModeTrace: e.trace,
		ModeCluster: e.cluster, ModeQuotas: e.quotas, ModeAsync: e.async,
	}
	for _, mode := range opts.Modes {
		e.log.Info("mode", "mode", mode)
		s, err := modes[mode](ctx)
		if s != nil {
			rep.add(s)
		}
		if err != nil {
			rep.Figures = figures(rep.Measurements)
			return rep, fmt.Errorf("%s: %w", mode, err)
		}
		if err := ctx.Err(); err != nil {
			rep.Figures = figures(rep.Measurements)
			return rep, err
		}
	}
	rep.Figures = figures(rep.Measurements)
	return rep, nil
}

// section is what one mode produced.
type section struct {
	measurements []*Measurement
	notes        []string
}

func (s *section) add(mode string, ms ...*Measurement) {
	for _, m := range ms {
		if m.Mode == "" {
			m.Mode = mode
		}
		s.measurements = append(s.measurements, m)
	}
}

func (s *section) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// checkBinaries resolves each binary the modes need, so a missing one
// fails before anything runs.
func checkBinaries(o *Options) error {
	need := map[string]bool{}
	for _, m := range o.Modes {
		need["gustd"], need["bootstrap"] = true, true
		switch m {
		case ModeCold:
			need["runc"], need["rie"] = true, true
		case ModeWarm:
			need["rie"] = true
		case ModeBurst:
			need["runc"] = true
		}
	}
	for _, b := range []struct {
		key, hint string
		path      *string
	}{
		{"gustd", "build it with make bin/gustd, or pass --gustd", &o.Gustd},
		{"bootstrap", "build it with make bin/hello/bootstrap, or pass --bootstrap", &o.Bootstrap},
		{"runc", "apt-get install runc", &o.Runc},
		{"rie", "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@latest, or pass --rie", &o.RIE},
	} {
		if !need[b.key] {
			continue
		}
		p, err := exec.LookPath(*b.path)
		if err != nil {
			return fmt.Errorf("%s %q not found (%s): %w", b.key, *b.path, b.hint, err)
		}
		*b.path = p
	}
	return nil
}

// progress logs every tenth of n.
func (e *env) progress(what string, i, n int) {
	if step := max(n/10, 1); (i+1)%step == 0 || i+1 == n {
		e.log.Info(what, "done", i+1, "of", n)
	}
}

// gustd starts a fresh `gustd dev` for one mode; stop it when done.
func (e *env) gustd(ctx context.Context, name string, extra ...string) (*gustd, *lambdaClient, error) {
	g, err := startGustd(ctx, e.work, e.opts.Gustd, name, extra...)
	if err != nil {
		return nil, nil, err
	}
	return g, &lambdaClient{hc: e.hc, base: "http://" + g.httpAddr}, nil
}

// alive fails once gustd has exited under the bench.
func (g *gustd) alive() error {
	select {
	case <-g.exited:
		return fmt.Errorf("gustd exited (%v):\n%s", g.waitErr, g.tail())
	default:
		return nil
	}
}
