package main

import (
	"bytes"
	"strings"
	"testing"
)

// gust bench refuses bad settings before it starts anything (these tests
// never reach bench.Run, which needs root and starts gustd).
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"bench", "--mode", "hot"}, `unknown mode "hot"`},
		{[]string{"bench", "--mode", "cold", "--chart", "/tmp/x.png"}, "--chart writes SVG"},
		{[]string{"bench", "extra"}, "unknown command"},
	} {
		root := rootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tc.args)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	root := rootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"bench", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "gust bench --mode cold", "--rate", "--trace", "--json", "--chart", "aws-lambda-rie"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
