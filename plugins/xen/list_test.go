package xen

import (
	"os"
	"testing"
)

// testdata/xl-list-v.txt and xl-list-l.json are xl 4.17's output in the
// nested test's dom0 with one PV guest running. xl-list-v-ended.txt
// is made from the first, in the same layout, with a guest that powered
// off, one paused and one crashed (xl prints the reason code in hex).

func TestParseListVerbose(t *testing.T) {
	tests := []struct {
		file string
		want []domainState
	}{
		{"xl-list-v.txt", []domainState{
			{Name: "Domain-0", DomID: 0, UUID: "00000000-0000-0000-0000-000000000000", Running: true, Reason: -1},
			{Name: "hyperd-666625b2d911", DomID: 1, UUID: "b6c56a9f-22f7-4dca-ad03-dd2cb0039a63", Blocked: true, Reason: -1},
		}},
		{"xl-list-v-ended.txt", []domainState{
			{Name: "Domain-0", DomID: 0, UUID: "00000000-0000-0000-0000-000000000000", Running: true, Reason: -1},
			{Name: "hyperd-666625b2d911", DomID: 1, UUID: "b6c56a9f-22f7-4dca-ad03-dd2cb0039a63", Shutdown: true, Reason: 0},
			{Name: "hyperd-0b1c2d3e4f50", DomID: 2, UUID: "0f7a1c9e-5b2d-4e8f-9a6b-3c4d5e6f7a8b", Paused: true, Reason: -1},
			{Name: "hyperd-1c2d3e4f5061", DomID: 3, UUID: "1e8b2dae-6c3e-4f90-8b7c-4d5e6f708192", Crashed: true, Reason: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseListVerbose(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d domains, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("domain %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseListVerboseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no state column": "Name ID Mem\nfoo 1 128 1 running 1.0 u -\n",
		"bad domid":       "foo x 128 1 r----- 1.0 u -\n",
		"bad reason":      "foo 1 128 1 ---s-- 1.0 u zz\n",
		"short line":      "foo 1 128 1 r-----\n",
	} {
		if _, err := parseListVerbose([]byte(in)); err == nil {
			t.Errorf("%s: parsed %q without error", name, in)
		}
	}
}

func TestParseListLong(t *testing.T) {
	got, err := parseListLong(readFixture(t, "xl-list-l.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d domains, want 2", len(got))
	}
	dom0, guest := got[0], got[1]
	if dom0.DomID != 0 || dom0.Config.CInfo.Name != "Domain-0" {
		t.Errorf("dom0 = %+v", dom0)
	}
	c := guest.Config.CInfo
	if guest.DomID != 1 || c.Name != "hyperd-666625b2d911" || c.UUID != "b6c56a9f-22f7-4dca-ad03-dd2cb0039a63" || c.Type != "pv" {
		t.Errorf("guest = %+v", guest)
	}
	if _, err := parseListLong([]byte("xl: not JSON")); err == nil {
		t.Error("parsed non-JSON")
	}
}

func TestExitReason(t *testing.T) {
	for code, want := range map[int]string{
		0: "xen shutdown: poweroff", 1: "xen shutdown: reboot", 3: "xen shutdown: crash",
		4: "xen shutdown: watchdog", 9: "xen shutdown: unknown reason code 9",
	} {
		if got := exitReason(code); got != want {
			t.Errorf("exitReason(%d) = %q, want %q", code, got, want)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
