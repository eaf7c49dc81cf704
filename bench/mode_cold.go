package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// cold times the first invoke of a fresh function, side by side with its
// references. The subjects take turns, sample by sample, so machine noise
// falls on all of them alike.
func (e *env) cold(ctx context.Context) (*section, error) {
	n := e.opts.samples(ModeCold)
	bundle, err := newRuncBundle(ctx, e.opts.Runc, e.work)
	if err != nil {
		return nil, err
	}
	stub, err := startRuntimeStub(e.opts.Payload)
	if err != nil {
		return nil, err
	}
	defer stub.Close()
	stubEnv := bootstrapEnv(stub.Addr())
	g, lc, err := e.gustd(ctx, "cold")
	if err != nil {
		return nil, err
	}
	defer g.stop(30 * time.Second)
	gc, err := client.New([]string{g.grpcAddr}, "")
	if err != nil {
		return nil, err
	}
	defer gc.Close()
	up, err := gc.UploadCode(ctx, bytes.NewReader(e.zip))
	if err != nil {
		return nil, fmt.Errorf("upload code: %w", err)
	}

	runc, execTrueRec, execNext, execAnswer, rieRec := newRecorder(), newRecorder(), newRecorder(), newRecorder(), newRecorder()
	create, invoke, total, grpcPut, grpcInvoke := newRecorder(), newRecorder(), newRecorder(), newRecorder(), newRecorder()
	timed := func(rec *recorder, f func() (time.Duration, error)) {
		began := time.Now()
		d, err := f()
		rec.add(began, d, ColdUnknown, err)
	}
	// Sample -1 warms caches (page cache, gust's code cache) and is not kept.
	for i := -1; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		keep := func(r *recorder) *recorder {
			if i < 0 {
				return newRecorder()
			}
			return r
		}
		timed(keep(runc), func() (time.Duration, error) { return bundle.run(ctx) })
		timed(keep(execTrueRec), func() (time.Duration, error) { return execTrue(ctx) })

		began := time.Now()
		toNext, toAnswer, err := execBootstrap(ctx, stub, e.bootstrap, stubEnv)
		keep(execNext).add(began, toNext, ColdYes, err)
		keep(execAnswer).add(began, toAnswer, ColdYes, err)

		began = time.Now()
		d, cold, err := e.rieCold(ctx, i)
		keep(rieRec).add(began, d, cold, err)

		// gust over HTTP: CreateFunction, then the first Invoke.
		name := fmt.Sprintf("cold-http-%d", i+1)
		body := e.create.For(name)
		began = time.Now()
		err = lc.CreateFunction(ctx, body)
		dCreate := time.Since(began)
		keep(create).add(began, dCreate, ColdUnknown, err)
		if err == nil {
			t0 := time.Now()
			out, err := lc.Invoke(ctx, name, e.opts.Payload)
			dInvoke := time.Since(t0)
			cold := coldFromPayload(out)
			keep(invoke).add(t0, dInvoke, cold, err)
			keep(total).add(began, dCreate+dInvoke, cold, err)
			// Keep the pool and the host's memory small between samples.
			if err := lc.DeleteFunction(ctx, name); err != nil {
				e.log.Warn("delete", "function", name, "err", err)
			}
		}

		// gust over gRPC, as `gust invoke` does (the code is uploaded once).
		name = fmt.Sprintf("cold-grpc-%d", i+1)
		began = time.Now()
		_, err = gc.PutFunction(ctx, &gustv1.FunctionConfig{Name: name}, up.GetDigest())
		keep(grpcPut).add(began, time.Since(began), ColdUnknown, err)
		if err != nil {
			keep(grpcInvoke).add(time.Now(), 0, ColdUnknown, err)
		} else {
			t0 := time.Now()
			res, err := gc.Invoke(ctx, &gustv1.InvokeRequest{Function: name, Payload: e.opts.Payload})
			d := time.Since(t0)
			cold := ColdNo
			if res.GetColdStart() {
				cold = ColdYes
			}
			if err == nil && res.GetFunctionError() != "" {
				err = &functionError{Kind: res.GetFunctionError(), Payload: string(res.GetPayload())}
			}
			keep(grpcInvoke).add(t0, d, cold, err)
			if err := gc.DeleteFunction(ctx, name); err != nil {
				e.log.Warn("delete", "function", name, "err", err)
			}
		}
		if err := g.alive(); err != nil {
			return nil, err
		}
		if i >= 0 {
			e.progress("cold samples", i, n)
		}
	}

	s := &section{}
	ref := "cold.runc"
	mk := func(rec *recorder, key, name, client string) *Measurement {
		m := rec.measurement(key, name, -1)
		m.Client = client
		if key != ref {
			m.Reference = ref
		} else {
			m.IsReference = true
		}
		return m
	}
	httpInvoke := mk(invoke, "cold.gust.http.invoke", "gust first invoke of a fresh function (HTTP)", "http")
	grpcM := mk(grpcInvoke, "cold.gust.grpc.invoke", "gust first invoke of a fresh function (gRPC client)", "grpc")
	createM := mk(create, "cold.gust.http.create", "gust CreateFunction (HTTP, zip in the body)", "http")
	putM := mk(grpcPut, "cold.gust.grpc.put", "gust PutFunction by code digest (gRPC, code uploaded once before)", "grpc")
	createM.Reference, putM.Reference = "", ""
	s.add(ModeCold,
		mk(runc, ref, "`runc run` /bin/true", "process"),
		mk(execTrueRec, "cold.exec.true", "fork/exec /bin/true (process floor)", "process"),
		mk(execNext, "cold.exec.bootstrap.next", "fork/exec bootstrap → first /next (runtime start-up floor)", "process"),
		mk(execAnswer, "cold.exec.bootstrap.answer", "fork/exec bootstrap → first answer (no isolation)", "process"),
		mk(rieRec, "cold.rie.invoke", "aws-lambda-rie first invoke (HTTP)", "http"),
		createM,
		httpInvoke,
		mk(total, "cold.gust.http.total", "gust CreateFunction + first invoke (HTTP)", "http"),
		putM,
		grpcM,
	)
	for _, m := range []*Measurement{httpInvoke, grpcM} {
		if w := m.Summary.WarmStarts; w > 0 {
			s.note("%s: %d of %d first invokes of a fresh function were served warm (a sandbox reused across functions?)", m.Key, w, m.Summary.Count)
		}
		if u := m.Summary.Count - m.Summary.ColdStarts - m.Summary.WarmStarts; u > 0 {
			s.note("%s: %d of %d answers did not say whether they were cold (the bootstrap is not examples/hello)", m.Key, u, m.Summary.Count)
		}
	}
	return s, nil
}

// rieCold starts a fresh aws-lambda-rie and times its first invoke, which
// starts the bootstrap.
func (e *env) rieCold(ctx context.Context, i int) (time.Duration, Cold, error) {
	r, err := startRIE(ctx, e.work, e.opts.RIE, e.bootstrap, e.hc, i+1)
	if err != nil {
		return 0, ColdUnknown, err
	}
	defer r.kill()
	start := time.Now()
	out, err := r.lambda.Invoke(ctx, rieFunction, e.opts.Payload)
	return time.Since(start), coldFromPayload(out), err
}
