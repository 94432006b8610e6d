package intake_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// A function with no way to key notifier pseudonyms does not start, and says
// which variables would give it one.
func TestFromEnvNeedsANotifierKey(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "flagline", webhook.EnvSecrets: `{"demo":["` + oldSecret + `"]}`}
	_, err := intake.FromEnv(aws.Config{}, lookup(base), quietLog())
	if err == nil || !strings.Contains(err.Error(), intake.EnvNotifierKey) || !strings.Contains(err.Error(), intake.EnvNotifierKeyParameter) {
		t.Fatalf("FromEnv without a notifier key: %v", err)
	}
	bad := strings.Repeat("QUJD", 8) // 24 bytes: too short
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	if _, err := intake.FromEnv(aws.Config{}, lookup(with(intake.EnvNotifierKey, bad)), quietLog()); err == nil {
		t.Error("short inline key accepted")
	} else if strings.Contains(err.Error(), bad) {
		t.Errorf("error reveals the key: %v", err)
	}
	if _, err := intake.FromEnv(aws.Config{}, lookup(with(intake.EnvNotifierKeyParameter, "notifier-key")), quietLog()); err == nil {
		t.Error("relative parameter name accepted")
	}
	for k, v := range map[string]string{intake.EnvNotifierKey: reportstore.NewNotifierKey(), intake.EnvNotifierKeyParameter: "/flagline/prod/notifier-key"} {
		if _, err := intake.FromEnv(aws.Config{}, lookup(with(k, v)), quietLog()); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

type fakeGetter struct {
	calls int
	param *ssmtypes.Parameter
}

func (f *fakeGetter) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls++
	if f.param == nil || aws.ToString(in.Name) != aws.ToString(f.param.Name) {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("parameter not found")}
	}
	p := *f.param
	if p.Type == ssmtypes.ParameterTypeSecureString && !aws.ToBool(in.WithDecryption) {
		p.Value = aws.String("AQICAHh-ciphertext")
	}
	return &ssm.GetParameterOutput{Parameter: &p}, nil
}

type countingPut struct{ n int }

func (c *countingPut) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n++
	return &dynamodb.PutItemOutput{}, nil
}

// On AWS the key is a SecureString parameter. While it is missing (or not a
// SecureString, or malformed) every delivery is answered 503 and nothing is
// stored; once it is put, reports are stored with pseudonyms under it.
func TestMissingNotifierKeyAnswers503(t *testing.T) {
	const name = "/flagline/prod/notifier-key"
	getter := &fakeGetter{}
	now := time.Unix(1_800_000_000, 0)
	keys := &intake.SSMNotifierKey{Client: getter, Name: name, TTL: 5 * time.Minute, Now: func() time.Time { return now }}
	db := &countingPut{}
	h, _ := newHandler()
	h.Reports = &reportstore.Store{DB: db, Table: "flagline", NotifierKey: keys}

	for i, param := range []*ssmtypes.Parameter{
		nil,
		{Name: aws.String(name), Type: ssmtypes.ParameterTypeString, Value: aws.String(reportstore.NewNotifierKey())},
		{Name: aws.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String("c2hvcnQ=")},
	} {
		getter.param = param
		resp, _ := send(t, h, delivery{id: "msg_nokey", body: validBody})
		if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
			t.Fatalf("case %d: %d %s, want 503 with Retry-After", i, resp.StatusCode, resp.Body)
		}
		now = now.Add(5 * time.Minute) // past any backoff
	}
	if db.n != 0 {
		t.Fatalf("%d reports stored without a notifier key", db.n)
	}
	getter.param = &ssmtypes.Parameter{Name: aws.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(reportstore.NewNotifierKey())}
	if resp, _ := send(t, h, delivery{id: "msg_nokey", body: validBody}); resp.StatusCode != 202 {
		t.Fatalf("with the key: %d %s", resp.StatusCode, resp.Body)
	}
	if getter.calls != 4 {
		t.Errorf("%d GetParameter calls, want 4 (one per attempt, then cached)", getter.calls)
	}
}
