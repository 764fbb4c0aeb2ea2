package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/hyperd/hyperd/sdk"
)

// DefaultConfigPath is where hyperd looks for its config file when none
// is named. A missing file there is not an error: the defaults apply.
const DefaultConfigPath = "/etc/hyperd/hyperd.hcl"

// FileConfig is hyperd's config file. Every field is optional; a flag
// given on the command line wins over the file.
//
//	state_dir      = "/var/lib/hyperd"          # store and VM work dirs
//	socket         = "/run/hyperd/hyperd.sock"  # operator API
//	socket_mode    = "0600"                     # octal
//	plugin_dirs    = ["/usr/lib/hyperd/plugins"]
//	default_driver = "qemu"                     # for requests naming none
//	log_level      = "info"
//	stop_timeout   = "30s"                      # graceful stop default
//
//	driver "libvirt" {
//	  sha256 = "9f2c..."          # optional pin of the binary
//	  uri    = "qemu:///system"   # any option the driver's schema declares
//	}
type FileConfig struct {
	// Path is the file the config came from.
	Path          string
	StateDir      string
	Socket        string
	SocketMode    string
	PluginDirs    []string
	DefaultDriver string
	LogLevel      string
	StopTimeout   time.Duration
	Drivers       map[string]DriverConfig
}

// DriverConfig is one driver block.
type DriverConfig struct {
	Name string
	// SHA256 pins the binary's checksum, in hex; empty pins nothing.
	SHA256 string
	// Options are the driver's own settings, checked against the schema
	// it publishes in Info.
	Options map[string]OptionValue
	// Pos is where the block starts, as file:line.
	Pos string
}

// OptionValue is one driver option with where it was set.
type OptionValue struct {
	Value string
	// Pos is where the option is set, as file:line.
	Pos string
}

// knownSettings lists the top-level settings, for errors.
const knownSettings = "state_dir, socket, socket_mode, plugin_dirs, default_driver, log_level, stop_timeout"

// maxDriverOptions bounds one driver block. The options reach the driver
// in its environment, which the kernel limits; no driver needs more.
const maxDriverOptions = 64

// maxConfigSize bounds the config file read: a larger one is a mistake.
const maxConfigSize = 1 << 20

// ErrConfig: the config file is wrong. The message names the file, the
// line and the field.
var ErrConfig = errors.New("config")

type fileSchema struct {
	StateDir      *string        `hcl:"state_dir,optional"`
	Socket        *string        `hcl:"socket,optional"`
	SocketMode    *string        `hcl:"socket_mode,optional"`
	PluginDirs    []string       `hcl:"plugin_dirs,optional"`
	DefaultDriver *string        `hcl:"default_driver,optional"`
	LogLevel      *string        `hcl:"log_level,optional"`
	StopTimeout   *string        `hcl:"stop_timeout,optional"`
	Drivers       []driverSchema `hcl:"driver,block"`
	Remain        hcl.Body       `hcl:",remain"`
}

type driverSchema struct {
	Name   string   `hcl:"name,label"`
	Remain hcl.Body `hcl:",remain"`
}

// LoadConfig reads the config file at path. A missing file gives
// os.ErrNotExist, wrapped.
func LoadConfig(path string) (FileConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, fmt.Errorf("read config: %w", err)
	}
	if len(src) > maxConfigSize {
		return FileConfig{}, fmt.Errorf("%w: %s is %d bytes, more than the %d a config file may hold", ErrConfig, path, len(src), maxConfigSize)
	}
	return ParseConfig(path, src)
}

// ParseConfig parses a config file's bytes; path names it in errors.
func ParseConfig(path string, src []byte) (FileConfig, error) {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return FileConfig{}, configError(diags)
	}
	var raw fileSchema
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return FileConfig{}, configError(diags)
	}
	// What the schema did not take: JustAttributes leaves out the
	// settings it did, and blocks other than driver are the unknown ones.
	if attrs, _ := raw.Remain.JustAttributes(); len(attrs) > 0 {
		for _, a := range attrs {
			return FileConfig{}, fmt.Errorf("%w: %s: unknown setting %q; known: %s", ErrConfig, pos(a.NameRange), a.Name, knownSettings)
		}
	}
	if sb, ok := f.Body.(*hclsyntax.Body); ok {
		for _, b := range sb.Blocks {
			if b.Type != "driver" {
				return FileConfig{}, fmt.Errorf("%w: %s: unknown block %q; the only block is driver \"NAME\" { ... }", ErrConfig, pos(b.TypeRange), b.Type)
			}
		}
	}

	// Relative paths in the file are relative to the file, not to
	// wherever hyperd happens to start.
	base := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c := FileConfig{Path: path, Drivers: make(map[string]DriverConfig)}
	c.StateDir = rel(deref(raw.StateDir))
	c.Socket = rel(deref(raw.Socket))
	c.SocketMode = deref(raw.SocketMode)
	for _, d := range raw.PluginDirs {
		c.PluginDirs = append(c.PluginDirs, rel(d))
	}
	c.DefaultDriver = deref(raw.DefaultDriver)
	c.LogLevel = deref(raw.LogLevel)
	if raw.StopTimeout != nil {
		d, err := time.ParseDuration(*raw.StopTimeout)
		if err != nil || d <= 0 {
			return FileConfig{}, fmt.Errorf("%w: %s: stop_timeout %q is not a positive duration such as \"30s\"",
				ErrConfig, attrPos(f.Body, "stop_timeout"), *raw.StopTimeout)
		}
		c.StopTimeout = d
	}

	for _, b := range raw.Drivers {
		dc, err := parseDriverBlock(b)
		if err != nil {
			return FileConfig{}, err
		}
		if prev, dup := c.Drivers[b.Name]; dup {
			return FileConfig{}, fmt.Errorf("%w: %s: driver %q is configured twice (first at %s)", ErrConfig, dc.Pos, b.Name, prev.Pos)
		}
		c.Drivers[b.Name] = dc
	}
	return c, nil
}

func parseDriverBlock(b driverSchema) (DriverConfig, error) {
	dc := DriverConfig{Name: b.Name, Options: make(map[string]OptionValue)}
	if sb, ok := b.Remain.(*hclsyntax.Body); ok {
		dc.Pos = pos(sb.SrcRange)
	}
	attrs, diags := b.Remain.JustAttributes()
	if diags.HasErrors() {
		return DriverConfig{}, configError(diags)
	}
	if len(attrs) > maxDriverOptions {
		return DriverConfig{}, fmt.Errorf("%w: %s: driver %q sets %d options; at most %d are allowed",
			ErrConfig, dc.Pos, b.Name, len(attrs), maxDriverOptions)
	}
	for name, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return DriverConfig{}, configError(diags)
		}
		s, err := ctyString(v)
		if err != nil {
			return DriverConfig{}, fmt.Errorf("%w: %s: driver %q: %s: %v", ErrConfig, pos(a.NameRange), b.Name, name, err)
		}
		if name == "sha256" {
			if len(s) != 64 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
				return DriverConfig{}, fmt.Errorf("%w: %s: driver %q: sha256 must be 64 hex digits (sha256sum's output)", ErrConfig, pos(a.NameRange), b.Name)
			}
			dc.SHA256 = strings.ToLower(s)
			continue
		}
		dc.Options[name] = OptionValue{Value: s, Pos: pos(a.NameRange)}
	}
	return dc, nil
}

// ctyString turns a scalar HCL value into its string form.
func ctyString(v cty.Value) (string, error) {
	if v.IsNull() || !v.IsKnown() {
		return "", errors.New("must have a value")
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Bool:
		return strconv.FormatBool(v.True()), nil
	case cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	}
	return "", fmt.Errorf("must be a string, number or bool, not %s", v.Type().FriendlyName())
}

// CheckDriverOptions checks a driver block against the option schema the
// driver published, naming the file, line and field of the first fault.
func CheckDriverOptions(dc DriverConfig, schema []sdk.OptionSchema) error {
	known := make(map[string]sdk.OptionSchema, len(schema))
	names := make([]string, 0, len(schema))
	for _, o := range schema {
		known[o.Name] = o
		names = append(names, o.Name)
	}
	for name, v := range dc.Options {
		o, ok := known[name]
		if !ok {
			hint := "it declares no options"
			if len(names) > 0 {
				hint = "known options: " + strings.Join(names, ", ")
			}
			return fmt.Errorf("%w: %s: driver %q has no option %q; %s", ErrConfig, v.Pos, dc.Name, name, hint)
		}
		if err := checkOptionType(o.Type, v.Value); err != nil {
			return fmt.Errorf("%w: %s: driver %q option %q: %v", ErrConfig, v.Pos, dc.Name, name, err)
		}
	}
	for _, o := range schema {
		if _, ok := dc.Options[o.Name]; o.Required && !ok {
			return fmt.Errorf("%w: %s: driver %q needs option %q: %s", ErrConfig, dc.Pos, dc.Name, o.Name, o.Description)
		}
	}
	return nil
}

func checkOptionType(typ, v string) error {
	var err error
	switch typ {
	case "int":
		_, err = strconv.ParseInt(v, 10, 64)
	case "bool":
		_, err = strconv.ParseBool(v)
	case "duration":
		_, err = time.ParseDuration(v)
	case "string", "":
		return nil
	default:
		return fmt.Errorf("the driver declares an unknown type %q", typ)
	}
	if err != nil {
		return fmt.Errorf("%q is not a valid %s", v, typ)
	}
	return nil
}

func configError(diags hcl.Diagnostics) error {
	d := diags[0]
	where := ""
	if d.Subject != nil {
		where = pos(*d.Subject) + ": "
	}
	return fmt.Errorf("%w: %s%s: %s", ErrConfig, where, d.Summary, d.Detail)
}

func pos(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

func attrPos(body hcl.Body, name string) string {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			return pos(a.NameRange)
		}
	}
	return "?"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
