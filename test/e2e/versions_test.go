package e2e

// Versions and aliases through the CLI: publish freezes code and
// configuration, an alias routes to a version (with a weighted share to
// another), and every invocation reports the version that ran.

import (
	"strings"
	"testing"
	"time"
)

func TestVersionsAndAliases(t *testing.T) {
	d := startDaemon(t)
	d.waitReady(t, 20*time.Second)
	d.deploy(t, "ver", bin.probeZip, "--env", "STAGE=one", "--publish")
	d.deploy(t, "ver", bin.probeZip, "--env", "STAGE=two", "--publish")
	d.deploy(t, "ver", bin.probeZip, "--env", "STAGE=latest")
	stage := func(qualified string) (string, string) {
		env := d.mustInvokeJSON(t, qualified, `{"action":"env","key":"STAGE"}`)
		var out struct{ Value string }
		decode(t, env.Payload, &out)
		return out.Value, env.ExecutedVersion
	}
	for _, c := range []struct{ q, stage, version string }{
		{"ver", "latest", "$LATEST"}, {"ver:$LATEST", "latest", "$LATEST"}, {"ver:1", "one", "1"}, {"ver:2", "two", "2"},
	} {
		if s, v := stage(c.q); s != c.stage || v != c.version {
			t.Errorf("%s ran stage %q version %q; want %q %q", c.q, s, v, c.stage, c.version)
		}
	}
	d.mustGust(t, "alias", "set", "ver", "live", "--version", "1")
	if s, v := stage("ver:live"); s != "one" || v != "1" {
		t.Errorf("alias live → 1 ran %q version %q", s, v)
	}
	d.mustGust(t, "alias", "set", "ver", "live", "--version", "1", "--weight", "2=0.5")
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		_, v := stage("ver:live")
		seen[v]++
	}
	if seen["1"] < 5 || seen["2"] < 5 || seen["1"]+seen["2"] != 40 {
		t.Errorf("weighted alias (2=0.5) over 40 invokes ran versions %v", seen)
	}
	out := d.mustGust(t, "alias", "ls", "ver").stdout
	if !strings.Contains(out, "live → version 1 (also 2 at 0.5)") {
		t.Errorf("alias ls:\n%s", out)
	}
	for _, bad := range []string{"ver:9", "ver:nope"} {
		r := d.gust(t, "invoke", bad)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "ResourceNotFoundException") {
			t.Errorf("invoke %s: want ResourceNotFoundException exit 1, got\n%s", bad, r)
		}
	}
	r := d.gust(t, "alias", "set", "ver", "bad", "--version", "1", "--weight", "2=1.5")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "InvalidParameterValueException") {
		t.Errorf("weight 1.5: %s", r)
	}
	// Publishing an unchanged $LATEST gives back the same version.
	d.mustGust(t, "fn", "publish", "ver")
	again := d.mustGust(t, "fn", "publish", "ver").stdout
	if !strings.Contains(again, "version 3") {
		t.Errorf("second publish of unchanged $LATEST:\n%s", again)
	}
}
