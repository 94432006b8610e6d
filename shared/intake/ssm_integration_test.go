//go:build integration

package intake_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// putSecure stores a SecureString parameter in moto's Parameter Store.
func putSecure(t *testing.T, c *ssm.Client, name, value string) {
	t.Helper()
	if _, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
}

// The deployed configuration over the wire: source secrets and the notifier
// key as SecureString parameters, read with GetParametersByPath (more
// sources than one page holds, one malformed) and GetParameter.
func TestSecretsFromSSM(t *testing.T) {
	e := newEnv(t)
	c := ssm.NewFromConfig(moto.Config())
	stage := fmt.Sprintf("/flagline/it%d", time.Now().UnixNano())
	secrets := map[string]string{}
	for i := range 12 {
		name := fmt.Sprintf("src-%02d", i)
		secrets[name] = webhook.NewSecret()
		putSecure(t, c, stage+"/sources/"+name, secrets[name])
	}
	putSecure(t, c, stage+"/sources/demo", oldSecret+" "+newSecret)
	putSecure(t, c, stage+"/sources/raw", strings.TrimPrefix(webhook.NewSecret(), "whsec_"))
	putSecure(t, c, stage+"/sources/Upper", webhook.NewSecret())
	key := reportstore.NewNotifierKey()
	putSecure(t, c, stage+"/notifier-key", key)

	env := map[string]string{
		"TABLE_NAME":                   e.table,
		webhook.EnvSecretsPath:         stage + "/sources",
		intake.EnvNotifierKeyParameter: stage + "/notifier-key",
		"REPORT_RETENTION_DAYS":        "30",
	}
	h, err := intake.FromEnv(moto.Config(), lookup(env), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := send(t, h, delivery{id: "msg_ssm_demo", body: validBody}); resp.StatusCode != 202 {
		t.Fatalf("demo: %d %s", resp.StatusCode, resp.Body)
	}
	for _, name := range []string{"src-00", "src-11"} { // first and second page
		if resp, _ := send(t, h, delivery{source: name, secret: secrets[name], id: "msg_ssm_" + name, body: validBody}); resp.StatusCode != 202 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, resp.Body)
		}
	}
	if resp, _ := send(t, h, delivery{source: "raw", id: "msg_ssm_raw", body: validBody}); resp.StatusCode != 503 {
		t.Errorf("source with an un-prefixed secret: %d %s, want 503", resp.StatusCode, resp.Body)
	}
	k, err := reportstore.ParseNotifierKey(key)
	if err != nil {
		t.Fatal(err)
	}
	items := e.items(t)
	if len(items) != 3 {
		t.Fatalf("%d items, want 3", len(items))
	}
	for _, item := range items {
		if got, want := str(item, "notifier_hash"), k.NotifierHash("desk@monitor.example.org"); got != want {
			t.Errorf("notifier_hash = %q, want %q (keyed with the SSM key)", got, want)
		}
	}

	// A stage whose key was never put stores nothing and answers 503.
	env[intake.EnvNotifierKeyParameter] = stage + "/no-such-key"
	h, err = intake.FromEnv(moto.Config(), lookup(env), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := send(t, h, delivery{id: "msg_ssm_nokey", body: validBody}); resp.StatusCode != 503 {
		t.Errorf("without the key parameter: %d %s, want 503", resp.StatusCode, resp.Body)
	}
	if n := len(e.items(t)); n != 3 {
		t.Errorf("%d items after a delivery without a key, want 3", n)
	}
}
