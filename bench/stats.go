package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes a sample of durations. Percentiles are nearest-rank:
// P50 and P99 are values that were measured, never interpolated, so a
// sample of fewer than 100 has its maximum as P99.
type Summary struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Min time.Duration `json:"min_ns"`
	Max time.Duration `json:"max_ns"`
}

// Summarize returns the sample's summary; the zero Summary for none.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{
		N:   len(s),
		P50: s[rank(len(s), 50)],
		P99: s[rank(len(s), 99)],
		Min: s[0],
		Max: s[len(s)-1],
	}
}

// rank is the nearest-rank index of percentile p in a sorted sample of n.
func rank(n int, p float64) int {
	i := int(math.Ceil(p/100*float64(n))) - 1
	return max(0, min(i, n-1))
}

// String formats the summary for a table cell: "p50 / p99 (n)".
func (s Summary) String() string {
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s (n=%d)", dur(s.P50), dur(s.P99), s.N)
}

// dur rounds d for reading: three significant digits or so.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(100 * time.Nanosecond).String()
	}
}

// ratio divides two medians; NaN when the divisor is zero.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
