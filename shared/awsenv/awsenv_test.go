package awsenv_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/awsenv"
)

// lambdaEnv sets what Lambda sets, and points the shared config files at
// nothing so the developer's own never count.
func lambdaEnv(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION":                          "eu-west-1",
		"AWS_ACCESS_KEY_ID":                   "ASIAFLAGLINE",
		"AWS_SECRET_ACCESS_KEY":               "secret",
		"AWS_SESSION_TOKEN":                   "session",
		"AWS_CONFIG_FILE":                     "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":         "/dev/null",
		"AWS_ENDPOINT_URL":                    "",
		"AWS_ENDPOINT_URL_DYNAMODB":           "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"AWS_PROFILE":                         "",
	} {
		t.Setenv(k, v)
	}
}

// The execution role's credentials and the region come from the
// environment, as Lambda gives them.
func TestLoadFromLambdaEnvironment(t *testing.T) {
	lambdaEnv(t)
	cfg, err := awsenv.Load()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "ASIAFLAGLINE" || creds.SecretAccessKey != "secret" || creds.SessionToken != "session" {
		t.Errorf("credentials %+v, %v", creds, err)
	}
	if cfg.Region != "eu-west-1" || cfg.BaseEndpoint != nil {
		t.Errorf("region %q, endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
}

// Without region or credentials the function does not start, and says what
// is missing.
func TestLoadNamesWhatIsMissing(t *testing.T) {
	lambdaEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY", "")
	_, err := awsenv.Load()
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("Load without region and credentials: %v", err)
	}
}

// A local AWS is reached through AWS_ENDPOINT_URL, or the DynamoDB one
// through AWS_ENDPOINT_URL_DYNAMODB, as with the SDK's default config; with
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS neither is used.
func TestLoadEndpoints(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.Contains(r.Header.Get("Authorization"), "Credential=ASIAFLAGLINE/") || r.Header.Get("X-Amz-Security-Token") != "session" {
			t.Errorf("request not signed with the environment's credentials: %v", r.Header)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write([]byte(`{"TableNames":["flagline"]}`))
	}))
	defer srv.Close()
	listTables := func() error {
		cfg, err := awsenv.Load()
		if err != nil {
			t.Fatal(err)
		}
		cfg.RetryMaxAttempts = 1
		_, err = dynamodb.NewFromConfig(cfg).ListTables(context.Background(), &dynamodb.ListTablesInput{})
		return err
	}
	for _, name := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Run(name, func(t *testing.T) {
			lambdaEnv(t)
			t.Setenv(name, srv.URL)
			before := calls.Load()
			if err := listTables(); err != nil || calls.Load() != before+1 {
				t.Errorf("ListTables: %v, %d calls reached the local endpoint", err, calls.Load()-before)
			}
		})
	}
	t.Run("ignored", func(t *testing.T) {
		lambdaEnv(t)
		t.Setenv("AWS_ENDPOINT_URL", srv.URL)
		t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
		cfg, err := awsenv.Load()
		if err != nil || cfg.BaseEndpoint != nil {
			t.Errorf("endpoint %v, %v; want none", aws.ToString(cfg.BaseEndpoint), err)
		}
	})
}
