// Command gustsim runs the trace-driven cluster simulator (package sim) and
// prints its comparison of placement and keep-alive policies as Markdown.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/sim"
)

func main() {
	st := sim.DefaultStudy()
	c := &st.Config
	flag.Uint64Var(&c.Seed, "seed", c.Seed, "workload and placement seed")
	flag.IntVar(&c.Apps, "apps", c.Apps, "apps (function versions)")
	flag.IntVar(&c.Workers, "workers", c.Workers, "workers")
	flag.Int64Var(&c.WorkerMemoryMB, "memory", c.WorkerMemoryMB, "sandbox memory per worker, MB")
	flag.DurationVar(&c.Warmup, "warmup", c.Warmup, "simulated time before measuring")
	flag.DurationVar(&c.Measure, "measure", c.Measure, "simulated time measured")
	flag.IntVar(&st.Parallel, "parallel", 0, "runs at a time (0: one per CPU)")
	flag.BoolVar(&st.Extended, "extended", false, "add fixed 2m and the per-worker untrained hybrid")
	sweep := flag.String("sweep", joinMB(st.Memory), "other worker memory sizes to repeat the headline pairs at (MB, comma-separated)")
	flag.Parse()
	st.Memory = nil
	for _, f := range strings.FieldsFunc(*sweep, func(r rune) bool { return r == ',' }) {
		mb, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || mb <= 0 {
			fmt.Fprintf(os.Stderr, "gustsim: bad -sweep size %q\n", f)
			os.Exit(2)
		}
		st.Memory = append(st.Memory, mb)
	}
	rep, err := st.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gustsim:", err)
		os.Exit(1)
	}
	fmt.Print(rep.Markdown())
}

func joinMB(mbs []int64) string {
	var s []string
	for _, mb := range mbs {
		s = append(s, strconv.FormatInt(mb, 10))
	}
	return strings.Join(s, ",")
}
