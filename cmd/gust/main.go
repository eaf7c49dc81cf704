// Command gust is gust's command-line interface. It talks gRPC to the
// coordinators through the client SDK.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gustfaas/gust/client"
)

// Exit codes, as DESIGN.md sets them.
const (
	exitOK            = 0
	exitPlatformError = 1
	exitFunctionError = 2
)

// functionErrorExit makes main exit 2 after a function error was printed.
var errFunctionError = errors.New("function error")

func main() {
	err := rootCmd().Execute()
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.Is(err, errFunctionError):
		os.Exit(exitFunctionError)
	default:
		if e, ok := asAPIError(err); ok {
			fmt.Fprintf(os.Stderr, "%s: %s%s\n", e.Name, e.Message, tlsHint(e.Message))
		} else {
			fmt.Fprintln(os.Stderr, "gust:", err)
		}
		os.Exit(exitPlatformError)
	}
}

// tlsHint explains the error a plaintext client gets from a TLS server:
// the server closes the connection before gRPC's preface arrives.
func tlsHint(msg string) string {
	if strings.Contains(msg, "error reading server preface") {
		return " (does the cluster use TLS? give --tls-ca)"
	}
	return ""
}

func asAPIError(err error) (*client.Error, bool) {
	var e *client.Error
	ok := errors.As(err, &e)
	return e, ok
}
