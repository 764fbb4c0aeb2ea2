package main

import "testing"

func TestE2EResult(t *testing.T) {
	tests := []struct {
		name, line            string
		step, verdict, detail string
		ok                    bool
	}{
		{"case passes", "--- PASS: TestLifecycle/xen (76.22s)", "E2E/TestLifecycle/xen", "PASS", "76.22s", true},
		{"subtest fails", "        --- FAIL: TestLifecycle/xen/stop_escalates_to_kill (24.63s)",
			"E2E/TestLifecycle/xen/stop_escalates_to_kill", "FAIL", "24.63s", true},
		{"case skipped in dom0", "    --- SKIP: TestLifecycle/xen (0.00s)",
			"E2E/TestLifecycle/xen", "FAIL", "skipped inside a Xen dom0; see the e2e| lines", true},
		{"subtest skip stays a skip", "        --- SKIP: TestLifecycle/xen/x (0.00s)",
			"E2E/TestLifecycle/xen/x", "SKIP", "0.00s", true},
		{"parent test", "--- PASS: TestLifecycle (76.30s)", "", "", "", false},
		{"other driver", "    --- SKIP: TestLifecycle/xenial (0.00s)", "", "", "", false},
		{"log line", "    e2e_test.go:117: --- PASS: TestLifecycle/xen (1s)", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, verdict, detail, ok := e2eResult(tt.line)
			if step != tt.step || verdict != tt.verdict || detail != tt.detail || ok != tt.ok {
				t.Fatalf("e2eResult(%q) = %q, %q, %q, %v; want %q, %q, %q, %v",
					tt.line, step, verdict, detail, ok, tt.step, tt.verdict, tt.detail, tt.ok)
			}
		})
	}
}
