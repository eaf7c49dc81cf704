// Package egress gives sandboxes a way out to the network: a per-worker
// bridge, one veth per sandbox namespace, NAT through the worker host and an
// nftables table that keeps sandboxes away from denied destinations, from
// the host itself and from each other, and keeps inbound connections out.
//
// It owns only the links whose names start with its prefix ("gu"+Name) and
// the nftables table named "gust-egress-"+Name in the namespace Open ran in;
// it never touches other links, routes or tables. It knows nothing of
// sandboxes or the worker: callers hand it a namespace file.
package egress
