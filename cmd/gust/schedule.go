package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

// scheduleView is a schedule as printed with -o json.
type scheduleView struct {
	Name      string          `json:"name"`
	Function  string          `json:"function"`
	Cron      string          `json:"cron"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Fired     int64           `json:"fired"`
	LastFired string          `json:"last_fired"`
}

func scheduleJSON(s *gustv1.ScheduleInfo) scheduleView {
	v := scheduleView{Name: s.GetName(), Function: s.GetFunction(), Cron: s.GetCron(), Payload: rawJSON(s.GetPayload()), Fired: s.GetFired()}
	if s.GetLastFiredUnixNano() > 0 {
		v.LastFired = time.Unix(0, s.GetLastFiredUnixNano()).UTC().Format(time.RFC3339Nano)
	}
	return v
}

func scheduleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedule",
		Short:   "Run functions on cron schedules (each tick fires once, across leader failover)",
		Example: "  gust schedule add nightly --function report --cron '0 3 * * *'\n  gust schedule ls",
	}
	var function, expr, payload string
	add := &cobra.Command{
		Use:   "add NAME --function F --cron EXPR [--payload JSON]",
		Short: "Create or replace a schedule (robfig/cron syntax, @every 1s included)",
		Example: `  gust schedule add tick --function hello --cron '@every 1s'
  gust schedule add nightly --function report --cron '0 3 * * *' --payload '{"full":true}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if function == "" || expr == "" {
				return fmt.Errorf("--function and --cron are required")
			}
			return withClient(g, func(c *clientCtx) error {
				s, err := c.AddSchedule(c.ctx, &gustv1.ScheduleInfo{Name: args[0], Function: function, Cron: expr, Payload: []byte(payload)})
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(scheduleJSON(s))
				}
				fmt.Fprintf(g.stdout, "schedule %s: %s runs %s\n", s.GetName(), s.GetCron(), s.GetFunction())
				return nil
			})
		},
	}
	add.Flags().StringVar(&function, "function", "", "function to invoke (asynchronously) on each tick")
	add.Flags().StringVar(&expr, "cron", "", "cron expression, e.g. '*/5 * * * *' or '@every 1s'")
	add.Flags().StringVar(&payload, "payload", "", "event JSON sent on each tick (default {})")
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List schedules with how often each fired",
		Example: "  gust schedule ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withClient(g, func(c *clientCtx) error {
				list, err := c.ListSchedules(c.ctx)
				if err != nil {
					return err
				}
				if g.json() {
					out := make([]scheduleView, 0, len(list))
					for _, s := range list {
						out = append(out, scheduleJSON(s))
					}
					return g.printJSON(out)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tFUNCTION\tCRON\tFIRED\tLAST FIRED")
				for _, s := range list {
					v := scheduleJSON(s)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", v.Name, v.Function, v.Cron, v.Fired, v.LastFired)
				}
				return tw.Flush()
			})
		},
	}
	rm := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Delete a schedule",
		Example: "  gust schedule rm tick",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				if err := c.RemoveSchedule(c.ctx, args[0]); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"removed": args[0]})
				}
				fmt.Fprintf(g.stdout, "removed schedule %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, ls, rm)
	return cmd
}
