package raftstore

import (
	"context"
	"testing"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
)

// A tenant's own limit is a pool carved out of the account's, holding its
// functions without a reservation; its functions' reservations come out
// of it; a limit of 0 returns the tenant to the account pool; and all of
// it survives a snapshot.
func TestTenantPools(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	apply := func(c Command) {
		t.Helper()
		if _, err := s.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	apply(Command{Type: CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Limit: 100}})
	apply(Command{Type: CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Tenant: "acme", Limit: 10}})
	apply(Command{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "acme.r", Reserved: 3}})
	apply(Command{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "beta.r", Reserved: 5}})
	apply(Command{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "rootfn", Reserved: 7}})

	check := func(v QuotaView, acme bool) {
		t.Helper()
		pools := map[string]int64{}
		for _, p := range v.Pools() {
			pools[p] = v.PoolLimit(p)
		}
		if acme {
			// account: 100 − acme's 10 − beta.r's 5 − rootfn's 7; acme: 10 − its 3.
			want := map[string]int64{"": 78, "fn/acme.r": 3, "fn/beta.r": 5, "fn/rootfn": 7, "tenant/acme": 7}
			for p, n := range want {
				if pools[p] != n {
					t.Errorf("pool %q: %d slots, want %d (all: %v)", p, pools[p], n, pools)
				}
			}
			if len(pools) != len(want) {
				t.Errorf("pools %v", pools)
			}
		} else if _, ok := pools["tenant/acme"]; ok || pools[""] != 100-3-5-7 {
			t.Errorf("after removing acme's limit: %v", pools)
		}
		for fn, want := range map[string]string{"acme.x": "tenant/acme", "acme.r": "fn/acme.r", "beta.x": "", "rootfn": "fn/rootfn", "other": ""} {
			if !acme && want == "tenant/acme" {
				want = ""
			}
			if got := v.PoolOf(fn); got != want {
				t.Errorf("PoolOf(%q) = %q, want %q", fn, got, want)
			}
		}
	}
	check(s.Quota(), true)

	check(roundTrip(t, s).Quota(), true)

	apply(Command{Type: CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Tenant: "acme", Limit: 0}})
	check(s.Quota(), false)
}
