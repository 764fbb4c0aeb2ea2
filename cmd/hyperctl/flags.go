package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// The flag values below check their input when pflag parses it, so a bad
// value fails as a usage error that names its flag.

// durationValue is a Go duration that must not be negative; zero means
// "no limit" or "the daemon's default", as the flag says.
type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration: want a number with a unit, like 30s or 2m")
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*v = durationValue(d)
	return nil
}

// String writes zero as "0" so that help leaves out a zero default.
func (v *durationValue) String() string {
	if *v == 0 {
		return "0"
	}
	return time.Duration(*v).String()
}

func (v *durationValue) Type() string { return "duration" }

// countValue is a count of at least one, such as vCPUs.
type countValue uint32

func (v *countValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("too large")
		}
		return errors.New("not a whole number")
	}
	if n == 0 {
		return errors.New("must be at least 1")
	}
	*v = countValue(n)
	return nil
}

func (v *countValue) String() string { return strconv.FormatUint(uint64(*v), 10) }
func (v *countValue) Type() string   { return "count" }

// outputValue picks how a command prints: a table or text for people, or
// JSON for scripts.
type outputValue string

const (
	outputText outputValue = "text"
	outputJSON outputValue = "json"
)

func (v *outputValue) Set(s string) error {
	switch o := outputValue(s); o {
	case outputText, outputJSON:
		*v = o
		return nil
	}
	return errors.New("want text or json")
}

func (v *outputValue) String() string { return string(*v) }
func (v *outputValue) Type() string   { return "format" }

// pathValue is a host path made absolute against hyperctl's working
// directory, because the daemon resolves paths from its own. Empty stays
// empty.
type pathValue string

func (v *pathValue) Set(s string) error {
	p, err := absPath(s)
	if err != nil {
		return err
	}
	*v = pathValue(p)
	return nil
}

func (v *pathValue) String() string { return string(*v) }
func (v *pathValue) Type() string   { return "path" }

func absPath(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	p, err := filepath.Abs(s)
	if err != nil {
		return "", fmt.Errorf("make %q absolute: %w", s, err)
	}
	return p, nil
}

// disksValue collects repeated --disk PATH[:ro|:rw][:format=FORMAT].
type disksValue []*apiv1.Disk

func (v *disksValue) Set(s string) error {
	d, err := parseDisk(s)
	if err != nil {
		return err
	}
	*v = append(*v, d)
	return nil
}

func (v *disksValue) String() string {
	if len(*v) == 0 {
		return ""
	}
	parts := make([]string, 0, len(*v))
	for _, d := range *v {
		parts = append(parts, d.GetPath())
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func (v *disksValue) Type() string { return "path[:ro]" }

// parseDisk reads PATH followed by optional suffixes ":ro", ":rw" and
// ":format=FORMAT" in any order. Suffixes are taken from the end, so a
// path may itself hold colons.
func parseDisk(s string) (*apiv1.Disk, error) {
	d := &apiv1.Disk{}
	path := s
	for {
		i := strings.LastIndexByte(path, ':')
		if i < 0 {
			break
		}
		suffix := path[i+1:]
		switch {
		case suffix == "ro":
			d.ReadOnly = true
		case suffix == "rw":
			d.ReadOnly = false
		case strings.HasPrefix(suffix, "format="):
			d.Format = strings.TrimPrefix(suffix, "format=")
			if d.Format == "" {
				return nil, errors.New("empty format=")
			}
		default:
			i = -1
		}
		if i < 0 {
			break
		}
		path = path[:i]
	}
	if path == "" {
		return nil, errors.New("missing disk path: want PATH[:ro], like ./root.img:ro")
	}

	p, err := absPath(path)
	if err != nil {
		return nil, err
	}
	d.Path = p
	return d, nil
}

// optionsValue collects repeated --opt KEY=VALUE, driver-specific options.
type optionsValue map[string]string

func (v *optionsValue) Set(s string) error {
	key, val, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return errors.New("want KEY=VALUE")
	case key == "":
		return errors.New("empty key: want KEY=VALUE")
	}
	if *v == nil {
		*v = optionsValue{}
	}
	if _, dup := (*v)[key]; dup {
		return fmt.Errorf("option %q given twice", key)
	}
	(*v)[key] = val
	return nil
}

func (v *optionsValue) String() string {
	if len(*v) == 0 {
		return ""
	}
	keys := make([]string, 0, len(*v))
	for k := range *v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + (*v)[k]
	}
	return "[" + strings.Join(keys, ",") + "]"
}

func (v *optionsValue) Type() string { return "key=value" }
