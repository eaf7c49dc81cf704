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
	// Caps is a tenant's: its caps and what its functions use of them.
	Caps *capsView `json:"caps,omitempty"`
}

// capsView is a tenant's caps on reserved and provisioned concurrency.
type capsView struct {
	MaxReserved    int64 `json:"max_reserved"`
	Reserved       int64 `json:"reserved"`
	MaxProvisioned int64 `json:"max_provisioned"`
	Provisioned    int64 `json:"provisioned"`
}

func printQuota(g *globals, q *gustv1.Quota) error {
	tenant := q.GetTenant()
	if tenant == "" {
		tenant = "default"
	}
	v := quotaView{Tenant: tenant, Concurrency: q.GetConcurrency(), Reserved: q.GetReserved(), Unreserved: q.GetUnreserved(),
		InFlight: q.GetInFlight(), Throttled: q.GetThrottled()}
	if q.MaxReserved != nil || q.MaxProvisioned != nil {
		v.Caps = &capsView{q.GetMaxReserved(), q.GetTenantReserved(), q.GetMaxProvisioned(), q.GetTenantProvisioned()}
	}
	if g.json() {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.stdout, "tenant:       %s\nconcurrency:  %d\nreserved:     %d\nunreserved:   %d\nin flight:    %d\nthrottled:    %d\n",
		v.Tenant, v.Concurrency, v.Reserved, v.Unreserved, v.InFlight, v.Throttled)
	if c := v.Caps; c != nil {
		fmt.Fprintf(g.stdout, "tenant's reserved:     %d of at most %d\ntenant's provisioned:  %d of at most %d\n",
			c.Reserved, c.MaxReserved, c.Provisioned, c.MaxProvisioned)
	}
	return nil
}

func quotaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Show or set the account's (or a tenant's) concurrency limit",
		Example: "  gust quota get\n  gust quota set --concurrency 500\n  gust quota set --tenant acme --concurrency 50\n" +
			"  gust quota set --tenant acme --max-reserved 200 --max-provisioned 20",
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
	var concurrency, maxReserved, maxProvisioned int64
	var tenant string
	set := &cobra.Command{
		Use:   "set [--tenant T] --concurrency N | --tenant T --max-reserved N --max-provisioned N",
		Short: "Set the account concurrency limit, or a tenant's limit and caps (enforced cluster-wide)",
		Long: "Set the account concurrency limit, or with --tenant a tenant's own limit (root token): carved out\n" +
			"of the account's as a reservation is, it bounds the tenant's functions together. 0 returns the\n" +
			"tenant to the shared account pool.\n\n" +
			"--max-reserved and --max-provisioned cap the sums of a tenant's functions' reserved and provisioned\n" +
			"concurrency. Without them a tenant may reserve 10% of the account limit (all of its own limit, if\n" +
			"it has one) and provision 10 sandboxes. A negative value returns a cap to the default.",
		Example: "  gust quota set --concurrency 4\n  gust quota set --tenant acme --concurrency 10\n" +
			"  gust quota set --tenant acme --max-reserved 200 --max-provisioned 20",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setLimit := cmd.Flags().Changed("concurrency")
			setCaps := cmd.Flags().Changed("max-reserved") || cmd.Flags().Changed("max-provisioned")
			if !setLimit && !setCaps {
				return fmt.Errorf("--concurrency N, --max-reserved N or --max-provisioned N is required")
			}
			if setCaps && tenant == "" {
				return fmt.Errorf("--max-reserved and --max-provisioned are a tenant's caps: name it with --tenant T")
			}
			return withClient(g, func(c *clientCtx) error {
				var q *gustv1.Quota
				var err error
				if setLimit {
					if q, err = c.SetQuota(c.ctx, tenant, concurrency); err != nil {
						return err
					}
				}
				if setCaps {
					if q, err = c.SetTenantCaps(c.ctx, tenant, changedInt64(cmd, "max-reserved", maxReserved),
						changedInt64(cmd, "max-provisioned", maxProvisioned)); err != nil {
						return err
					}
				}
				return printQuota(g, q)
			})
		},
	}
	set.Flags().Int64Var(&concurrency, "concurrency", 0, "account concurrency limit")
	set.Flags().StringVar(&tenant, "tenant", "", "a tenant's own limit instead of the account's (0: share the account's)")
	set.Flags().Int64Var(&maxReserved, "max-reserved", 0, "with --tenant: cap on the sum of its functions' reserved concurrency (negative: the default)")
	set.Flags().Int64Var(&maxProvisioned, "max-provisioned", 0, "with --tenant: cap on the sum of its functions' provisioned concurrency (negative: the default)")
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

// changedInt64 is a flag's value if it was given, else nil.
func changedInt64(cmd *cobra.Command, name string, v int64) *int64 {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	return &v
}
