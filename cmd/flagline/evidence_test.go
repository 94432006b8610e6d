package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/evidence"
	"github.com/flagline/flagline/shared/casestore"
)

func runEvidenceCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"evidence"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Command-line mistakes of "flagline evidence" exit 2 with a message naming
// what is wrong, before any AWS call.
func TestEvidenceCommandLine(t *testing.T) {
	t.Setenv(tableEnv, "")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", nil, 2, "missing subcommand: export or verify"},
		{"unknown subcommand", []string{"check"}, 2, `unknown subcommand "check"`},
		{"export without anything", []string{"export"}, 2, "missing --case, --table (or TABLE_NAME)"},
		{"export with a stray argument", []string{"export", "--case", "c1", "--table", "t", "c2"}, 2, `unexpected argument "c2"`},
		{"verify without a file", []string{"verify"}, 2, "give exactly one bundle FILE"},
		{"verify with two files", []string{"verify", "a", "b"}, 2, "give exactly one bundle FILE"},
		{"verify has no --case", []string{"verify", "--case", "c1", "a"}, 2, "flag provided but not defined: -case"},
		{"help", []string{"-h"}, 0, "flagline evidence export --case ID"},
		{"export help", []string{"export", "-h"}, 0, "-out file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runEvidenceCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.stderr, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
}

// "flagline evidence verify" exits 0 with a summary for an intact bundle
// and 1, naming what changed, for one with one byte altered or with
// another bundle_hash than the recorded one.
func TestEvidenceVerifyCLI(t *testing.T) {
	b := &evidence.Bundle{
		Format: evidence.Format,
		Case:   evidence.Case{CaseID: "c_1", Status: "acknowledged", Level: 1, ReportCount: 1, SourceCount: 1, NotifierCount: 1},
		Reports: []evidence.Report{{ReportID: "rep_A", Source: "ngo", ReceivedAt: "2026-12-01T08:00:00Z", BodySHA256: strings.Repeat("0f", 32),
			Notifier: &evidence.Notifier{Email: "ana@ngo.example", KeptUntil: "2027-05-30T08:00:00Z"}}},
		Timeline: []evidence.Event{
			{Event: casestore.Event{At: time.Date(2026, 12, 1, 8, 1, 0, 0, time.UTC), Type: "alerted", Actor: "flagline-alert", Level: 1}},
			{Event: casestore.Event{At: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Type: "acknowledge", Actor: "it-polpost", Status: "acknowledged", Note: "on it"}},
		},
		ExportedAt: "2026-12-01T10:00:00Z",
	}
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	intact := filepath.Join(dir, "intact.json")
	if err := os.WriteFile(intact, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runEvidenceCLI(t, "verify", intact)
	if code != 0 || !strings.Contains(stdout, "intact. Case c_1: 1 reports (1 with the notifier's personal data), 2 timeline events, exported at 2026-12-01T10:00:00Z.") ||
		!strings.Contains(stdout, "bundle_hash "+b.BundleHash) {
		t.Errorf("intact: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runEvidenceCLI(t, "verify", "--bundle-hash", strings.ToUpper(b.BundleHash), intact); code != 0 {
		t.Errorf("intact with its recorded hash: exit %d\n%s%s", code, stdout, stderr)
	}

	altered := filepath.Join(dir, "altered.json")
	i := bytes.Index(data, []byte(`"on it"`)) + 2
	changed := bytes.Clone(data)
	changed[i] = 'O'
	if err := os.WriteFile(altered, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runEvidenceCLI(t, "verify", altered)
	want := "flagline evidence: " + altered + ": evidence bundle refused: timeline entry 2 (seq 2, acknowledge at 2026-12-01T09:00:00Z) was changed: its content does not match its hash"
	if code != 1 || !strings.Contains(stderr, want) || stdout != "" {
		t.Errorf("one byte altered: exit %d, want 1 and %q\nstdout: %s\nstderr: %s", code, want, stdout, stderr)
	}
	t.Logf("altered byte %d: %s", i+1, strings.TrimSpace(stderr))

	code, _, stderr = runEvidenceCLI(t, "verify", "--bundle-hash", strings.Repeat("0", 64), intact)
	if code != 1 || !strings.Contains(stderr, "its bundle_hash is "+b.BundleHash+", not the recorded "+strings.Repeat("0", 64)) {
		t.Errorf("another recorded hash: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runEvidenceCLI(t, "verify", filepath.Join(dir, "missing.json"))
	if code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d\n%s", code, stderr)
	}
}
