// Package nodeauth is the handshake every connection to a node-internal
// port starts with: a coordinator's node port (Raft and PeerService) and a
// worker's gRPC port (WorkerService). Both ends prove, by HMAC over fresh
// nonces, that they hold the cluster secret (gustd --cluster-secret), so
// without TLS nobody who lacks the secret can write Raft entries, read
// code, take quota leases or run anything on a worker; the secret itself
// never crosses the wire. The dialler then names the protocol that
// follows (Raft or gRPC), which lets one port carry both. TLS, when on,
// runs inside the handshaken connection, unchanged.
//
// It owns the wire format and the listener that admits only handshaken
// connections; it knows nothing of Raft or gRPC beyond a protocol byte.
package nodeauth
