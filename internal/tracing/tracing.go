// Package tracing sets up OpenTelemetry for a gust node and converts trace
// context between W3C (traceparent, what callers and exporters speak) and
// AWS X-Ray's header format (what a Lambda function sees as
// Lambda-Runtime-Trace-Id and _X_AMZN_TRACE_ID).
//
// Every invocation gets a trace id, exported or not: a function logs or
// forwards its trace id whether or not anyone collects spans, as on Lambda.
// Without an OTLP endpoint the tracer never samples, so spans cost an id
// and nothing else; with one, spans are batched and sent by OTLP/gRPC.
package tracing

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracer is the tracer gust's own spans come from.
func Tracer() trace.Tracer { return otel.Tracer("github.com/gustfaas/gust") }

// Config says where spans go.
type Config struct {
	// Endpoint is an OTLP/gRPC collector (host:port); empty exports nothing.
	Endpoint string
	// Insecure sends OTLP without TLS (a collector on loopback or a sidecar).
	Insecure bool
	// Service and Node name the resource spans come from.
	Service, Node string
}

// Setup installs the global tracer provider and the W3C propagator. The
// returned function flushes and stops the exporter.
func Setup(ctx context.Context, cfg Config) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	res := resource.NewSchemaless(attribute.String("service.name", cfg.Service), attribute.String("service.instance.id", cfg.Node))
	if cfg.Endpoint == "" {
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithResource(res)))
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter for %s: %w", cfg.Endpoint, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// XRayHeader is span context sc in the X-Ray trace header format Lambda
// passes to functions: Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled=0|1.
// A W3C trace id is 32 hex digits, as is an X-Ray root id without its
// version and dashes, so the id the caller sent is the id the function sees.
func XRayHeader(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	tid := sc.TraceID().String()
	sampled := 0
	if sc.IsSampled() {
		sampled = 1
	}
	return fmt.Sprintf("Root=1-%s-%s;Parent=%s;Sampled=%d", tid[:8], tid[8:], sc.SpanID().String(), sampled)
}
