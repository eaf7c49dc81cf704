// Package codezip owns the safety of function code archives: it decides
// whether an uploaded .zip is acceptable (Validate), unpacks an accepted
// archive into a directory without ever writing outside it (Extract), builds
// deterministic archives from a folder for the CLI (ZipDir) and computes the
// content address of an archive (Digest).
//
// It deliberately knows nothing about functions, runtimes, sandboxes, storage
// or API error codes: callers map ErrInvalid / ErrTooLarge to their own
// errors and decide where archives and extracted trees live. Keeping it that
// narrow lets the coordinator (refusing uploads) and the workers (unpacking
// into the read-only /var/task cache) share one set of rules, so an archive
// the coordinator accepted is one a worker can unpack.
package codezip
