package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

// Mistakes in `flagline dev`'s -param and -schedule-every flags are usage
// errors (exit 2) found before anything starts: the address given cannot
// be listened on, so a run that got further would fail differently.
func TestDevParamFlagErrors(t *testing.T) {
	template := filepath.Join("..", "..", "template.yaml")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no equals sign", []string{"--param", "LevelThresholds"}, `"LevelThresholds": want Name=Value`},
		{"no name", []string{"--param", "=2,4"}, `"=2,4": want Name=Value`},
		{"given twice", []string{"--param", "Stage=a", "--param", "Stage=b"}, "parameter Stage given twice"},
		{"unknown parameter", []string{"--param", "LevelTresholds=2,4"}, "declares no parameter LevelTresholds (its parameters: "},
		{"value breaks a constraint", []string{"--param", "LogRetentionDays=8"}, "not one of AllowedValues"},
		{"not a duration", []string{"--schedule-every", "2"}, "invalid value \"2\" for flag -schedule-every"},
		{"negative interval", []string{"--schedule-every", "-2s"}, "-schedule-every -2s: not positive"},
		{"unknown flag", []string{"--parm", "Stage=dev"}, "flag provided but not defined: -parm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			args := append([]string{"dev", "--addr", "256.0.0.1:bad", "--contacts", "", "--template", template}, tc.args...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit %d, want 2 (usage); stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
		})
	}
}

// A value may itself hold "=" (a URL's query): only the first one splits.
func TestParamFlagKeepsEqualsInValue(t *testing.T) {
	p := paramFlag{}
	if err := p.Set("DashboardUrl=https://dash.example/?a=b"); err != nil {
		t.Fatal(err)
	}
	if p["DashboardUrl"] != "https://dash.example/?a=b" {
		t.Errorf("got %v", p)
	}
}

// flagline dev prints the overrides in effect: each parameter with the
// default it replaces, and each schedule with the interval it runs at.
func TestPrintOverrides(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	printOverrides(&out, tpl, map[string]string{"LevelThresholds": "2,4", "Stage": "dev"}, 2*time.Second, []devstack.ScheduledFunction{
		{Function: "EscalateFunction", Expression: "rate(1 minute)", Every: 2 * time.Second},
		{Function: "RetiredFunction", Expression: "rate(1 hour)", Disabled: true},
	})
	for _, want := range []string{
		`param    LevelThresholds = "2,4" (template default "5,25,100")`,
		`param    Stage = "dev" (template default "prod")`,
		`every 2s (template: rate(1 minute))`,
		`→ EscalateFunction`,
		`rate(1 hour)`,
		`→ RetiredFunction (disabled in the template)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not show %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	printOverrides(&out, tpl, nil, 2*time.Second, nil)
	if !strings.Contains(out.String(), "schedule every 2s: the template has no scheduled function") {
		t.Errorf("output %q: want a note that nothing is scheduled", out.String())
	}
}
