// Package coordinator is gust's front door: it serves FunctionService and
// InvokeService over gRPC (and health over HTTP), keeps function state in
// raftstore and code in codestore, and sends each invocation to a worker.
//
// Plain Go services (functions.go, invoke.go) hold the logic; grpc.go is a
// thin adapter that maps errors to the wire once. The coordinator never
// touches sandboxes; it reaches workers only through the Worker interface.
package coordinator
