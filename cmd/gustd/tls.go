package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gustfaas/gust/internal/gossip"
	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/tlsconf"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// securityFlags are --tls-ca, --tls-cert, --tls-key, --gossip-key and
// --cluster-secret.
type securityFlags struct {
	ca, cert, key string
	gossipKey     string
	clusterSecret string
	noGossip      bool // gustd dev has no gossip and no node-internal port
}

func (s *securityFlags) register(f *pflag.FlagSet) {
	caUsage := "cluster CA certificate (PEM): turns on TLS, mutual between nodes (see gustd ca)"
	if s.noGossip {
		caUsage = "CA certificate (PEM): serve gRPC and HTTP over TLS (see gustd ca)"
	}
	f.StringVar(&s.ca, "tls-ca", "", caUsage)
	f.StringVar(&s.cert, "tls-cert", "", "this node's certificate (PEM), from gustd ca issue (a node certificate)")
	f.StringVar(&s.key, "tls-key", "", "this node's private key (PEM)")
	if !s.noGossip {
		f.StringVar(&s.gossipKey, "gossip-key", "", "encrypt gossip with this key: base64 of 16, 24 or 32 bytes (see gustd keygen); the same on every node")
		f.StringVar(&s.clusterSecret, "cluster-secret", "", "a secret every node shares (at least 16 characters; gustd keygen makes one): "+
			"each connection to a node-internal port (Raft, PeerService, WorkerService) proves it, so only nodes can call them; needed with --auth unless --tls-* is given")
	}
}

// secret is --cluster-secret (nil when not given).
func (s *securityFlags) secret() nodeauth.Secret {
	if s.clusterSecret == "" {
		return nil
	}
	return nodeauth.Secret(s.clusterSecret)
}

// load returns the TLS material (nil: plaintext) and the gossip key (nil:
// unencrypted).
func (s *securityFlags) load() (*tlsconf.TLS, []byte, error) {
	creds, err := tlsconf.LoadNode(tlsconf.Files{CA: s.ca, Cert: s.cert, Key: s.key})
	if err != nil {
		return nil, nil, err
	}
	var key []byte
	if s.gossipKey != "" {
		if key, err = gossip.ParseKey(s.gossipKey); err != nil {
			return nil, nil, fmt.Errorf("--gossip-key: %w", err)
		}
	}
	return creds, key, nil
}

func caCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make a cluster CA and the certificates nodes and clients use for TLS",
		Example: `  gustd ca init --dir /etc/gust/pki
  gustd ca issue --dir /etc/gust/pki --name c1 --host 10.0.0.1,c1.internal
  gustd ca issue --dir /etc/gust/pki --name ops --client`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(caInitCmd(), caIssueCmd())
	return cmd
}

func caInitCmd() *cobra.Command {
	var dir, cn string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a cluster CA: DIR/ca.pem (give to every node and client) and DIR/ca-key.pem (keep secret)",
		Example: `  gustd ca init --dir /etc/gust/pki
  gustd keygen > /etc/gust/gossip.key   # the gossip encryption key, separately`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if err := tlsconf.InitCA(dir, cn); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, tlsconf.CAFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the CA files (created; existing files are never overwritten)")
	cmd.Flags().StringVar(&cn, "common-name", "gust cluster CA", "the CA's common name")
	return cmd
}

func caIssueCmd() *cobra.Command {
	var (
		dir, out, name string
		hosts          []string
		client         bool
	)
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Sign a node certificate (server and client) or, with --client, a client certificate for the CLI and SDK",
		Long: `Sign a certificate with the CA in --dir and write NAME.pem and NAME-key.pem.

A node certificate (the default) is for a coordinator or worker: it serves
and dials, and it alone may use the node-internal services (Raft, peer and
worker RPCs). List in --host every IP address and DNS name the node is
dialled at (the hosts of its --grpc, --raft and --http addresses).
A --client certificate is for users (gust --tls-cert): it may call the user
APIs only.`,
		Example: `  gustd ca issue --dir /etc/gust/pki --name c1 --host 10.0.0.1,c1.internal
  gustd ca issue --dir /etc/gust/pki --name w1 --host 10.0.0.5 --out /etc/gust/w1
  gustd ca issue --dir /etc/gust/pki --name alice --client`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || name == "" {
				return fmt.Errorf("--dir and --name are required")
			}
			if out == "" {
				out = dir
			}
			var hs []string
			for _, h := range hosts {
				if h = strings.TrimSpace(h); h != "" {
					hs = append(hs, h)
				}
			}
			if !client && len(hs) == 0 {
				hs = []string{name, "localhost", "127.0.0.1", "::1"}
			}
			cert, key, err := tlsconf.Issue(dir, out, tlsconf.IssueRequest{Name: name, Hosts: hs, Client: client})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cert)
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "the CA's directory (from gustd ca init)")
	f.StringVar(&out, "out", "", "where to write NAME.pem and NAME-key.pem (default: --dir)")
	f.StringVar(&name, "name", "", "certificate name: the node's --name, or a user's")
	f.StringSliceVar(&hosts, "host", nil, "IP addresses and DNS names the node is reached at, HOST[,HOST…] (default: NAME, localhost, 127.0.0.1, ::1)")
	f.BoolVar(&client, "client", false, "a client-only certificate (for gust and the SDK), not a node's")
	return cmd
}

func keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a fresh random key: for --gossip-key (GUST_GOSSIP_KEY) or --cluster-secret (GUST_CLUSTER_SECRET)",
		Example: `  export GUST_GOSSIP_KEY=$(gustd keygen)
  export GUST_CLUSTER_SECRET=$(gustd keygen)   # a different one: the same on every node
  gustd coordinator --gossip-key "$(cat /etc/gust/gossip.key)" …`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := gossip.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
}
