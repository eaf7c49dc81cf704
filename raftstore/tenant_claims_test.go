package raftstore

import (
	"context"
	"errors"
	"testing"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"google.golang.org/protobuf/proto"
)

// A digest is usable by the tenants that uploaded it and by a tenant whose
// function or published version already runs it, never by another tenant
// that only knows it; claims survive a snapshot.
func TestCodeClaims(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	claim := func(tenant, digest string) error {
		_, err := s.Apply(ctx, Command{Type: CmdClaimCode, Msg: &raftv1.ClaimCode{Tenant: tenant, Digest: digest}})
		return err
	}
	if err := claim("acme", "d-acme"); err != nil {
		t.Fatal(err)
	}
	if err := claim("beta", "d-shared"); err != nil {
		t.Fatal(err)
	}
	if err := claim("acme", "d-shared"); err != nil { // re-uploaded: acme owns it too
		t.Fatal(err)
	}
	if err := claim("acme", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a claim without a digest: %v, want ErrInvalid", err)
	}
	// acme's function runs d-old (stored before uploads were recorded);
	// its published version 1 keeps d-v1 after $LATEST moved on.
	putFn(t, s, "acme.f", "d-v1")
	if _, err := s.Apply(ctx, Command{Type: CmdPublishVersion, Msg: &raftv1.PublishVersion{Name: "acme.f"}}); err != nil {
		t.Fatal(err)
	}
	putFn(t, s, "acme.f", "d-old")
	putFn(t, s, "rootfn", "d-root")

	check := func(s *Store) {
		t.Helper()
		for _, c := range []struct {
			tenant, digest string
			want           bool
		}{
			{"acme", "d-acme", true},
			{"acme", "d-shared", true},
			{"beta", "d-shared", true},
			{"acme", "d-old", true},
			{"acme", "d-v1", true},
			{"beta", "d-acme", false},
			{"beta", "d-old", false},
			{"beta", "d-v1", false},
			{"acme", "d-root", false},
			{"acme", "d-never", false},
		} {
			if got := s.MayUseCode(c.tenant, c.digest); got != c.want {
				t.Errorf("MayUseCode(%q, %q) = %v, want %v", c.tenant, c.digest, got, c.want)
			}
		}
		if !s.CodeClaimed("acme", "d-acme") || s.CodeClaimed("acme", "d-old") {
			t.Error("CodeClaimed counts uses as uploads, or lost one")
		}
	}
	check(s)
	restored := roundTrip(t, s)
	if !restored.CodeClaimed("beta", "d-shared") || !restored.CodeClaimed("acme", "d-acme") || restored.CodeClaimed("beta", "d-acme") {
		t.Error("claims changed in the snapshot")
	}
	check(restored)
}

// Root's caps on a tenant's reserved and provisioned concurrency: set one
// at a time, both, back to the defaults; refused without a tenant or
// negative; kept by a snapshot.
func TestTenantCaps(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	set := func(c *raftv1.TenantCaps) error {
		_, err := s.Apply(ctx, Command{Type: CmdSetTenantCaps, Msg: &raftv1.SetTenantCaps{Caps: c}})
		return err
	}
	if err := set(&raftv1.TenantCaps{Tenant: "acme", MaxReserved: proto.Int64(50), MaxProvisioned: proto.Int64(0)}); err != nil {
		t.Fatal(err)
	}
	if err := set(&raftv1.TenantCaps{Tenant: "beta", MaxProvisioned: proto.Int64(3)}); err != nil {
		t.Fatal(err)
	}
	if err := set(&raftv1.TenantCaps{Tenant: "gone", MaxReserved: proto.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if err := set(&raftv1.TenantCaps{Tenant: "gone"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*raftv1.TenantCaps{{MaxReserved: proto.Int64(1)}, {Tenant: "x", MaxReserved: proto.Int64(-1)}} {
		if err := set(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("caps %v: %v, want ErrInvalid", bad, err)
		}
	}
	for _, c := range []Command{
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "acme.a", Reserved: 5, Provisioned: 2}},
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "acme.b", Provisioned: 3}},
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "acmex.c", Provisioned: 7}},
	} {
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	check := func(v QuotaView) {
		t.Helper()
		if len(v.MaxReserved) != 1 || v.MaxReserved["acme"] != 50 {
			t.Errorf("max reserved %v, want acme: 50", v.MaxReserved)
		}
		if len(v.MaxProvisioned) != 2 || v.MaxProvisioned["acme"] != 0 || v.MaxProvisioned["beta"] != 3 {
			t.Errorf("max provisioned %v, want acme: 0, beta: 3", v.MaxProvisioned)
		}
		if v.TenantProvisioned("acme") != 5 || v.TenantReserved("acme") != 5 {
			t.Errorf("acme provisions %d and reserves %d, want 5 and 5", v.TenantProvisioned("acme"), v.TenantReserved("acme"))
		}
	}
	check(s.Quota())
	check(roundTrip(t, s).Quota())
}
