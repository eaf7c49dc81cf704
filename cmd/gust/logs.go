package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

// logStampLen is the length of a line's time prefix and its space,
// "2006-01-02T15:04:05.000Z ".
const logStampLen = len("2006-01-02T15:04:05.000Z ")

func logsCmd(g *globals) *cobra.Command {
	var (
		follow, timestamps bool
		since              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show what a function printed, with Lambda's START, END and REPORT lines",
		Long: "Show a function's retained log from every worker that ran it: the function's stdout and\n" +
			"stderr and a START, END and REPORT line per invocation (Duration, Billed Duration, Memory\n" +
			"Size, Max Memory Used, Init Duration). Each worker keeps the last 32 MB or so per function\n" +
			"(gustd --log-retention-mb). Every line is stamped with when the worker read it: --since\n" +
			"keeps only the lines written in the last DUR, --timestamps shows the stamps (UTC).\n" +
			"With -o json, one object per line: {\"worker\":…,\"time\":…,\"line\":…}.",
		Example: "  gust logs hello\n" +
			"  gust logs hello --since 10m --timestamps\n" +
			"  gust logs hello -f      # and go on as it writes, until Ctrl-C",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if since < 0 {
				return fmt.Errorf("--since must not be negative")
			}
			req := &gustv1.GetLogsRequest{Name: args[0], Follow: follow, SinceMs: since.Milliseconds(), Timestamps: timestamps || g.json()}
			return withClient(g, func(c *clientCtx) error {
				enc := json.NewEncoder(g.stdout)
				return c.StreamLogs(c.ctx, req, func(worker string, data []byte) error {
					if !g.json() {
						_, err := g.stdout.Write(data)
						return err
					}
					for _, line := range bytes.SplitAfter(data, []byte("\n")) {
						if len(line) == 0 {
							continue
						}
						line = bytes.TrimSuffix(line, []byte("\n"))
						stamp := ""
						if len(line) >= logStampLen && line[logStampLen-1] == ' ' {
							if _, err := time.Parse("2006-01-02T15:04:05.000Z", string(line[:logStampLen-1])); err == nil {
								stamp, line = string(line[:logStampLen-1]), line[logStampLen:]
							}
						}
						if err := enc.Encode(map[string]string{"worker": worker, "time": stamp, "line": string(line)}); err != nil {
							return err
						}
					}
					return nil
				})
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing what the function writes, until interrupted")
	f.DurationVar(&since, "since", 0, "only lines written in the last DUR, such as 10m (0: all retained)")
	f.BoolVar(&timestamps, "timestamps", false, "start each line with when it was written (UTC)")
	return cmd
}
