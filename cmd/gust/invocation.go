package main

import (
	"encoding/json"
	"fmt"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

// invocationView is an async invocation as printed with -o json.
type invocationView struct {
	ID              string          `json:"id"`
	Function        string          `json:"function"`
	Qualifier       string          `json:"qualifier,omitempty"`
	Status          string          `json:"status"`
	Attempts        int32           `json:"attempts"`
	Payload         json.RawMessage `json:"payload"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error"`
	ExecutedVersion string          `json:"executed_version,omitempty"`
	Enqueued        string          `json:"enqueued"`
	Finished        string          `json:"finished,omitempty"`
}

func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

func invocationJSON(inv *gustv1.Invocation) invocationView {
	v := invocationView{ID: inv.GetId(), Function: inv.GetFunction(), Qualifier: inv.GetQualifier(), Status: inv.GetStatus(),
		Attempts: inv.GetAttempts(), Payload: rawJSON(inv.GetPayload()), Result: rawJSON(inv.GetResult()), Error: inv.GetError(),
		ExecutedVersion: inv.GetExecutedVersion(), Enqueued: time.Unix(0, inv.GetEnqueuedUnixNano()).UTC().Format(time.RFC3339Nano)}
	if inv.GetFinishedUnixNano() > 0 {
		v.Finished = time.Unix(0, inv.GetFinishedUnixNano()).UTC().Format(time.RFC3339Nano)
	}
	return v
}

func invocationCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "invocation",
		Short:   "Inspect asynchronous invocations",
		Example: "  id=$(gust invoke hello --async --payload '{}')\n  gust invocation get $id",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "get ID",
		Short:   "Show an asynchronous invocation: queued, running, succeeded or failed",
		Example: "  gust invocation get 3f0c…-… -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				inv, err := c.GetInvocation(c.ctx, args[0])
				if err != nil {
					return err
				}
				v := invocationJSON(inv)
				if g.json() {
					return g.printJSON(v)
				}
				fmt.Fprintf(g.stdout, "id:        %s\nfunction:  %s\nstatus:    %s\nattempts:  %d\nenqueued:  %s\n", v.ID, v.Function, v.Status, v.Attempts, v.Enqueued)
				if v.Finished != "" {
					fmt.Fprintf(g.stdout, "finished:  %s\n", v.Finished)
				}
				if v.Error != "" {
					fmt.Fprintf(g.stdout, "error:     %s\n", v.Error)
				}
				if len(v.Result) > 0 {
					fmt.Fprintf(g.stdout, "result:    %s\n", v.Result)
				}
				return nil
			})
		},
	})
	return cmd
}
