package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func runSilencesCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"silences"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Command-line mistakes of "flagline silences" exit 2 with a message
// naming what is wrong, before any AWS call.
func TestSilencesCommandLine(t *testing.T) {
	unsetContactsEnv(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", nil, 2, "missing subcommand: add, list or expire"},
		{"unknown subcommand", []string{"mute"}, 2, `unknown subcommand "mute"`},
		{"add without anything", []string{"add"}, 2, "missing --contact-point, --until, --reason, --table (or TABLE_NAME)"},
		{"add with a blank reason", []string{"add", "--contact-point", "it-polpost", "--until", "2h", "--reason", " ", "--table", "t"}, 2, "missing --reason"},
		{"add with a bad until", []string{"add", "--contact-point", "it-polpost", "--until", "tomorrow", "--reason", "x", "--table", "t"}, 2, `--until "tomorrow" is neither an RFC 3339 time`},
		{"expire without silence id", []string{"expire", "--contact-point", "it-polpost", "--table", "t"}, 2, "missing --silence-id"},
		{"list without table", []string{"list"}, 2, "missing --table (or TABLE_NAME)"},
		{"silence id on add", []string{"add", "--silence-id", "x"}, 2, "flag provided but not defined: -silence-id"},
		{"stray argument", []string{"list", "--table", "t", "extra"}, 2, `unexpected argument "extra"`},
		{"help", []string{"-h"}, 0, "flagline silences add    --contact-point ID --until TIME --reason TEXT"},
		{"subcommand help", []string{"expire", "-h"}, 0, "-silence-id id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSilencesCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.stderr, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
}

// --until is RFC 3339 or a whole number of minutes, hours or days from now.
func TestSilencesUntil(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90m":                       now.Add(90 * time.Minute),
		"2h":                        now.Add(2 * time.Hour),
		"3d":                        now.Add(72 * time.Hour),
		"2026-12-24T08:00:00+01:00": time.Date(2026, 12, 24, 7, 0, 0, 0, time.UTC),
		"2026-12-24T07:00:00Z":      time.Date(2026, 12, 24, 7, 0, 0, 0, time.UTC),
	} {
		got, err := parseUntil(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseUntil(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "h", "0h", "-2h", "+2h", "2w", "1.5h", "2 h", "2026-12-24", "2026-12-24 08:00"} {
		if got, err := parseUntil(in, now); err == nil {
			t.Errorf("parseUntil(%q) = %s, want an error", in, got)
		}
	}
}

// The table defaults to $TABLE_NAME; --table wins.
func TestSilencesTableFromEnv(t *testing.T) {
	t.Setenv(tableEnv, " flagline-table ")
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	o, err := parseSilencesFlags("add", []string{"--contact-point", "it-polpost", "--until", "3d", "--reason", "holiday"}, now, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.table != "flagline-table" || o.contactPoint != "it-polpost" || !o.until.Equal(now.Add(72*time.Hour)) || o.reason != "holiday" {
		t.Errorf("options %+v", o)
	}
	o, err = parseSilencesFlags("list", []string{"--table", "other"}, now, &strings.Builder{})
	if err != nil || o.table != "other" || o.contactPoint != "" {
		t.Errorf("--table should win over the environment: %+v %v", o, err)
	}
}
