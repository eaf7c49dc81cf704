package main

import (
	"fmt"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

// quotaView is a quota as printed with -o json.
type quotaView struct {
	Tenant      string `json:"tenant"`
	Concurrency int64  `json:"concurrency"`
	Reserved    int64  `json:"reserved"`
	Unreserved  int64  `json:"unreserved"`
	InFlight    int64  `json:"in_flight"`
	Throttled   int64  `json:"throttled"`
}

func printQuota(g *globals, q *gustv1.Quota) error {
	tenant := q.GetTenant()
	if tenant == "" {
		tenant = "default"
	}
	v := quotaView{tenant, q.GetConcurrency(), q.GetReserved(), q.GetUnreserved(), q.GetInFlight(), q.GetThrottled()}
	if g.json() {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.stdout, "tenant:       %s\nconcurrency:  %d\nreserved:     %d\nunreserved:   %d\nin flight:    %d\nthrottled:    %d\n",
		v.Tenant, v.Concurrency, v.Reserved, v.Unreserved, v.InFlight, v.Throttled)
	return nil
}

func quotaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "quota",
		Short:   "Show or set the account's (or a tenant's) concurrency limit",
		Example: "  gust quota get\n  gust quota set --concurrency 500\n  gust quota set --tenant acme --concurrency 50",
	}
	var getTenant string
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the concurrency limit, reservations, in-flight and throttled counts",
		Long: "Show the account's concurrency limit and use, or with --tenant a tenant's own (a tenant without\n" +
			"a limit of its own shares the account's). With a tenant's token, that tenant's.",
		Example: "  gust quota get -o json\n  gust quota get --tenant acme",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withClient(g, func(c *clientCtx) error {
				q, err := c.GetTenantQuota(c.ctx, getTenant)
				if err != nil {
					return err
				}
				return printQuota(g, q)
			})
		},
	}
	get.Flags().StringVar(&getTenant, "tenant", "", "a tenant's quota instead of the account's (root token)")
	cmd.AddCommand(get)
	var concurrency int64
	var tenant string
	set := &cobra.Command{
		Use:   "set --concurrency N",
		Short: "Set the account concurrency limit, or a tenant's (enforced cluster-wide)",
		Long: "Set the account concurrency limit, or with --tenant a tenant's own limit (root token): carved out\n" +
			"of the account's as a reservation is, it bounds the tenant's functions together. 0 returns the\n" +
			"tenant to the shared account pool.",
		Example: "  gust quota set --concurrency 4\n  gust quota set --tenant acme --concurrency 10",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("concurrency") {
				return fmt.Errorf("--concurrency N is required")
			}
			return withClient(g, func(c *clientCtx) error {
				q, err := c.SetQuota(c.ctx, tenant, concurrency)
				if err != nil {
					return err
				}
				return printQuota(g, q)
			})
		},
	}
	set.Flags().Int64Var(&concurrency, "concurrency", 0, "account concurrency limit")
	set.Flags().StringVar(&tenant, "tenant", "", "a tenant's own limit instead of the account's (0: share the account's)")
	cmd.AddCommand(set)
	return cmd
}

func fnConcurrencyCmd(g *globals) *cobra.Command {
	var reserved, provisioned int64
	cmd := &cobra.Command{
		Use:   "concurrency NAME [--reserved N] [--provisioned N]",
		Short: "Show or set a function's reserved and provisioned concurrency",
		Example: `  gust fn concurrency hello --reserved 10
  gust fn concurrency hello --reserved 0     # remove the reservation
  gust fn concurrency hello -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(g, func(c *clientCtx) error {
				var conc *gustv1.Concurrency
				var err error
				if cmd.Flags().Changed("reserved") || cmd.Flags().Changed("provisioned") {
					if !cmd.Flags().Changed("reserved") || !cmd.Flags().Changed("provisioned") {
						// Keep what is not being changed.
						_, cur, err := c.GetFunctionConcurrency(c.ctx, args[0])
						if err != nil {
							return err
						}
						if !cmd.Flags().Changed("reserved") {
							reserved = cur.GetReserved()
						}
						if !cmd.Flags().Changed("provisioned") {
							provisioned = cur.GetProvisioned()
						}
					}
					conc, err = c.PutFunctionConcurrency(c.ctx, args[0], reserved, provisioned)
				} else {
					_, conc, err = c.GetFunctionConcurrency(c.ctx, args[0])
				}
				if err != nil {
					return err
				}
				return printConcurrency(g, args[0], conc)
			})
		},
	}
	cmd.Flags().Int64Var(&reserved, "reserved", 0, "reserved concurrency: caps the function and guarantees it that many slots")
	cmd.Flags().Int64Var(&provisioned, "provisioned", 0, "sandboxes kept initialised and warm")
	return cmd
}

// concurrencyView is a function's concurrency as printed with -o json.
type concurrencyView struct {
	Function    string `json:"function"`
	Reserved    int64  `json:"reserved"`
	Provisioned int64  `json:"provisioned"`
	InFlight    int64  `json:"in_flight"`
	Throttled   int64  `json:"throttled"`
}

func printConcurrency(g *globals, name string, c *gustv1.Concurrency) error {
	v := concurrencyView{name, c.GetReserved(), c.GetProvisioned(), c.GetInFlight(), c.GetThrottled()}
	if g.json() {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.stdout, "function:     %s\nreserved:     %d\nprovisioned:  %d\nin flight:    %d\nthrottled:    %d\n",
		v.Function, v.Reserved, v.Provisioned, v.InFlight, v.Throttled)
	return nil
}
