package node

import (
	"strings"
	"testing"
)

func TestAdvertised(t *testing.T) {
	for _, c := range []struct {
		bound, host, want, err string
	}{
		{"127.0.0.1:7070", "", "127.0.0.1:7070", ""},
		{"c1:7070", "", "c1:7070", ""},
		{"0.0.0.0:7070", "10.0.0.5", "10.0.0.5:7070", ""},
		{"127.0.0.1:7070", "gust-1.example", "gust-1.example:7070", ""},
		{"[::]:7071", "fd00::5", "[fd00::5]:7071", ""},
		{"0.0.0.0:7070", "", "", "--advertise"},
		{"[::]:7070", "", "", "--advertise"},
		{":7070", "", "", "--advertise"},
		{"7070", "", "", "missing port"},
	} {
		got, err := advertised("grpc", c.bound, c.host)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "--grpc") {
				t.Errorf("advertised(%q, %q) = %q, %v; want an error naming --grpc and %q", c.bound, c.host, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("advertised(%q, %q) = %q, %v; want %q", c.bound, c.host, got, err, c.want)
		}
	}
}
