// Package config reads a function's settings from its environment. Every
// missing variable is collected, so start-up fails once with a message that
// names all of them.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads variables and remembers which required ones were missing or bad.
type Env struct {
	Lookup  func(string) (string, bool)
	missing []string
	bad     []string
}

// FromOS reads the process environment.
func FromOS() *Env { return &Env{Lookup: os.LookupEnv} }

// Required returns the value of name, noting it when unset or empty.
func (e *Env) Required(name string) string {
	v, ok := e.Lookup(name)
	if !ok || v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// Optional returns the value of name, or def when unset or empty.
func (e *Env) Optional(name, def string) string {
	if v, ok := e.Lookup(name); ok && v != "" {
		return v
	}
	return def
}

// Int returns name as a positive integer, or def when unset.
func (e *Env) Int(name string, def int) int {
	v := e.Optional(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q is not a positive integer", name, v))
		return def
	}
	return n
}

// Ints returns name as a comma-separated list of positive integers in
// increasing order, or def when unset.
func (e *Env) Ints(name string, def []int) []int {
	v := e.Optional(name, "")
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(out) > 0 && n <= out[len(out)-1]) {
			e.bad = append(e.bad, fmt.Sprintf("%s=%q must be increasing positive integers separated by commas", name, v))
			return def
		}
		out = append(out, n)
	}
	return out
}

// Duration returns name parsed by time.ParseDuration, or def when unset.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.Optional(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q is not a positive duration such as 90s", name, v))
		return def
	}
	return d
}

// Err names every missing and malformed variable, or is nil.
func (e *Env) Err() error {
	var parts []string
	if len(e.missing) > 0 {
		parts = append(parts, "missing environment variables: "+strings.Join(e.missing, ", "))
	}
	parts = append(parts, e.bad...)
	if len(parts) == 0 {
		return nil
	}
	return errors.New(strings.Join(parts, "; "))
}
