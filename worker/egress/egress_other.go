//go:build !linux

package egress

import (
	"errors"
	"net/netip"
	"os"
)

// ErrUnsupported is returned by Open and Reap outside Linux.
var ErrUnsupported = errors.New("egress networking needs Linux")

// Network is Linux-only; elsewhere Open always fails.
type Network struct{}

// Open fails outside Linux.
func Open(Config) (*Network, error) { return nil, ErrUnsupported }

// Reap fails outside Linux.
func Reap(string) error { return ErrUnsupported }

// Gateway is never reached outside Linux.
func (*Network) Gateway() netip.Addr { return netip.Addr{} }

// Attach fails outside Linux.
func (*Network) Attach(*os.File) (Endpoint, error) { return Endpoint{}, ErrUnsupported }

// Detach fails outside Linux.
func (*Network) Detach(Endpoint) error { return ErrUnsupported }

// Close fails outside Linux.
func (*Network) Close() error { return ErrUnsupported }
