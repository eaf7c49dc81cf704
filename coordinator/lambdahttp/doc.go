// Package lambdahttp serves the AWS Lambda REST Invoke API
// (POST /2015-03-31/functions/{FunctionName}/invocations) over HTTP, so the
// unmodified aws-sdk-go-v2 Lambda client, pointed at a coordinator with
// BaseEndpoint, can invoke gust functions.
//
// Owns: the Lambda REST wire format for Invoke — how the function name,
// qualifier, invocation type, log type, client context and payload arrive
// (path, query, headers, body), how results leave (status, X-Amz-* headers,
// body), and how errors are shaped as restJson1 (X-Amzn-ErrorType plus
// {"Type":…,"message":…}) so the SDK decodes them into its typed errors.
//
// Must not touch: placement, Raft, workers, admission, quotas. Everything
// behind the wire is the Invoker's (the coordinator's) business; this package
// only translates, so that the HTTP and gRPC front doors behave alike.
//
// Security: SigV4 headers (Authorization, X-Amz-Date, …) are accepted and
// ignored; authentication, when gust has it, belongs to the mux around this
// handler, not here.
package lambdahttp
