package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

func fnPublishCmd(g *globals) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:     "publish NAME",
		Short:   "Publish $LATEST as an immutable numbered version",
		Example: "  gust fn publish hello --description 'first release'",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				fn, err := c.PublishVersion(c.ctx, args[0], description)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(functionJSON(fn))
				}
				fmt.Fprintf(g.stdout, "published %s version %s\ncode sha256:%s\n", args[0], fn.GetVersion(), fn.GetCodeDigest())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what this version is")
	return cmd
}

func fnVersionsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "versions NAME",
		Short:   "List $LATEST and the published versions",
		Example: "  gust fn versions hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				list, err := c.ListVersions(c.ctx, args[0])
				if err != nil {
					return err
				}
				if g.json() {
					out := make([]functionView, 0, len(list))
					for _, fn := range list {
						out = append(out, functionJSON(fn))
					}
					return g.printJSON(out)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tCODE SHA256\tDESCRIPTION")
				for _, fn := range list {
					fmt.Fprintf(tw, "%s\t%.12s\t%s\n", fn.GetVersion(), fn.GetCodeDigest(), fn.GetDescription())
				}
				return tw.Flush()
			})
		},
	}
}

// aliasView is an alias as printed with -o json.
type aliasView struct {
	Function string             `json:"function"`
	Name     string             `json:"name"`
	Version  string             `json:"version"`
	Weights  map[string]float64 `json:"additional_weights"`
	Revision uint64             `json:"revision"`
}

func aliasJSON(a *gustv1.Alias) aliasView {
	w := a.GetAdditionalWeights()
	if w == nil {
		w = map[string]float64{}
	}
	return aliasView{a.GetFunction(), a.GetName(), a.GetVersion(), w, a.GetRevision()}
}

func aliasCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "alias",
		Short:   "Name versions of a function and shift traffic between them",
		Example: "  gust alias set hello live --version 3 --weight 4=0.1\n  gust alias ls hello",
	}
	var version string
	var weights []string
	set := &cobra.Command{
		Use:   "set NAME ALIAS --version V [--weight V2=0.1]…",
		Short: "Create or update an alias; --weight sends a share of invocations to another version",
		Example: `  gust alias set hello live --version 3
  gust alias set hello live --version 3 --weight 4=0.1   # 10% to version 4
  gust invoke hello:live`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if version == "" {
				return fmt.Errorf("--version V is required")
			}
			a := &gustv1.Alias{Function: args[0], Name: args[1], Version: version, AdditionalWeights: map[string]float64{}}
			for _, kv := range weights {
				v, w, ok := strings.Cut(kv, "=")
				f, err := strconv.ParseFloat(w, 64)
				if !ok || err != nil {
					return fmt.Errorf("--weight %q: want VERSION=WEIGHT, e.g. 4=0.1", kv)
				}
				a.AdditionalWeights[v] = f
			}
			return withClient(g, func(c *clientCtx) error {
				out, err := c.PutAlias(c.ctx, a)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(aliasJSON(out))
				}
				fmt.Fprintf(g.stdout, "alias %s:%s → version %s%s\n", args[0], args[1], out.GetVersion(), weightText(out))
				return nil
			})
		},
	}
	set.Flags().StringVar(&version, "version", "", "the version most invocations go to")
	set.Flags().StringArrayVar(&weights, "weight", nil, "VERSION=WEIGHT: also send this share (0 to 1) to VERSION (repeatable)")
	ls := &cobra.Command{
		Use:     "ls NAME",
		Short:   "List a function's aliases",
		Example: "  gust alias ls hello -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				list, err := c.ListAliases(c.ctx, args[0])
				if err != nil {
					return err
				}
				if g.json() {
					out := make([]aliasView, 0, len(list))
					for _, a := range list {
						out = append(out, aliasJSON(a))
					}
					return g.printJSON(out)
				}
				for _, a := range list {
					fmt.Fprintf(g.stdout, "%s → version %s%s\n", a.GetName(), a.GetVersion(), weightText(a))
				}
				return nil
			})
		},
	}
	cmd.AddCommand(set, ls)
	return cmd
}

func weightText(a *gustv1.Alias) string {
	var parts []string
	for v, w := range a.GetAdditionalWeights() {
		parts = append(parts, fmt.Sprintf("%s at %g", v, w))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return " (also " + strings.Join(parts, ", ") + ")"
}
