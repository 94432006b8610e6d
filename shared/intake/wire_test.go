package intake_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"

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
	param *webhook.Parameter
}

func (f *fakeGetter) GetParameter(_ context.Context, in *webhook.GetParameterInput) (*webhook.GetParameterOutput, error) {
	f.calls++
	if f.param == nil || in.Name != f.param.Name {
		return nil, &smithy.GenericAPIError{Code: "ParameterNotFound", Message: "parameter not found", Fault: smithy.FaultClient}
	}
	p := *f.param
	if p.Type == webhook.ParameterTypeSecureString && !in.WithDecryption {
		p.Value = "AQICAHh-ciphertext"
	}
	return &webhook.GetParameterOutput{Parameter: &p}, nil
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

	for i, param := range []*webhook.Parameter{
		nil,
		{Name: name, Type: "String", Value: reportstore.NewNotifierKey()},
		{Name: name, Type: webhook.ParameterTypeSecureString, Value: "c2hvcnQ="},
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
	getter.param = &webhook.Parameter{Name: name, Type: webhook.ParameterTypeSecureString, Value: reportstore.NewNotifierKey()}
	if resp, _ := send(t, h, delivery{id: "msg_nokey", body: validBody}); resp.StatusCode != 202 {
		t.Fatalf("with the key: %d %s", resp.StatusCode, resp.Body)
	}
	if getter.calls != 4 {
		t.Errorf("%d GetParameter calls, want 4 (one per attempt, then cached)", getter.calls)
	}
}

// A table that never answers is given up on, with no timer per request: the
// DynamoDB client FromEnv builds times out each attempt and makes at most
// four, and the sender is told 503 to deliver again.
func TestFromEnvBoundsTheWrite(t *testing.T) {
	var attempts atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	cfg := aws.Config{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	}
	h, err := intake.FromEnv(cfg, lookup(map[string]string{
		"TABLE_NAME":          "flagline",
		webhook.EnvSecrets:    `{"demo":["` + newSecret + `"]}`,
		intake.EnvNotifierKey: reportstore.NewNotifierKey(),
	}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if h.StoreTimeout != 0 {
		t.Errorf("StoreTimeout = %s, want none (the client is bounded)", h.StoreTimeout)
	}
	resp, _ := send(t, h, delivery{id: "msg_slow", body: validBody})
	if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
		t.Fatalf("%d %s, want 503 with Retry-After", resp.StatusCode, resp.Body)
	}
	if n := attempts.Load(); n < 1 || n > 4 {
		t.Errorf("%d attempts, want 1 to 4", n)
	}
}

// AWS_MAX_ATTEMPTS above the store's bound does not lift it: a table that
// always answers 500 sees exactly four attempts per delivery, then the
// sender is told 503.
func TestFromEnvBoundsAttemptsOverAWSMaxAttempts(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(500)
		w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"internal"}`))
	}))
	defer srv.Close()
	t.Setenv("AWS_MAX_ATTEMPTS", "10")
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryMaxAttempts != 10 {
		t.Fatalf("RetryMaxAttempts %d, want AWS_MAX_ATTEMPTS", cfg.RetryMaxAttempts)
	}
	h, err := intake.FromEnv(cfg, lookup(map[string]string{
		"TABLE_NAME":          "flagline",
		webhook.EnvSecrets:    `{"demo":["` + newSecret + `"]}`,
		intake.EnvNotifierKey: reportstore.NewNotifierKey(),
	}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := send(t, h, delivery{id: "msg_500", body: validBody})
	if resp.StatusCode != 503 {
		t.Fatalf("%d %s, want 503", resp.StatusCode, resp.Body)
	}
	if n := attempts.Load(); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}
}
