// Package auth checks API tokens at a coordinator's edge (with --auth): it
// finds the token in a gRPC call or an HTTP request, looks its hash up and
// puts the caller's Principal in the context, or refuses the call as
// unauthenticated. It owns the token format and hashing. It does not decide
// what a tenant may touch: that is the coordinator's tenancy layer.
//
// Only the user-facing API is checked: gRPC services of package gust.v1
// and the HTTP front. The internal node-to-node services (gust.node.v1),
// gRPC health and reflection pass unchecked; mutual TLS protects those.
package auth
