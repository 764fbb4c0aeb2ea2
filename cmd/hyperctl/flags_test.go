package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

func TestParseDisk(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	tests := []struct {
		name    string
		in      string
		want    *apiv1.Disk
		wantErr string
	}{
		{name: "absolute", in: "/var/lib/root.img", want: &apiv1.Disk{Path: "/var/lib/root.img"}},
		{name: "relative", in: "root.img", want: &apiv1.Disk{Path: filepath.Join(dir, "root.img")}},
		{name: "dot relative", in: "./a/../seed.iso:ro",
			want: &apiv1.Disk{Path: filepath.Join(dir, "seed.iso"), ReadOnly: true}},
		{name: "read-only", in: "/d.img:ro", want: &apiv1.Disk{Path: "/d.img", ReadOnly: true}},
		{name: "read-write", in: "/d.img:rw", want: &apiv1.Disk{Path: "/d.img"}},
		{name: "format", in: "/d.qcow2:format=qcow2",
			want: &apiv1.Disk{Path: "/d.qcow2", Format: "qcow2"}},
		{name: "format and ro", in: "/d.qcow2:format=qcow2:ro",
			want: &apiv1.Disk{Path: "/d.qcow2", Format: "qcow2", ReadOnly: true}},
		{name: "colon in path", in: "/images/a:b.img:ro",
			want: &apiv1.Disk{Path: "/images/a:b.img", ReadOnly: true}},
		{name: "unknown suffix stays in path", in: "/x:y", want: &apiv1.Disk{Path: "/x:y"}},

		{name: "empty", in: "", wantErr: "missing disk path"},
		{name: "only ro", in: ":ro", wantErr: "missing disk path"},
		{name: "empty format", in: "/d.img:format=", wantErr: "empty format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDisk(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseDisk(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !proto.Equal(got, tt.want) {
				t.Fatalf("parseDisk(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestOptionsValue(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{name: "pairs", in: []string{"machine=q35", "cpu=host"},
			want: map[string]string{"machine": "q35", "cpu": "host"}},
		{name: "empty value", in: []string{"k="}, want: map[string]string{"k": ""}},
		{name: "equals in value", in: []string{"append=a=b"}, want: map[string]string{"append": "a=b"}},
		{name: "no equals", in: []string{"machine"}, wantErr: "want KEY=VALUE"},
		{name: "empty key", in: []string{"=v"}, wantErr: "empty key"},
		{name: "duplicate", in: []string{"k=1", "k=2"}, wantErr: `"k" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v optionsValue
			var err error
			for _, s := range tt.in {
				if err = v.Set(s); err != nil {
					break
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(v) != len(tt.want) {
				t.Fatalf("Set(%q) = %v, %v; want %v", tt.in, v, err, tt.want)
			}
			for k, want := range tt.want {
				if v[k] != want {
					t.Fatalf("option %q = %q, want %q", k, v[k], want)
				}
			}
		})
	}
}

func TestDurationValue(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "0", want: 0},
		{in: "-1s", wantErr: "must not be negative"},
		{in: "30", wantErr: "not a duration"},
		{in: "soon", wantErr: "not a duration"},
		{in: "", wantErr: "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v durationValue
			err := v.Set(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || time.Duration(v) != tt.want {
				t.Fatalf("Set(%q) = %v, %v; want %v", tt.in, time.Duration(v), err, tt.want)
			}
		})
	}
}

func TestCountValue(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr string
	}{
		{in: "1", want: 1},
		{in: "64", want: 64},
		{in: "0", wantErr: "at least 1"},
		{in: "-2", wantErr: "not a whole number"},
		{in: "two", wantErr: "not a whole number"},
		{in: "1.5", wantErr: "not a whole number"},
		{in: "4294967296", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v countValue
			err := v.Set(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || uint32(v) != tt.want {
				t.Fatalf("Set(%q) = %d, %v; want %d", tt.in, v, err, tt.want)
			}
		})
	}
}
