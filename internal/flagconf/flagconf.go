// Package flagconf fills command flags from the environment (GUST_<FLAG>)
// and from an optional config file, so flags, env and file all set the
// same values. Precedence: command line, then environment, then file.
package flagconf

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// EnvName is the environment variable for a flag: --data-dir → GUST_DATA_DIR.
func EnvName(flag string) string {
	return "GUST_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets every flag not given on the command line from GUST_<FLAG> or,
// failing that, from the YAML (or JSON) file at configPath, if any. Keys in
// the file are flag names. Unknown keys are an error, so typos surface.
func Apply(fs *pflag.FlagSet, configPath string) error {
	file := map[string]any{}
	if configPath != "" {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return fmt.Errorf("config file %s: %w", configPath, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown setting %q", configPath, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			err = setAll(fs, f, v)
			return
		}
		if v, ok := file[f.Name]; ok {
			if list, isList := v.([]any); isList {
				for _, item := range list {
					if err = fs.Set(f.Name, fmt.Sprint(item)); err != nil {
						return
					}
				}
				return
			}
			err = fs.Set(f.Name, fmt.Sprint(v))
		}
	})
	return err
}

func setAll(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if err := fs.Set(f.Name, v); err != nil {
		return fmt.Errorf("%s: %w", EnvName(f.Name), err)
	}
	return nil
}
