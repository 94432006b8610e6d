package coldstart

import (
	"path/filepath"
	"testing"

	"github.com/flagline/flagline/internal/local/runtimetest"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

func TestLambdaEnvIsTheDeployedEnvironment(t *testing.T) {
	root, err := runtimetest.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := LambdaEnv(tpl, "IngestFunction")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"TABLE_NAME":               "flagline-Table",
		"AWS_REGION":               "eu-west-1",
		"AWS_LAMBDA_FUNCTION_NAME": "IngestFunction",
		// Deployed, secrets come from SSM: the inline variables are empty.
		"FLAGLINE_WEBHOOK_SECRETS": "",
		"FLAGLINE_NOTIFIER_KEY":    "",
	} {
		if got, ok := ingest[k]; !ok || got != want {
			t.Errorf("ingest %s = %q (set %v), want %q", k, got, ok, want)
		}
	}
	for _, k := range []string{"WEBHOOK_SECRETS_PATH", "NOTIFIER_KEY_PARAMETER", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"} {
		if ingest[k] == "" {
			t.Errorf("ingest %s is not set", k)
		}
	}
	alert, err := LambdaEnv(tpl, "AlertFunction")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := alert["ALERTS_TOPIC_ARN"], "arn:aws:sns:eu-west-1:123456789012:flagline-AlertsTopic"; got != want {
		t.Errorf("alert ALERTS_TOPIC_ARN = %q, want %q", got, want)
	}
	if _, err := LambdaEnv(tpl, "NoSuchFunction"); err == nil {
		t.Error("LambdaEnv of a function the template lacks: no error")
	}
	if _, _, err := standIn("Key", "AWS::KMS::Key"); err == nil {
		t.Error("standIn of a KMS key: no error, want one (no stand-in)")
	}
}
