package sdk

import (
	"encoding/json"
	"fmt"
	"os"
)

// OptionsEnv is the environment variable through which the daemon hands a
// driver the options of its block in the daemon's config file, as a JSON
// object of strings. The daemon has already checked them against the
// schema the driver published in Info.
const OptionsEnv = "HYPERD_DRIVER_OPTIONS"

// Options returns the driver-level options the daemon's config file sets
// for this driver, by name; empty when it sets none. A driver reads them
// in main, before Serve, and uses them as its defaults.
func Options() (map[string]string, error) {
	raw := os.Getenv(OptionsEnv)
	if raw == "" {
		return map[string]string{}, nil
	}
	var opts map[string]string
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		return nil, fmt.Errorf("decode %s: %w", OptionsEnv, err)
	}
	return opts, nil
}

func optionsEnv(opts map[string]string) (string, error) {
	if len(opts) == 0 {
		return "", nil
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return "", fmt.Errorf("encode driver options: %w", err)
	}
	return OptionsEnv + "=" + string(b), nil
}
