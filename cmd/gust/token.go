package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens (clusters run with gustd --auth)",
		Long: "With gustd --auth every call needs a token: --token or GUST_TOKEN here, Authorization: Bearer\n" +
			"over HTTP, or the token as the AWS access key id for Lambda SDK clients. The first start writes\n" +
			"the root token to DATA_DIR/root.token; root makes tenants' tokens.",
		Example: "  export GUST_TOKEN=$(cat .gust/root.token)\n  gust token create --tenant acme\n  gust token ls\n  gust token revoke 3f9a0c12d4e5b6a7",
	}
	var tenant string
	create := &cobra.Command{
		Use:   "create --tenant T",
		Short: "Make a token for a tenant (root token only); prints it on its last line",
		Long: "Make a token for tenant T and print it on the last line. The cluster keeps only its hash:\n" +
			"it cannot be shown again. Functions deployed with it are T's; other tenants cannot see or\n" +
			"invoke them. A tenant is 1 to 32 lower-case letters, digits, '-' or '_'.",
		Example: "  gust token create --tenant acme\n  GUST_TOKEN=$(gust token create --tenant acme | tail -1) gust fn ls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" {
				return fmt.Errorf("--tenant T is required")
			}
			return withClient(g, func(c *clientCtx) error {
				tok, id, err := c.CreateTokenWithID(c.ctx, tenant)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"tenant": tenant, "token": tok, "id": id})
				}
				fmt.Fprintf(g.stdout, "token %s for tenant %s (shown once):\n%s\n", id, tenant, tok)
				return nil
			})
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acts for (required)")
	cmd.AddCommand(create, tokenLsCmd(g), tokenRevokeCmd(g), tokenRotateRootCmd(g))
	return cmd
}

func tokenLsCmd(g *globals) *cobra.Command {
	var tenant string
	ls := &cobra.Command{
		Use:     "ls [--tenant T]",
		Short:   "List the cluster's tokens by id, tenant and age (root token only); never the tokens",
		Example: "  gust token ls\n  gust token ls --tenant acme -o json",
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return withClient(g, func(c *clientCtx) error {
				toks, err := c.ListTokens(c.ctx, tenant)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(toks)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tCREATED")
				for _, t := range toks {
					who := t.Tenant
					if t.Root {
						who = "(root)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, who, t.Created.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	ls.Flags().StringVar(&tenant, "tenant", "", "only this tenant's tokens")
	return ls
}

func tokenRotateRootCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-root",
		Short: "Replace the root token with a new one, printed on the last line; the old one is refused from then on",
		Long: "Replace the root token (say, after it leaked). The new one is printed once, on the last line;\n" +
			"the one this call used is refused at once. The coordinator that answers rewrites its\n" +
			"DATA_DIR/root.token if it keeps one (the bootstrapping coordinator, gustd dev); a copy of\n" +
			"the old token anywhere else no longer works.",
		Example: "  GUST_TOKEN=$(gust token rotate-root | tail -1) gust token ls",
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return withClient(g, func(c *clientCtx) error {
				r, err := c.RotateRootToken(c.ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(r)
				}
				if r.File != "" {
					fmt.Fprintf(g.stdout, "rewrote %s\n", r.File)
				}
				fmt.Fprintf(g.stdout, "new root token %s (shown once; the old one is refused now):\n%s\n", r.ID, r.Token)
				return nil
			})
		},
	}
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a tenant's token by its id (or the token itself); root token only",
		Long: "Revoke a tenant's token: every coordinator refuses it once the revocation has replicated\n" +
			"there (milliseconds). ID is what `gust token create` and `gust token ls` show; the token\n" +
			"itself works too. Calls already under way with the token (such as `gust logs -f`) run on.\n" +
			"The root token cannot be revoked.",
		Example: "  gust token revoke 3f9a0c12d4e5b6a7",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				t, err := c.RevokeToken(c.ctx, args[0])
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(t)
				}
				fmt.Fprintf(g.stdout, "revoked token %s of tenant %s\n", t.ID, t.Tenant)
				return nil
			})
		},
	}
}
