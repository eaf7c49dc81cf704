// Package lambdahttp serves the AWS Lambda REST API subset gust speaks over
// HTTP, so the unmodified aws-sdk-go-v2 Lambda client, pointed at a
// coordinator with BaseEndpoint, can invoke and deploy gust functions; and
// it serves function URLs.
//
// Routes (Handler answers every path; anything else is 404
// UnknownOperationException, a wrong method 405):
//
//	Invoke                  POST   /2015-03-31/functions/{name}/invocations
//	CreateFunction          POST   /2015-03-31/functions[/]               201  Manager
//	ListFunctions           GET    /2015-03-31/functions[/]               200  Manager
//	GetFunction             GET    /2015-03-31/functions/{name}           200  Manager
//	DeleteFunction          DELETE /2015-03-31/functions/{name}           204  Manager
//	UpdateFunctionCode      PUT    /2015-03-31/functions/{name}/code      200  Manager
//	PublishVersion          POST   /2015-03-31/functions/{name}/versions  201  Manager
//	CreateAlias             POST   /2015-03-31/functions/{name}/aliases   201  Manager
//	UpdateAlias             PUT    /2015-03-31/functions/{name}/aliases/{alias}  200  Manager
//	PutFunctionConcurrency  PUT    /2017-10-31/functions/{name}/concurrency      200  Manager
//	function URL            ANY    /fn/{name}[/path…]
//
// The management routes exist only when the Invoker is also a Manager.
//
// Owns: the Lambda REST wire format — how names, qualifiers, invocation
// type, log type, client context, payloads and management members arrive
// (path, query, headers, restJson1 bodies with the SDK's PascalCase member
// names; code zips as base64 ZipFile), how results leave (status, X-Amz-*
// headers, FunctionConfiguration/AliasConfiguration documents: ARNs, base64
// CodeSha256, LastModified as "2006-01-02T15:04:05.000+0000", timeouts in
// whole seconds), and how errors are shaped as restJson1 (X-Amzn-ErrorType
// plus {"Type":…,"message":…}) so the SDK decodes them into its typed
// errors. Also the function URL event (payload format 2.0, built on
// aws-lambda-go's events.LambdaFunctionURLRequest) and the mapping of the
// function's answer back to HTTP (statusCode/headers/cookies/body object,
// else any JSON as a 200 application/json body; a function error or an
// unmappable answer is 502 {"Message":"Internal Server Error"}).
//
// Request limits: Invoke 6 MiB (Event 256 KiB), function URL bodies 6 MiB,
// CreateFunction and UpdateFunctionCode 70 MiB (a 50 MB zip as base64),
// other management bodies 1 MiB; over them, 413 RequestTooLargeException
// before the body is read further. Bodies are buffered as they arrive, never
// from the declared Content-Length, and must arrive at an average of 4 KiB/s
// once 10 s have passed (Options.BodyGrace, MinBodyRate), or the request gets
// 408 RequestTimeoutException and its connection is closed.
//
// Must not touch: placement, Raft, workers, admission, quotas, validation of
// function configurations. Everything behind the wire is the Invoker's and
// Manager's (the coordinator's) business; this package only translates, so
// that the HTTP and gRPC front doors behave alike. It refuses what it cannot
// translate faithfully (S3 or image code, DryRun code updates, RevisionId
// and CodeSha256 preconditions) rather than ignore it.
//
// Security: SigV4 headers (Authorization, X-Amz-Date, …) are accepted and
// ignored, and function URLs are open (AuthType NONE); authentication, when
// gust has it, belongs to the mux around this handler, not here.
package lambdahttp
