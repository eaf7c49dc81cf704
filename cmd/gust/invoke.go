package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

func invokeCmd(g *globals) *cobra.Command {
	var (
		payload        string
		async          bool
		logTail        bool
		idempotencyKey string
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME[:QUALIFIER] [-]",
		Short: "Invoke a function and print its response",
		Long: `Invoke a function synchronously. The response payload goes to stdout (exit 0).
A function error prints its error object on stdout and exits 2; a platform
error prints its name and message on stderr and exits 1.`,
		Example: `  gust invoke hello --payload '{"name":"gust"}'
  gust invoke hello --payload @event.json -o json
  echo '{}' | gust invoke hello -`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			body, err := readPayload(g, payload, args[1:])
			if err != nil {
				return err
			}
			name, qualifier, _ := strings.Cut(args[0], ":")
			c, ctx, done, err := g.connect()
			if err != nil {
				return err
			}
			defer done()
			if async {
				id, err := c.InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: name, Qualifier: qualifier, Payload: body, IdempotencyKey: idempotencyKey})
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"invocation_id": id})
				}
				fmt.Fprintln(g.stdout, id)
				return nil
			}
			res, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: name, Qualifier: qualifier, Payload: body, LogTail: logTail})
			if err != nil {
				return err
			}
			if g.json() {
				if err := g.printJSON(envelope(res)); err != nil {
					return err
				}
			} else {
				g.stdout.Write(res.GetPayload())
				if n := len(res.GetPayload()); n == 0 || res.GetPayload()[n-1] != '\n' {
					fmt.Fprintln(g.stdout)
				}
				if logTail {
					fmt.Fprint(g.stderr, res.GetLogTail())
				}
			}
			if res.GetFunctionError() != "" {
				return errFunctionError
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payload, "payload", "", "event JSON, or @FILE to read it from a file")
	f.BoolVar(&async, "async", false, "queue the event durably and print its invocation id (see gust invocation get)")
	f.StringVar(&idempotencyKey, "idempotency-key", "", "with --async: a retried request with the same key returns the first id")
	f.BoolVar(&logTail, "log", false, "also return the last 4 KB of the function's log")
	return cmd
}

// readPayload takes --payload JSON, --payload @FILE or "-" for stdin.
func readPayload(g *globals, flag string, rest []string) ([]byte, error) {
	if len(rest) == 1 {
		if rest[0] != "-" {
			return nil, fmt.Errorf("unexpected argument %q (use - to read the payload from stdin)", rest[0])
		}
		if flag != "" {
			return nil, fmt.Errorf("give the payload either with --payload or on stdin, not both")
		}
		return io.ReadAll(g.stdin)
	}
	if strings.HasPrefix(flag, "@") {
		data, err := os.ReadFile(flag[1:])
		if err != nil {
			return nil, fmt.Errorf("--payload: %w", err)
		}
		return data, nil
	}
	return []byte(flag), nil
}

// invokeEnvelope is the -o json output of invoke, field for field as DESIGN.md sets it.
type invokeEnvelope struct {
	RequestID        string          `json:"request_id"`
	ExecutedVersion  string          `json:"executed_version"`
	ColdStart        bool            `json:"cold_start"`
	Worker           string          `json:"worker"`
	Sandbox          string          `json:"sandbox"`
	DurationMs       float64         `json:"duration_ms"`
	InitDurationMs   float64         `json:"init_duration_ms"`
	BilledDurationMs int64           `json:"billed_duration_ms"`
	MaxMemoryUsedMb  int64           `json:"max_memory_used_mb"`
	FunctionError    string          `json:"function_error"`
	Payload          json.RawMessage `json:"payload"`
	LogTail          string          `json:"log_tail"`
	// ColdStartReason extends DESIGN's envelope: why a cold start was needed.
	ColdStartReason string `json:"cold_start_reason,omitempty"`
}

func envelope(r *gustv1.InvokeResponse) invokeEnvelope {
	payload := json.RawMessage(r.GetPayload())
	if !json.Valid(payload) {
		// A function may answer with bytes that are not JSON; keep them as a string.
		s, _ := json.Marshal(string(r.GetPayload()))
		payload = s
	}
	return invokeEnvelope{
		RequestID: r.GetRequestId(), ExecutedVersion: r.GetExecutedVersion(), ColdStart: r.GetColdStart(),
		Worker: r.GetWorker(), Sandbox: r.GetSandbox(), DurationMs: r.GetDurationMs(), InitDurationMs: r.GetInitDurationMs(),
		BilledDurationMs: r.GetBilledDurationMs(), MaxMemoryUsedMb: r.GetMaxMemoryUsedMb(), FunctionError: r.GetFunctionError(),
		Payload: payload, LogTail: r.GetLogTail(), ColdStartReason: r.GetColdStartReason(),
	}
}
