package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gustfaas/gust/bench"
	"github.com/spf13/cobra"
)

func benchCmd(g *globals) *cobra.Command {
	def := bench.DefaultOptions()
	opts := def
	var modes, jsonPath, chartPath string
	var jsonSamples, quiet bool
	cmd := &cobra.Command{
		Use:   "bench [--mode MODE[,MODE…]]",
		Short: "Measure gust against runc, a plain process and aws-lambda-rie, side by side (root)",
		Long: `Starts its own gustd (dev, or a small cluster for cluster and async) on
loopback and measures it with its references in the same run, on this
machine: ` + "`runc run`" + ` of /bin/true, a plain fork/exec of /bin/true and of
the bootstrap (timed to its first Runtime API request, on a stub served in
process), and aws-lambda-rie serving the same bootstrap to the same HTTP
client. gust is driven over its Lambda REST API (HTTP); gRPC rows are
labelled as such.

Modes (comma-separated; "figures" is cold,warm,burst,trace; "all" adds
cluster, quotas and async):
  cold     fresh function per sample: CreateFunction, then first Invoke
  warm     one warm function, one client; then --clients clients (or
           --rate arrivals/s) for --duration vs RIE's serial throughput
  burst    --samples fresh functions invoked at once (or at --rate): cold
           starts per second on one worker, vs the same burst of runc run
  trace    replay --trace FILE (CSV offset_ms,function) open loop; without
           --trace, a generated one (Poisson, Zipf-popular functions)
  cluster  3 coordinators + 1 worker: invoke via leader vs follower (gRPC)
  quotas   closed-loop throughput, admission on vs off (gRPC)
  async    durable InvokeAsync enqueue rate, acknowledgement to start

The Markdown report goes to stdout (-o json: the JSON report instead),
progress to stderr. Needs root: sandboxes and runc.`,
		Example: `  sudo bin/gust bench                                   # everything, default counts
  sudo bin/gust bench --mode cold --samples 20 --chart /tmp/c.svg --json /tmp/c.json
  sudo bin/gust bench --mode warm --clients 16 --duration 10s
  sudo bin/gust bench --mode warm --rate 2000 --duration 10s   # open loop, Poisson arrivals
  sudo bin/gust bench --mode burst --samples 100
  sudo bin/gust bench --mode trace --trace bench/testdata/trace.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Modes, err = bench.ParseModes(modes); err != nil {
				return err
			}
			if chartPath != "" && !strings.HasSuffix(strings.ToLower(chartPath), ".svg") {
				return fmt.Errorf("--chart writes SVG: give a .svg file name (rsvg-convert makes a PNG of it)")
			}
			f := cmd.Flags()
			opts.Gustd = besideExecutable(opts.Gustd, f.Changed("gustd"), "gustd")
			opts.Bootstrap = besideExecutable(opts.Bootstrap, f.Changed("bootstrap"), filepath.Join("hello", "bootstrap"))
			if !f.Changed("rie") {
				opts.RIE = inGoBin(opts.RIE)
			}
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			opts.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			ctx, cancel := signalContext()
			defer cancel()
			rep, runErr := bench.Run(ctx, opts)
			if rep == nil {
				return runErr
			}
			// A failed mode still leaves what was measured before it.
			if err := writeBenchFiles(rep, jsonPath, jsonSamples, chartPath); err != nil {
				return errors.Join(runErr, err)
			}
			if g.json() {
				err = rep.WriteJSON(g.stdout, jsonSamples)
			} else {
				err = rep.WriteMarkdown(g.stdout)
			}
			return errors.Join(runErr, err)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&modes, "mode", "all", "what to measure: cold, warm, burst, trace, cluster, quotas, async, figures or all (comma-separated)")
	fl.StringVar(&opts.Gustd, "gustd", def.Gustd, "gustd binary; if missing, the one next to gust")
	fl.StringVar(&opts.Bootstrap, "bootstrap", def.Bootstrap, "function bootstrap, a static aws-lambda-go binary (examples/hello reports cold starts); if missing, hello/bootstrap next to gust")
	fl.StringVar(&opts.RIE, "rie", def.RIE, "aws-lambda-rie binary, from PATH or else GOPATH/bin")
	fl.StringVar(&opts.Runc, "runc", def.Runc, "runc binary, for the reference")
	fl.IntVar(&opts.Samples, "samples", 0, "samples per measurement (0: mode defaults, cold 100, warm 2000, burst 100, cluster 1000, async 4000)")
	fl.IntVar(&opts.Clients, "clients", def.Clients, "closed-loop clients of the load rounds")
	fl.Float64Var(&opts.Rate, "rate", 0, "open loop: Poisson arrivals per second for the load rounds, burst and a generated trace (0: closed loop)")
	fl.DurationVar(&opts.Duration, "duration", def.Duration, "length of each load round (and of a generated trace)")
	fl.StringVar(&opts.Trace, "trace", "", "trace to replay in trace mode: CSV of offset_ms,function (see bench/testdata/trace.csv)")
	fl.Uint64Var(&opts.Seed, "seed", def.Seed, "seed of the Poisson schedules and generated traces")
	fl.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fl.BoolVar(&jsonSamples, "json-samples", false, "put every sample (µs) in the JSON, not only the summaries")
	fl.StringVar(&chartPath, "chart", "", "write a latency-distribution chart (SVG) to this file")
	fl.StringVar(&opts.WorkDir, "work-dir", "", "directory for the processes' data and logs (default: a temporary one, removed)")
	fl.BoolVar(&opts.KeepWork, "keep-work", false, "keep the temporary work directory and its logs")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	return cmd
}

// writeBenchFiles writes the JSON and SVG files asked for.
func writeBenchFiles(rep *bench.Report, jsonPath string, samples bool, chartPath string) error {
	write := func(path string, fn func(*os.File) error) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		return f.Close()
	}
	if jsonPath != "" {
		if err := write(jsonPath, func(f *os.File) error { return rep.WriteJSON(f, samples) }); err != nil {
			return err
		}
	}
	if chartPath != "" {
		if err := write(chartPath, func(f *os.File) error { return rep.WriteSVG(f) }); err != nil {
			return err
		}
	}
	return nil
}

// besideExecutable keeps path if it was given or exists; else it looks for
// rel next to the running gust binary (bin/gust finds bin/gustd from any
// directory).
func besideExecutable(path string, given bool, rel string) string {
	if given {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), rel); fileExists(p) {
			return p
		}
	}
	return path
}

// inGoBin finds name on PATH, else in GOPATH/bin (where go install puts
// aws-lambda-rie; sudo drops it from PATH).
func inGoBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	if p := filepath.Join(gopath, "bin", name); gopath != "" && fileExists(p) {
		return p
	}
	return name
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
