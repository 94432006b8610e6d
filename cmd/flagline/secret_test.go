package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// What `flagline secret` prints is accepted where it is meant to go.
func TestSecretCommand(t *testing.T) {
	run := func(args ...string) string {
		var out bytes.Buffer
		if err := commands["secret"].run(context.Background(), args, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	if _, err := webhook.ParseSecret(run()); err != nil {
		t.Errorf("secret: %v", err)
	}
	if _, err := reportstore.ParseNotifierKey(run("--notifier-key")); err != nil {
		t.Errorf("--notifier-key: %v", err)
	}
	if run("--notifier-key") == run("--notifier-key") {
		t.Error("two notifier keys are the same")
	}
	if _, err := linksign.ParseKey(run("--link-key")); err != nil {
		t.Errorf("--link-key: %v", err)
	}
	if run("--link-key") == run("--link-key") {
		t.Error("two link keys are the same")
	}
	if err := commands["secret"].run(context.Background(), []string{"--link-key", "--notifier-key"}, io.Discard, io.Discard); err == nil {
		t.Error("--link-key with --notifier-key: no error")
	}
}

// A mistake in secret's command line exits 2, as in every other command,
// not 1 (which says the command ran and failed).
func TestSecretCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", []string{"secret", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"both keys", []string{"secret", "--link-key", "--notifier-key"}, 2, "choose one"},
		{"stray argument", []string{"secret", "now"}, 2, `unexpected argument "now"`},
		{"help", []string{"secret", "-h"}, 0, "-link-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) || stdout.Len() != 0 {
				t.Errorf("exit %d, want %d; stdout %q; stderr lacks %q:\n%s", code, tc.code, stdout.String(), tc.stderr, stderr.String())
			}
		})
	}
}
