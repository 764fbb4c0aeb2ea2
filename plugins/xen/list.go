package xen

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// domainInfo is what `xl list -l` says of one domain: its identity and
// type, from the config libxl keeps for it.
type domainInfo struct {
	DomID  int `json:"domid"`
	Config struct {
		CInfo struct {
			Type string `json:"type"`
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"c_info"`
	} `json:"config"`
}

// parseListLong parses the JSON array `xl list -l` prints.
func parseListLong(b []byte) ([]domainInfo, error) {
	var out []domainInfo
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("parse xl list -l: %w", err)
	}
	return out, nil
}

// domainState is one line of `xl list -v`: the domain's run state as Xen
// has it now.
type domainState struct {
	Name  string
	DomID int
	UUID  string
	// Flags are xl's six state letters, "r-----" to "-----d".
	Running, Blocked, Paused, Shutdown, Crashed, Dying bool
	// Reason is Xen's shutdown reason code, meaningful when Shutdown.
	Reason int
}

var stateRE = regexp.MustCompile(`^[r-][b-][p-][s-][c-][d-]$`)

// parseListVerbose parses `xl list -v`:
//
//	Name        ID   Mem VCPUs State  Time(s) UUID      Reason-Code Security Label
//	Domain-0     0   512     1 r-----    12.3 00000000-...       -          -
//
// The state column is found by its shape, so a name with spaces or a
// missing label column does not shift the others.
func parseListVerbose(b []byte) ([]domainState, error) {
	var out []domainState
	for n, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "Name" {
			continue
		}
		i := -1
		for j := 4; j < len(f); j++ {
			if stateRE.MatchString(f[j]) {
				i = j
				break
			}
		}
		if i < 0 || len(f) < i+4 {
			return nil, fmt.Errorf("parse xl list -v line %d: no state and uuid columns: %q", n+1, line)
		}
		id, err := strconv.Atoi(f[i-3])
		if err != nil {
			return nil, fmt.Errorf("parse xl list -v line %d: domid %q: %w", n+1, f[i-3], err)
		}
		s := f[i]
		d := domainState{
			Name:     strings.Join(f[:i-3], " "),
			DomID:    id,
			UUID:     f[i+2],
			Running:  s[0] == 'r',
			Blocked:  s[1] == 'b',
			Paused:   s[2] == 'p',
			Shutdown: s[3] == 's',
			Crashed:  s[4] == 'c',
			Dying:    s[5] == 'd',
			Reason:   -1,
		}
		if r := f[i+3]; r != "-" {
			code, err := strconv.ParseInt(r, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("parse xl list -v line %d: reason code %q: %w", n+1, r, err)
			}
			d.Reason = int(code)
		}
		out = append(out, d)
	}
	return out, nil
}

// shutdownReasons are Xen's SHUTDOWN_* codes (xen/include/public/sched.h)
// in libxl's words.
var shutdownReasons = map[int]string{
	0: "poweroff",
	1: "reboot",
	2: "suspend",
	3: "crash",
	4: "watchdog",
	5: "soft_reset",
}

// exitReason words the end of a domain that shut down with code.
func exitReason(code int) string {
	if r, ok := shutdownReasons[code]; ok {
		return "xen shutdown: " + r
	}
	return fmt.Sprintf("xen shutdown: unknown reason code %d", code)
}
