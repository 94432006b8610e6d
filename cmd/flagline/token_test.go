package main

import (
	"strings"
	"testing"
)

// Command-line mistakes of "flagline contacts token" exit 2 with a message
// naming what is wrong, before any AWS call.
func TestContactsTokenCommandLine(t *testing.T) {
	unsetContactsEnv(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"token"}, 2, "missing token subcommand: create, list or revoke"},
		{"unknown subcommand", []string{"token", "rotate"}, 2, `unknown token subcommand "rotate"`},
		{"create without anything", []string{"token", "create"}, 2, "missing --contact-point, --table (or TABLE_NAME)"},
		{"create without table", []string{"token", "create", "--contact-point", "it-polpost"}, 2, "missing --table (or TABLE_NAME)"},
		{"list without contact point", []string{"token", "list", "--table", "t"}, 2, "missing --contact-point"},
		{"revoke without token id", []string{"token", "revoke", "--contact-point", "it-polpost", "--table", "t"}, 2, "missing --token-id"},
		{"token id on create", []string{"token", "create", "--contact-point", "it-polpost", "--table", "t", "--token-id", "x"}, 2, "flag provided but not defined: -token-id"},
		{"stray argument", []string{"token", "list", "--contact-point", "it-polpost", "--table", "t", "extra"}, 2, `unexpected argument "extra"`},
		{"help", []string{"token", "-h"}, 0, "flagline contacts token create --contact-point ID"},
		{"subcommand help", []string{"token", "revoke", "-h"}, 0, "-token-id id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runContactsCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.stderr, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
}

// The table defaults to $TABLE_NAME, as for the other contacts commands.
func TestContactsTokenTableFromEnv(t *testing.T) {
	t.Setenv(tableEnv, " flagline-table ")
	o, err := parseTokenFlags("revoke", []string{"--contact-point", "it-polpost", "--token-id", "0123456789ab"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.table != "flagline-table" || o.contactPoint != "it-polpost" || o.tokenID != "0123456789ab" {
		t.Errorf("options %+v", o)
	}
	o, err = parseTokenFlags("list", []string{"--contact-point", "it-polpost", "--table", "other"}, &strings.Builder{})
	if err != nil || o.table != "other" {
		t.Errorf("--table should win over the environment: %+v %v", o, err)
	}
}

// contacts' own usage names the token commands.
func TestContactsUsageNamesToken(t *testing.T) {
	code, _, stderr := runContactsCLI(t)
	if code != 2 || !strings.Contains(stderr, "flagline contacts token create|list|revoke") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}
