// Package bench measures gust side by side with its references, in one run
// on one machine, and reports every figure as a ratio to the reference it
// was measured against. `gust bench` (cmd/gust/bench.go) drives it; `make
// bench` runs that as root.
//
// What is measured, by mode:
//
//	cold    a fresh function per sample: CreateFunction, then the first
//	        Invoke, over gust's Lambda REST API (and over gRPC, labelled);
//	        references `runc run` of /bin/true, a plain fork/exec of
//	        /bin/true and of the bootstrap (timed to its first Runtime API
//	        request, on a stub served in-process), aws-lambda-rie's first
//	        invoke
//	warm    one warm function, one client, over HTTP (and gRPC) against
//	        aws-lambda-rie serving the same bootstrap to the same HTTP client;
//	        then N clients, closed loop or open loop (Poisson arrivals), for a
//	        duration, against aws-lambda-rie's serial throughput
//	burst   K fresh functions invoked at once (or at a Poisson rate): cold
//	        starts per second on one worker, against K concurrent `runc run`
//	trace   a CSV of (offset, function) replayed open loop at its offsets
//	cluster three coordinators and a worker: invoke via the leader and via a
//	        follower (gRPC)
//	quotas  closed-loop throughput with admission on and off (gRPC)
//	async   durable InvokeAsync enqueue rate and acknowledgement-to-start
//
// Latencies are wall time at the client. In open loop a sample is timed
// from its scheduled arrival, not from when the request went out, so a
// slow server cannot hide its queueing (no coordinated omission).
//
// Owns: starting the processes it measures (gustd, aws-lambda-rie, runc,
// bootstraps) in a private work directory, driving load, statistics, and
// the report (Markdown, JSON, SVG chart). Must not touch: gust's internals;
// it is a client like any other, over HTTP and gRPC.
package bench
