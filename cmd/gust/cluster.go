package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// withClient runs fn with a connected client and a Ctrl-C-aware context.
func withClient(g *globals, fn func(c *clientCtx) error) error {
	c, ctx, done, err := g.connect()
	if err != nil {
		return err
	}
	defer done()
	return fn(&clientCtx{Client: c, ctx: ctx})
}

func nodesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "nodes",
		Short:   "List the cluster's coordinators and workers",
		Example: "  gust nodes\n  gust nodes -o json\n  gust nodes drain w1",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withClient(g, func(c *clientCtx) error {
				nodes, err := c.ListNodes(c.ctx)
				if err != nil {
					return err
				}
				if g.json() {
					type nodeView struct {
						Name          string `json:"name"`
						Role          string `json:"role"`
						Status        string `json:"status"`
						Address       string `json:"address"`
						GossipAddress string `json:"gossip_address,omitempty"`
						MemoryMB      int64  `json:"memory_mb,omitempty"`
						FreeMemoryMB  int64  `json:"free_memory_mb,omitempty"`
						Sandboxes     int32  `json:"sandboxes"`
						Draining      bool   `json:"draining"`
					}
					out := make([]nodeView, 0, len(nodes))
					for _, n := range nodes {
						out = append(out, nodeView{n.GetName(), n.GetRole(), n.GetStatus(), n.GetAddress(), n.GetGossipAddress(),
							n.GetMemoryMb(), n.GetFreeMemoryMb(), n.GetSandboxes(), n.GetDraining()})
					}
					return g.printJSON(out)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tADDRESS\tSANDBOXES\tFREE MEMORY")
				for _, n := range nodes {
					status := n.GetStatus()
					if n.GetDraining() {
						status += " (draining)"
					}
					free := ""
					if n.GetRole() == "worker" {
						free = fmt.Sprintf("%d/%d MB", n.GetFreeMemoryMb(), n.GetMemoryMb())
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", n.GetName(), n.GetRole(), status, n.GetAddress(), n.GetSandboxes(), free)
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "drain NAME",
		Short:   "Stop sending new invocations to a worker; in-flight ones finish",
		Example: "  gust nodes drain w1",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				if err := c.DrainNode(c.ctx, args[0]); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"drained": args[0]})
				}
				fmt.Fprintf(g.stdout, "draining %s\n", args[0])
				return nil
			})
		},
	})
	return cmd
}

func sandboxesCmd(g *globals) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:     "sandboxes",
		Short:   "List live sandboxes",
		Example: "  gust sandboxes\n  gust sandboxes --node w1 -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withClient(g, func(c *clientCtx) error {
				list, err := c.ListSandboxes(c.ctx, node)
				if err != nil {
					return err
				}
				if g.json() {
					type sandboxView struct {
						ID       string `json:"id"`
						Node     string `json:"node"`
						Function string `json:"function"`
						MemoryMB int32  `json:"memory_mb"`
						State    string `json:"state"`
						LastUsed string `json:"last_used"`
					}
					out := make([]sandboxView, 0, len(list))
					for _, s := range list {
						out = append(out, sandboxView{s.GetId(), s.GetNode(), s.GetFunction(), s.GetMemoryMb(), s.GetState(),
							time.UnixMilli(s.GetLastUsedUnixMs()).UTC().Format(time.RFC3339Nano)})
					}
					return g.printJSON(out)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNODE\tFUNCTION\tMEMORY\tSTATE\tLAST USED")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d MB\t%s\t%s\n", s.GetId(), s.GetNode(), s.GetFunction(), s.GetMemoryMb(), s.GetState(),
						time.UnixMilli(s.GetLastUsedUnixMs()).UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "only this worker")
	return cmd
}

func raftCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "raft",
		Short:   "Inspect and change the coordinators' Raft configuration",
		Example: "  gust raft peers\n  gust raft remove c3",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "peers",
		Short:   "List Raft servers and which one leads",
		Example: "  gust raft peers -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withClient(g, func(c *clientCtx) error {
				peers, err := c.ListRaftPeers(c.ctx)
				if err != nil {
					return err
				}
				if g.json() {
					type peerView struct {
						Name    string `json:"name"`
						Address string `json:"address"`
						State   string `json:"state"`
						Voter   bool   `json:"voter"`
					}
					out := make([]peerView, 0, len(peers))
					for _, p := range peers {
						out = append(out, peerView{p.GetName(), p.GetAddress(), p.GetState(), p.GetVoter()})
					}
					return g.printJSON(out)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tVOTER")
				for _, p := range peers {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", p.GetName(), p.GetAddress(), p.GetState(), p.GetVoter())
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:     "remove NAME",
		Short:   "Remove a coordinator from the Raft configuration",
		Example: "  gust raft remove c3",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				if err := c.RemoveRaftPeer(c.ctx, args[0]); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"removed": args[0]})
				}
				fmt.Fprintf(g.stdout, "removed %s\n", args[0])
				return nil
			})
		},
	})
	return cmd
}
