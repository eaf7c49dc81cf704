package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/flagconf"
	"github.com/gustfaas/gust/internal/tlsconf"
	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	addr   string
	output string
	token  string
	tls    tlsconf.Files // --tls-ca, --tls-cert, --tls-key
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
}

func (g *globals) client() (*client.Client, error) {
	var addrs []string
	for _, a := range strings.Split(g.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	creds, err := tlsconf.Load(g.tls)
	if err != nil {
		return nil, err
	}
	var opts []client.Option
	if creds != nil {
		opts = append(opts, client.WithTLS(creds.ClientConfig()))
	}
	return client.New(addrs, g.token, opts...)
}

// connect returns a client and a Ctrl-C-aware context; done releases both.
func (g *globals) connect() (*client.Client, context.Context, func(), error) {
	c, err := g.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := signalContext()
	return c, ctx, func() { cancel(); c.Close() }, nil
}

func (g *globals) json() bool { return g.output == "json" }

// printJSON writes v as indented JSON on stdout.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func rootCmd() *cobra.Command {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin}
	root := &cobra.Command{
		Use:           "gust",
		Short:         "Deploy and invoke functions on a gust cluster",
		Example:       "  gust fn deploy hello --code ./hello\n  gust invoke hello --payload '{\"name\":\"gust\"}'",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagconf.Apply(cmd.Flags(), ""); err != nil {
				return err
			}
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("-o must be text or json, not %q", g.output)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", "127.0.0.1:7070", "coordinator addresses, HOST:PORT[,HOST:PORT…] (env GUST_ADDR)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&g.token, "token", "", "API token (env GUST_TOKEN)")
	pf.StringVar(&g.tls.CA, "tls-ca", "", "connect over TLS, verifying coordinators with this CA certificate (env GUST_TLS_CA)")
	pf.StringVar(&g.tls.Cert, "tls-cert", "", "client certificate, from gustd ca issue --client (env GUST_TLS_CERT)")
	pf.StringVar(&g.tls.Key, "tls-key", "", "the client certificate's key (env GUST_TLS_KEY)")
	root.AddCommand(fnCmd(g), invokeCmd(g), nodesCmd(g), sandboxesCmd(g), raftCmd(g), quotaCmd(g), aliasCmd(g), invocationCmd(g), scheduleCmd(g), logsCmd(g), costCmd(g), benchCmd(g), tokenCmd(g))
	return root
}

// signalContext is cancelled by Ctrl-C, so a long call can be abandoned.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// clientCtx is a client with the command's context.
type clientCtx struct {
	*client.Client
	ctx context.Context
}
