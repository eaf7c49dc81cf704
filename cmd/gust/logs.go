package main

import (
	"bytes"
	"encoding/json"

	"github.com/spf13/cobra"
)

func logsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show what a function printed, with Lambda's START, END and REPORT lines",
		Long: "Show a function's retained log from every worker that ran it: the function's stdout and\n" +
			"stderr and a START, END and REPORT line per invocation (Duration, Billed Duration, Memory\n" +
			"Size, Max Memory Used, Init Duration). Each worker keeps the last 16 MB or so per function.\n" +
			"With -o json, one object per line: {\"worker\":…,\"line\":…}.",
		Example: "  gust logs hello\n  gust logs hello -f      # and go on as it writes, until Ctrl-C",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				enc := json.NewEncoder(g.stdout)
				return c.Logs(c.ctx, args[0], follow, func(worker string, data []byte) error {
					if !g.json() {
						_, err := g.stdout.Write(data)
						return err
					}
					for _, line := range bytes.SplitAfter(data, []byte("\n")) {
						if len(line) == 0 {
							continue
						}
						if err := enc.Encode(map[string]string{"worker": worker, "line": string(bytes.TrimSuffix(line, []byte("\n")))}); err != nil {
							return err
						}
					}
					return nil
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the function writes, until interrupted")
	return cmd
}
