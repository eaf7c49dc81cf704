package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens (clusters run with gustd --auth)",
		Long: "With gustd --auth every call needs a token: --token or GUST_TOKEN here, Authorization: Bearer\n" +
			"over HTTP, or the token as the AWS access key id for Lambda SDK clients. The first start writes\n" +
			"the root token to DATA_DIR/root.token; root makes tenants' tokens.",
		Example: "  export GUST_TOKEN=$(cat .gust/root.token)\n  gust token create --tenant acme",
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
				tok, err := c.CreateToken(c.ctx, tenant)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"tenant": tenant, "token": tok})
				}
				fmt.Fprintf(g.stdout, "token for tenant %s (shown once):\n%s\n", tenant, tok)
				return nil
			})
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acts for (required)")
	cmd.AddCommand(create)
	return cmd
}
