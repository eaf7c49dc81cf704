// Package tlsconf owns gust's transport security material: it makes a
// cluster CA and the certificates it signs (ECDSA P-256), loads the
// --tls-ca, --tls-cert and --tls-key files, and builds the *tls.Config and
// gRPC credentials every listener and dialer uses (TLS 1.3 only). A nil
// *TLS means TLS is off: every method then answers for plaintext, so
// callers wire one value through and never branch.
//
// Two kinds of certificate are issued. A node certificate (coordinators
// and workers) is usable as server and client and carries the
// organisational unit "gust-node"; a client certificate (the CLI, SDK
// users) is client-only and carries "gust-client". Node-internal services
// (Raft, PeerService, WorkerService) accept only verified node
// certificates, so a user's client certificate signed by the same CA
// cannot forge a Raft entry or a code copy.
//
// It must not know about coordinators or workers; it only says which
// peer certificates pass.
package tlsconf
