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
