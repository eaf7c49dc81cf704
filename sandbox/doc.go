// Package sandbox runs one function process in an isolated Linux container.
//
// It is the only package that imports libcontainer. It owns namespaces,
// cgroups, mounts, the seccomp filter and the runtime's root filesystem. It
// knows nothing of functions, invocations or the Runtime API protocol: it
// hands the caller a listener inside the sandbox's network namespace and the
// caller serves whatever it likes on it.
package sandbox
