package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	cases := []struct {
		name     string
		in       []time.Duration
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{"even count takes the lower middle", ms(4, 1, 3, 2), 2 * time.Millisecond, 4 * time.Millisecond},
		{"hundred, unsorted", ms(hundred...), 50 * time.Millisecond, 99 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Summarize(c.in)
			if s.P50 != c.p50 || s.P99 != c.p99 || s.N != len(c.in) {
				t.Errorf("Summarize = %+v, want n=%d p50=%s p99=%s", s, len(c.in), c.p50, c.p99)
			}
		})
	}
}
