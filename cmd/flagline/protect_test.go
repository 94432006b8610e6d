package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProtectCommandLine(t *testing.T) {
	t.Setenv(tableEnv, "")
	example := filepath.Join("..", "..", "humanitarian.example.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources:\n  - name: A\n    entries: [{domain: facebook.com}, {url: x.org}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no subcommand", []string{"protect"}, 2, "", "missing subcommand"},
		{"unknown subcommand", []string{"protect", "sync"}, 2, "", `unknown subcommand "sync"`},
		{"validate", []string{"protect", "validate", "--file", example}, 0, "40 entries, valid.", ""},
		{"validate as argument", []string{"protect", "validate", example}, 0, "valid.", ""},
		{"file twice", []string{"protect", "validate", "--file", example, example}, 2, "", "the file is given twice"},
		{"missing file", []string{"protect", "validate", "--file", "nope.yaml"}, 2, "", "--file: stat nope.yaml"},
		{"invalid file", []string{"protect", "validate", bad}, 1, "", `unknown field "url"`},
		{"apply without table", []string{"protect", "apply", example}, 2, "", "missing --table (or TABLE_NAME)"},
		{"apply without file", []string{"protect", "apply", "--table", "t"}, 2, "", "missing --file"},
		{"show without either", []string{"protect", "show"}, 2, "", "missing --table"},
		{"show a file", []string{"protect", "show", example}, 0, "Alarm Phone (handle x.com/alarm_phone)\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
