package drivertest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Outcome is how a check ended.
type Outcome int

// Outcomes.
const (
	Pass Outcome = iota
	Fail
	Skip
)

var outcomeNames = map[Outcome]string{Pass: "PASS", Fail: "FAIL", Skip: "SKIP"}

// String returns PASS, FAIL or SKIP.
func (o Outcome) String() string {
	if n, ok := outcomeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MarshalText writes the outcome as its String.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads PASS, FAIL or SKIP.
func (o *Outcome) UnmarshalText(b []byte) error {
	for k, v := range outcomeNames {
		if v == string(b) {
			*o = k
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// Result is one check's outcome.
type Result struct {
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	// Duration is how long the check ran, cleanup included.
	Duration time.Duration `json:"duration_ns"`
	// Reasons are the failures, or the reason for a skip, in order.
	Reasons []string `json:"reasons,omitempty"`
	// Log is what the check and the driver logged along the way.
	Log []string `json:"log,omitempty"`
}

// Report is the outcome of a Check run.
type Report struct {
	// Driver is the binary checked, or the driver's name.
	Driver   string        `json:"driver"`
	Results  []Result      `json:"results"`
	Duration time.Duration `json:"duration_ns"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, res := range r.Results {
		if res.Outcome == Fail {
			return true
		}
	}
	return false
}

// Count returns how many checks ended with o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Result returns the result of the check called name.
func (r Report) Result(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// WriteText prints one line per check, its reasons indented below it,
// then a summary. With verbose, the log of each failed check follows its
// reasons.
func (r Report) WriteText(w io.Writer, verbose bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance of %s\n", r.Driver)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s  %-24s %6.1fs\n", res.Outcome, res.Name, res.Duration.Seconds())
		for _, why := range res.Reasons {
			fmt.Fprintf(&b, "      %s\n", indent(why))
		}
		if verbose && res.Outcome == Fail {
			for _, l := range res.Log {
				fmt.Fprintf(&b, "      | %s\n", indent(l))
			}
		}
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped in %.1fs\n",
		r.Count(Pass), r.Count(Fail), r.Count(Skip), r.Duration.Seconds())
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n        ")
}
