package xen

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// fakeXL plays xl and the hypervisor for driver tests: it keeps domains
// in memory and answers the commands the driver runs.
type fakeXL struct {
	mu     sync.Mutex
	nextID int
	doms   map[int]*fakeDom
	// obey says whether a guest powers off on `xl shutdown`.
	obey bool
}

type fakeDom struct {
	name, uuid, typ  string
	paused, shutdown bool
	reason           int
}

func newFakeXL() *fakeXL { return &fakeXL{nextID: 1, doms: map[int]*fakeDom{}, obey: true} }

var cfgRE = regexp.MustCompile(`(?m)^(name|uuid|type) = "([^"]*)"$`)

func (f *fakeXL) run(_ context.Context, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	byID := func() (*fakeDom, int, error) {
		id, err := strconv.Atoi(args[1])
		if err != nil || f.doms[id] == nil {
			return nil, 0, fmt.Errorf("xl %s: domain %s does not exist", args[0], args[1])
		}
		return f.doms[id], id, nil
	}
	switch args[0] {
	case "create":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return nil, err
		}
		d := &fakeDom{}
		for _, m := range cfgRE.FindAllStringSubmatch(string(b), -1) {
			switch m[1] {
			case "name":
				d.name = m[2]
			case "uuid":
				d.uuid = m[2]
			case "type":
				d.typ = m[2]
			}
		}
		f.doms[f.nextID] = d
		f.nextID++
		return nil, nil
	case "list":
		if args[1] == "-l" {
			type cinfo struct {
				Type string `json:"type"`
				Name string `json:"name"`
				UUID string `json:"uuid,omitempty"`
			}
			type entry struct {
				DomID  int `json:"domid"`
				Config struct {
					CInfo cinfo `json:"c_info"`
				} `json:"config"`
			}
			var out []entry
			for id, d := range f.doms {
				var e entry
				e.DomID, e.Config.CInfo = id, cinfo{Type: d.typ, Name: d.name, UUID: d.uuid}
				out = append(out, e)
			}
			return json.Marshal(out)
		}
		var b strings.Builder
		b.WriteString("Name ID Mem VCPUs\tState\tTime(s) UUID Reason-Code\tSecurity Label\n")
		b.WriteString("Domain-0 0 512 1 r----- 1.0 00000000-0000-0000-0000-000000000000 - -\n")
		for id, d := range f.doms {
			state, reason := "-b----", "-"
			if d.paused {
				state = "--p---"
			}
			if d.shutdown {
				state, reason = "---s--", strconv.FormatInt(int64(d.reason), 16)
			}
			fmt.Fprintf(&b, "%s %d 128 1 %s 1.0 %s %s -\n", d.name, id, state, d.uuid, reason)
		}
		return []byte(b.String()), nil
	case "shutdown":
		d, _, err := byID()
		if err != nil {
			return nil, err
		}
		if f.obey && !d.paused {
			d.shutdown, d.reason = true, 0
		}
		return nil, nil
	case "destroy":
		if _, id, err := byID(); err == nil {
			delete(f.doms, id)
			return nil, nil
		}
		for id, d := range f.doms {
			if d.name == args[1] {
				delete(f.doms, id)
				return nil, nil
			}
		}
		return nil, fmt.Errorf("xl destroy: no domain %s", args[1])
	case "pause", "unpause":
		d, _, err := byID()
		if err != nil {
			return nil, err
		}
		d.paused = args[0] == "pause"
		return nil, nil
	case "info":
		return []byte("xen_version            : 4.17.7\nvirt_caps              : pv hvm hap\nfree_memory            : 1400\n"), nil
	}
	return nil, fmt.Errorf("fake xl: unknown command %q", args)
}

// crash makes the domain of name shut down as Xen would after a crash.
func (f *fakeXL) crash(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.doms {
		if d.name == name {
			d.shutdown, d.reason = true, 3
		}
	}
}

func (f *fakeXL) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.doms)
}
