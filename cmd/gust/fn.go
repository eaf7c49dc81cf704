package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gustfaas/gust/internal/codezip"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
)

func fnCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "fn",
		Short:   "Manage functions",
		Example: "  gust fn deploy hello --code ./hello.zip\n  gust fn ls",
	}
	cmd.AddCommand(fnDeployCmd(g), fnLsCmd(g), fnGetCmd(g), fnRmCmd(g), fnConcurrencyCmd(g), fnPublishCmd(g), fnVersionsCmd(g))
	return cmd
}

func fnDeployCmd(g *globals) *cobra.Command {
	var (
		code, runtime, handler string
		memoryMB               int
		timeout                time.Duration
		env                    []string
		publish                bool
		maxRetries             int32
		maxEventAge            time.Duration
		onFailure              string
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME --code PATH",
		Short: "Create a function or update its $LATEST code and configuration",
		Example: `  gust fn deploy hello --code ./build/hello.zip
  gust fn deploy hello --code ./build/hello/ --memory-mb 256 --timeout 10s --env GREETING=hi`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code == "" {
				return fmt.Errorf("--code PATH is required (a folder or a .zip)")
			}
			zipped, err := readCode(code)
			if err != nil {
				return err
			}
			vars := map[string]string{}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
				vars[k] = v
			}
			cfg := &gustv1.FunctionConfig{Name: args[0], Runtime: runtime, Handler: handler, MemoryMb: int32(memoryMB), Environment: vars}
			if cmd.Flags().Changed("timeout") {
				cfg.Timeout = durationpb.New(timeout)
			}
			if cmd.Flags().Changed("max-retries") {
				cfg.MaxRetries = &maxRetries
			}
			if cmd.Flags().Changed("max-event-age") {
				cfg.MaxEventAge = durationpb.New(maxEventAge)
			}
			cfg.OnFailure = onFailure
			c, ctx, done, err := g.connect()
			if err != nil {
				return err
			}
			defer done()
			up, err := c.UploadCode(ctx, withProgress(g, zipped))
			if err != nil {
				return err
			}
			fn, err := c.PutFunction(ctx, cfg, up.GetDigest())
			if err != nil {
				return err
			}
			if publish {
				if fn, err = c.PublishVersion(ctx, cfg.GetName(), ""); err != nil {
					return err
				}
			}
			if g.json() {
				return g.printJSON(functionJSON(fn))
			}
			fmt.Fprintf(g.stdout, "deployed %s %s (revision %d)\ncode sha256:%s (%s)\n",
				fn.GetConfig().GetName(), fn.GetVersion(), fn.GetRevision(), fn.GetCodeDigest(), humanBytes(fn.GetCodeSize()))
			if publish {
				fmt.Fprintf(g.stdout, "published version %s\n", fn.GetVersion())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&code, "code", "", "a folder (zipped for you) or a .zip holding bootstrap")
	f.StringVar(&runtime, "runtime", "provided", "runtime: provided runs /var/task/bootstrap")
	f.StringVar(&handler, "handler", "bootstrap", "handler name passed to the function as _HANDLER")
	f.IntVar(&memoryMB, "memory-mb", 128, "memory limit, 128 to 10240 MB; CPU share is proportional")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "time limit of one invocation, up to 900s")
	f.StringArrayVar(&env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.BoolVar(&publish, "publish", false, "also publish an immutable version")
	f.Int32Var(&maxRetries, "max-retries", 2, "async: retries after a function error, 0 to 2")
	f.DurationVar(&maxEventAge, "max-event-age", 6*time.Hour, "async: how long an event may wait, 60s to 6h")
	f.StringVar(&onFailure, "on-failure", "", "async: function that receives events that failed every attempt")
	return cmd
}

// readCode returns the zip bytes of a .zip file or of a folder zipped here.
func readCode(path string) (*bytes.Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--code: %w", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--code: %w", err)
		}
		return bytes.NewReader(data), nil
	}
	var buf bytes.Buffer
	if err := codezip.ZipDir(path, &buf); err != nil {
		return nil, fmt.Errorf("zip %s: %w", filepath.Clean(path), err)
	}
	return bytes.NewReader(buf.Bytes()), nil
}

// withProgress shows an upload bar when stderr is a terminal.
func withProgress(g *globals, r *bytes.Reader) readSeeker {
	f, ok := g.stderr.(*os.File)
	if !ok || !isatty.IsTerminal(f.Fd()) {
		return r
	}
	bar := progressbar.DefaultBytes(r.Size(), "uploading")
	return &progressReader{r: r, bar: bar}
}

func fnLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List functions",
		Example: "  gust fn ls\n  gust fn ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, done, err := g.connect()
			if err != nil {
				return err
			}
			defer done()
			fns, err := c.ListFunctions(ctx)
			if err != nil {
				return err
			}
			if g.json() {
				out := make([]functionView, 0, len(fns))
				for _, fn := range fns {
					out = append(out, functionJSON(fn))
				}
				return g.printJSON(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tCODE SIZE\tLAST MODIFIED")
			for _, fn := range fns {
				c := fn.GetConfig()
				fmt.Fprintf(tw, "%s\t%s\t%d MB\t%s\t%s\t%s\n", c.GetName(), c.GetRuntime(), c.GetMemoryMb(),
					c.GetTimeout().AsDuration(), humanBytes(fn.GetCodeSize()), fn.GetLastModified().AsTime().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func fnGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a function",
		Example: "  gust fn get hello -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, ctx, done, err := g.connect()
			if err != nil {
				return err
			}
			defer done()
			fn, conc, err := c.GetFunctionConcurrency(ctx, args[0])
			if err != nil {
				return err
			}
			v := functionJSON(fn)
			v.Concurrency = &concurrencyView{fn.GetConfig().GetName(), conc.GetReserved(), conc.GetProvisioned(), conc.GetInFlight(), conc.GetThrottled()}
			if g.json() {
				return g.printJSON(v)
			}
			fmt.Fprintf(g.stdout, "name:          %s\nversion:       %s\nrevision:      %d\nruntime:       %s\nhandler:       %s\nmemory:        %d MB\ntimeout:       %s\ncode sha256:   %s\ncode size:     %s\nlast modified: %s\n",
				v.Name, v.Version, v.Revision, v.Runtime, v.Handler, v.MemoryMB, v.Timeout, v.CodeDigest, humanBytes(v.CodeSize), v.LastModified)
			keys := make([]string, 0, len(v.Environment))
			for k := range v.Environment {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(g.stdout, "env:           %s=%s\n", k, v.Environment[k])
			}
			fmt.Fprintf(g.stdout, "reserved:      %d\nprovisioned:   %d\nin flight:     %d\nthrottled:     %d\n",
				conc.GetReserved(), conc.GetProvisioned(), conc.GetInFlight(), conc.GetThrottled())
			return nil
		},
	}
}

func fnRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Short:   "Delete a function",
		Example: "  gust fn rm hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, ctx, done, err := g.connect()
			if err != nil {
				return err
			}
			defer done()
			if err := c.DeleteFunction(ctx, args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.stdout, "deleted %s\n", args[0])
			return nil
		},
	}
}

// functionView is a function as the CLI prints it in JSON.
type functionView struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Revision     uint64            `json:"revision"`
	Description  string            `json:"description,omitempty"`
	Runtime      string            `json:"runtime"`
	Handler      string            `json:"handler"`
	MemoryMB     int32             `json:"memory_mb"`
	Timeout      string            `json:"timeout"`
	Environment  map[string]string `json:"environment"`
	CodeDigest   string            `json:"code_digest"`
	CodeSize     int64             `json:"code_size"`
	LastModified string            `json:"last_modified"`
	// Concurrency is set by `fn get` only.
	Concurrency *concurrencyView `json:"concurrency,omitempty"`
}

func functionJSON(fn *gustv1.Function) functionView {
	c := fn.GetConfig()
	env := c.GetEnvironment()
	if env == nil {
		env = map[string]string{}
	}
	return functionView{
		Name: c.GetName(), Version: fn.GetVersion(), Revision: fn.GetRevision(), Description: fn.GetDescription(), Runtime: c.GetRuntime(),
		Handler: c.GetHandler(), MemoryMB: c.GetMemoryMb(), Timeout: c.GetTimeout().AsDuration().String(),
		Environment: env, CodeDigest: fn.GetCodeDigest(), CodeSize: fn.GetCodeSize(),
		LastModified: fn.GetLastModified().AsTime().Format(time.RFC3339Nano),
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
