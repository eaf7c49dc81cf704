package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestNormalizeRefusesWhatLambdaRefuses(t *testing.T) {
	f := &functions{limits: DefaultLimits()}
	cases := []struct {
		name string
		cfg  *gustv1.FunctionConfig
		want string // substring of the error; "" means accepted
	}{
		{"defaults", &gustv1.FunctionConfig{Name: "ok"}, ""},
		{"bad name", &gustv1.FunctionConfig{Name: "no spaces"}, "function name"},
		{"long name", &gustv1.FunctionConfig{Name: strings.Repeat("a", 65)}, "function name"},
		{"runtime", &gustv1.FunctionConfig{Name: "a", Runtime: "python3.12"}, "runtime"},
		{"memory low", &gustv1.FunctionConfig{Name: "a", MemoryMb: 64}, "memory"},
		{"memory high", &gustv1.FunctionConfig{Name: "a", MemoryMb: 10241}, "memory"},
		{"timeout high", &gustv1.FunctionConfig{Name: "a", Timeout: durationpb.New(901 * time.Second)}, "timeout"},
		{"timeout low", &gustv1.FunctionConfig{Name: "a", Timeout: durationpb.New(100 * time.Millisecond)}, "timeout"},
		{"reserved env", &gustv1.FunctionConfig{Name: "a", Environment: map[string]string{"AWS_REGION": "x"}}, "reserved"},
		{"bad env name", &gustv1.FunctionConfig{Name: "a", Environment: map[string]string{"1X": "x"}}, "invalid"},
		{"env too big", &gustv1.FunctionConfig{Name: "a", Environment: map[string]string{"BIG": strings.Repeat("x", 4097)}}, "environment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.normalize(c.cfg)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.cfg.MemoryMb != 128 || c.cfg.Runtime != "provided" || c.cfg.Timeout.AsDuration() != 3*time.Second {
					t.Fatalf("defaults not filled: %v", c.cfg)
				}
				return
			}
			e, ok := apierr.As(err)
			if !ok || e.Name != apierr.InvalidParameterValue || !strings.Contains(e.Message, c.want) {
				t.Fatalf("got %v, want InvalidParameterValueException mentioning %q", err, c.want)
			}
		})
	}
}

// Stored names with a tenant prefix are valid only with tenants on.
func TestValidName(t *testing.T) {
	plain, tenants := &functions{}, &functions{tenants: func() bool { return true }}
	for _, c := range []struct {
		name          string
		plain, tenant bool
	}{
		{"hello", true, true},
		{"acme.hello", false, true},
		{".hello", false, false},
		{"acme.", false, false},
		{"Acme.hello", false, false},
		{"acme.a.b", false, false},
	} {
		if got := plain.validName(c.name); got != c.plain {
			t.Errorf("without tenants %q: %v", c.name, got)
		}
		if got := tenants.validName(c.name); got != c.tenant {
			t.Errorf("with tenants %q: %v", c.name, got)
		}
	}
}
