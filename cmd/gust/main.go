// Command gust is gust's command-line interface. It talks gRPC to the
// coordinators through the client SDK.
package main

import (
	"errors"
	"fmt"
	"os"

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
			fmt.Fprintf(os.Stderr, "%s: %s\n", e.Name, e.Message)
		} else {
			fmt.Fprintln(os.Stderr, "gust:", err)
		}
		os.Exit(exitPlatformError)
	}
}

func asAPIError(err error) (*client.Error, bool) {
	var e *client.Error
	ok := errors.As(err, &e)
	return e, ok
}
