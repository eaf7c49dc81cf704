// Package runtimeapi serves the AWS Lambda Runtime API (version 2018-06-01)
// for exactly one sandbox.
//
// It owns the HTTP protocol between the worker and a function's runtime
// (GET /next, POST .../response, POST .../error, POST /runtime/init/error) and
// the hand-off of one invocation at a time, and bounds what one runtime can
// take of the worker: connections, header and body sizes, idle connections.
// Status codes, headers and error bodies mirror AWS, because runtimes such as
// aws-lambda-go exit as soon as a status code differs from what AWS would
// send.
//
// It must not know about sandboxes, containers, namespaces or processes: the
// caller hands it a net.Listener (wherever that listener lives) and cancels
// the Invoke context when the runtime process dies or times out.
package runtimeapi
