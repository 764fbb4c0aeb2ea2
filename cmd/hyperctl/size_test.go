package main

import (
	"strings"
	"testing"
)

func TestParseMemoryMiB(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr string
	}{
		{name: "plain MiB", in: "512", want: 512},
		{name: "M", in: "256M", want: 256},
		{name: "lower m", in: "256m", want: 256},
		{name: "MB", in: "256MB", want: 256},
		{name: "MiB", in: "256MiB", want: 256},
		{name: "G", in: "1G", want: 1024},
		{name: "GiB", in: "2GiB", want: 2048},
		{name: "gb", in: "4gb", want: 4096},
		{name: "T", in: "1T", want: 1 << 20},
		{name: "decimal G", in: "1.5G", want: 1536},
		{name: "leading dot", in: ".5G", want: 512},
		{name: "trailing zeros", in: "2.50G", want: 2560},
		{name: "whole decimal", in: "3.0", want: 3},
		{name: "spaces around", in: " 64M ", want: 64},
		{name: "largest", in: "16777215T", want: 16777215 << 20},
		{name: "largest MiB", in: "17592186044415", want: maxMemoryMiB},

		{name: "empty", in: "", wantErr: "empty size"},
		{name: "blank", in: "   ", wantErr: "empty size"},
		{name: "zero", in: "0", wantErr: "more than zero"},
		{name: "zero G", in: "0G", wantErr: "more than zero"},
		{name: "zero decimal", in: "0.0M", wantErr: "more than zero"},
		{name: "negative", in: "-1", wantErr: "more than zero"},
		{name: "negative G", in: "-2G", wantErr: "more than zero"},
		{name: "plus sign", in: "+5", wantErr: "not a size"},
		{name: "garbage", in: "lots", wantErr: "not a size"},
		{name: "unit only", in: "G", wantErr: "not a size"},
		{name: "K unit", in: "1024K", wantErr: "not a size"},
		{name: "bytes unit", in: "1024B", wantErr: "not a size"},
		{name: "hex", in: "0x100", wantErr: "not a size"},
		{name: "inner space", in: "1 G", wantErr: "not a size"},
		{name: "two dots", in: "1.2.3G", wantErr: "not a size"},
		{name: "trailing dot", in: "1.G", wantErr: "not a size"},
		{name: "only dot", in: ".", wantErr: "not a size"},
		{name: "unit then digits", in: "1G5", wantErr: "not a size"},
		{name: "fraction of MiB", in: "1.5", wantErr: "whole number of MiB"},
		{name: "fraction of G", in: "1.0001G", wantErr: "whole number of MiB"},
		{name: "too many decimals", in: "1.0000000001G", wantErr: "too many decimals"},
		{name: "over uint64", in: "99999999999999999999", wantErr: "too large"},
		{name: "multiply overflows", in: "18446744073709551615T", wantErr: "too large"},
		{name: "bytes overflow", in: "16777216T", wantErr: "too large"},
		{name: "just over MiB limit", in: "17592186044416", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemoryMiB(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMemoryMiB(%q) = %d, %v; want error containing %q",
						tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseMemoryMiB(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatMiB(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0M"},
		{256, "256M"},
		{1024, "1G"},
		{1536, "1536M"},
		{3 << 20, "3T"},
	}
	for _, tt := range tests {
		if got := formatMiB(tt.in); got != tt.want {
			t.Errorf("formatMiB(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in == 0 {
			continue
		}
		back, err := parseMemoryMiB(formatMiB(tt.in))
		if err != nil || back != tt.in {
			t.Errorf("parseMemoryMiB(formatMiB(%d)) = %d, %v", tt.in, back, err)
		}
	}
}
