package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

func TestParseConfig(t *testing.T) {
	src := `
state_dir      = "/srv/hyperd"
plugin_dirs    = ["/a", "/b"]
default_driver = "libvirt"
stop_timeout   = "45s"

driver "libvirt" {
  uri    = "qemu:///system"
  sha256 = "` + strings.Repeat("ab", 32) + `"
}

driver "qemu" {
  accel   = "tcg"
  retries = 3
  debug   = true
}
`
	c, err := ParseConfig("hyperd.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/srv/hyperd" || c.DefaultDriver != "libvirt" || c.StopTimeout != 45*time.Second ||
		len(c.PluginDirs) != 2 || c.PluginDirs[1] != "/b" {
		t.Fatalf("parsed %+v", c)
	}
	lv := c.Drivers["libvirt"]
	if lv.SHA256 != strings.Repeat("ab", 32) || lv.Options["uri"].Value != "qemu:///system" {
		t.Fatalf("libvirt block %+v", lv)
	}
	if got := lv.Options["uri"].Pos; got != "hyperd.hcl:8" {
		t.Fatalf("uri at %s, want hyperd.hcl:8", got)
	}
	q := c.Drivers["qemu"]
	if q.Options["retries"].Value != "3" || q.Options["debug"].Value != "true" {
		t.Fatalf("qemu block %+v", q)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"syntax", "state_dir = \n", "c.hcl:1"},
		{"unknown setting", "state_dir = \"/x\"\nsocket_path = \"/y\"\n", `c.hcl:2: unknown setting "socket_path"`},
		{"bad stop timeout", "stop_timeout = \"soon\"\n", `c.hcl:1: stop_timeout "soon"`},
		{"negative stop timeout", "stop_timeout = \"-1s\"\n", "positive duration"},
		{"short sha", "driver \"q\" {\n  sha256 = \"abc\"\n}\n", "c.hcl:2: driver \"q\": sha256 must be 64 hex digits"},
		{"twice", "driver \"q\" {\n}\ndriver \"q\" {\n}\n", "configured twice"},
		{"list option", "driver \"q\" {\n  x = [1]\n}\n", `c.hcl:2: driver "q": x: must be a string`},
		{"wrong type", "plugin_dirs = \"/one\"\n", "c.hcl:1"},
		{"unknown block", "state_dir = \"/x\"\nfoo {\n  a = 1\n}\n", `c.hcl:2: unknown block "foo"`},
		{"unknown labelled block", "foo \"bar\" {}\n", `c.hcl:1: unknown block "foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.hcl", []byte(tt.src))
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckDriverOptions(t *testing.T) {
	schema := []sdk.OptionSchema{
		{Name: "uri", Type: "string", Required: true, Description: "where libvirtd listens"},
		{Name: "timeout", Type: "duration"},
		{Name: "retries", Type: "int"},
		{Name: "debug", Type: "bool"},
	}
	block := func(opts map[string]string) DriverConfig {
		dc := DriverConfig{Name: "libvirt", Pos: "h.hcl:3", Options: map[string]OptionValue{}}
		for k, v := range opts {
			dc.Options[k] = OptionValue{Value: v, Pos: "h.hcl:4"}
		}
		return dc
	}
	tests := []struct {
		name string
		opts map[string]string
		want string
	}{
		{"fine", map[string]string{"uri": "qemu:///system", "timeout": "5s", "retries": "2", "debug": "false"}, ""},
		{"typo", map[string]string{"uri": "x", "urii": "y"}, `h.hcl:4: driver "libvirt" has no option "urii"; known options: uri, timeout, retries, debug`},
		{"bad duration", map[string]string{"uri": "x", "timeout": "5"}, `option "timeout": "5" is not a valid duration`},
		{"bad int", map[string]string{"uri": "x", "retries": "many"}, "not a valid int"},
		{"bad bool", map[string]string{"uri": "x", "debug": "yes please"}, "not a valid bool"},
		{"missing required", map[string]string{}, `h.hcl:3: driver "libvirt" needs option "uri": where libvirtd listens`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDriverOptions(block(tt.opts), schema)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzParseConfig: no input makes the parser panic; what it refuses wraps
// ErrConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("state_dir = \"/x\"\ndriver \"q\" {\n  a = 1\n}\n"))
	f.Add([]byte("stop_timeout = \"1s\"\nplugin_dirs = [\"a\"]\n"))
	f.Add([]byte("driver \"\" { sha256 = \"\" }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := ParseConfig("f.hcl", src); err != nil && !errors.Is(err, ErrConfig) {
			t.Fatalf("error %v does not wrap ErrConfig", err)
		}
	})
}

func TestConfigRelativePaths(t *testing.T) {
	c, err := ParseConfig("/etc/hyperd/hyperd.hcl", []byte("state_dir = \"state\"\nplugin_dirs = [\"../lib\", \"/abs\"]\nsocket = \"run/h.sock\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/etc/hyperd/state" || c.Socket != "/etc/hyperd/run/h.sock" ||
		len(c.PluginDirs) != 2 || c.PluginDirs[0] != "/etc/lib" || c.PluginDirs[1] != "/abs" {
		t.Fatalf("relative paths not taken from the file's directory: %+v", c)
	}
}
