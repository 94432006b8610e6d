package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// ssmServer answers as the SSM JSON 1.1 API does: POST /, the action in
// X-Amz-Target, a SigV4 Authorization for service ssm, errors as
// {"__type": …, "message": …} with a 4xx or 5xx status.
type ssmServer struct {
	t        *testing.T
	requests []map[string]any
	answer   func(action string, in map[string]any) (int, string)
}

func (s *ssmServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		s.t.Errorf("%s %s, want POST /", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		s.t.Errorf("Content-Type %q", got)
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDFLAGLINE/") || !strings.Contains(auth, "/eu-west-1/ssm/aws4_request") ||
		!strings.Contains(auth, "x-amz-target") {
		s.t.Errorf("Authorization %q is not SigV4 for ssm in eu-west-1 covering X-Amz-Target", auth)
	}
	if r.Header.Get("X-Amz-Security-Token") != "session" {
		s.t.Errorf("session token not sent")
	}
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	if !ok {
		s.t.Errorf("X-Amz-Target %q", r.Header.Get("X-Amz-Target"))
	}
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		s.t.Errorf("body %q: %v", body, err)
	}
	s.requests = append(s.requests, in)
	status, answer := s.answer(action, in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

func newSSMClient(t *testing.T, answer func(string, map[string]any) (int, string)) (*webhook.SSMClient, *ssmServer) {
	s := &ssmServer{t: t, answer: answer}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := webhook.NewSSMClient(aws.Config{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLAGLINE", "secret", "session"),
		RetryMaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// The store reads every page through the client: the request members are
// those of GetParametersByPath, NextToken is followed, values come back as
// the store parses them.
func TestSSMClientReadsEveryPage(t *testing.T) {
	c, srv := newSSMClient(t, func(action string, in map[string]any) (int, string) {
		if action != "GetParametersByPath" {
			return 400, `{"__type":"UnknownOperationException"}`
		}
		if in["NextToken"] == nil {
			return 200, `{"Parameters":[{"Name":"/flagline/prod/sources/demo","Type":"SecureString","Value":"` + secretA + `","Version":1,"LastModifiedDate":1.8E9,"ARN":"arn:aws:ssm:eu-west-1:1:parameter/flagline/prod/sources/demo","DataType":"text"}],"NextToken":"t2"}`
		}
		return 200, `{"Parameters":[{"Name":"/flagline/prod/sources/ngo","Type":"String","Value":"` + secretA + `"}]}`
	})
	s := &webhook.SSMStore{Client: c, Path: "/flagline/prod/sources", TTL: 300e9}
	if got, err := s.Secrets(context.Background(), "demo"); err != nil || got.Len() != 1 {
		t.Fatalf("demo: %d secrets, %v", got.Len(), err)
	}
	if _, err := s.Secrets(context.Background(), "ngo"); !errors.Is(err, webhook.ErrSecretsUnavailable) {
		t.Fatalf("String parameter on the second page: %v, want ErrSecretsUnavailable", err)
	}
	if len(srv.requests) != 2 {
		t.Fatalf("%d requests, want 2 pages", len(srv.requests))
	}
	first, second := srv.requests[0], srv.requests[1]
	if first["Path"] != "/flagline/prod/sources" || first["WithDecryption"] != true || first["MaxResults"] != float64(10) || first["NextToken"] != nil {
		t.Errorf("first request %v", first)
	}
	if second["NextToken"] != "t2" {
		t.Errorf("second request %v, want NextToken t2", second)
	}
}

// Errors come back as the generated client gives them: a smithy.APIError
// with the code (namespace stripped) that callers and the retryer branch on.
// Throttling is retried up to the configured attempts; a missing parameter
// is not retried.
func TestSSMClientErrors(t *testing.T) {
	throttled := 0
	c, srv := newSSMClient(t, func(action string, in map[string]any) (int, string) {
		switch in["Name"] {
		case "/throttled":
			throttled++
			if throttled < 3 {
				return 400, `{"__type":"com.amazonaws.ssm#ThrottlingException","message":"Rate exceeded"}`
			}
			return 200, `{"Parameter":{"Name":"/throttled","Type":"SecureString","Value":"v"}}`
		case "/down":
			return 500, `{"__type":"InternalServerError","message":"internal"}`
		}
		return 400, `{"__type":"ParameterNotFound","message":""}`
	})
	ctx := context.Background()
	out, err := c.GetParameter(ctx, &webhook.GetParameterInput{Name: "/throttled", WithDecryption: true})
	if err != nil || out.Parameter == nil || out.Parameter.Value != "v" || throttled != 3 {
		t.Fatalf("throttled twice: %+v %v after %d calls, want the value on the third", out, err, throttled)
	}
	var apiErr smithy.APIError
	n := len(srv.requests)
	if _, err := c.GetParameter(ctx, &webhook.GetParameterInput{Name: "/missing"}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ParameterNotFound" || apiErr.ErrorFault() != smithy.FaultClient {
		t.Fatalf("missing parameter: %v", err)
	}
	if len(srv.requests) != n+1 {
		t.Errorf("ParameterNotFound sent %d requests, want 1 (not retried)", len(srv.requests)-n)
	}
	if _, err := c.GetParameter(ctx, &webhook.GetParameterInput{Name: "/down"}); !errors.As(err, &apiErr) || apiErr.ErrorFault() != smithy.FaultServer {
		t.Fatalf("server error: %v", err)
	}
}

// The notifier key is read with the same client: a String parameter is
// refused, a SecureString is used.
func TestSSMClientNotifierKey(t *testing.T) {
	typ, key := "String", reportstore.NewNotifierKey()
	c, _ := newSSMClient(t, func(action string, in map[string]any) (int, string) {
		if action != "GetParameter" || in["WithDecryption"] != true {
			t.Errorf("%s %v", action, in)
		}
		return 200, `{"Parameter":{"Name":"/flagline/prod/notifier-key","Type":"` + typ + `","Value":"` + key + `"}}`
	})
	k := &intake.SSMNotifierKey{Client: c, Name: "/flagline/prod/notifier-key", TTL: 1}
	if _, err := k.NotifierKey(context.Background()); err == nil || !strings.Contains(err.Error(), "SecureString") {
		t.Fatalf("String parameter: %v", err)
	}
	typ = webhook.ParameterTypeSecureString
	if _, err := k.NotifierKey(context.Background()); err != nil {
		t.Fatalf("SecureString parameter: %v", err)
	}
}

// AWS_ENDPOINT_URL_SSM points the client at a local SSM, as it points the
// generated client.
func TestSSMClientServiceEndpoint(t *testing.T) {
	s := &ssmServer{t: t, answer: func(string, map[string]any) (int, string) {
		return 200, `{"Parameter":{"Name":"/p","Type":"SecureString","Value":"v"}}`
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	c, err := webhook.NewSSMClient(aws.Config{
		Region:        "eu-west-1",
		Credentials:   credentials.NewStaticCredentialsProvider("AKIDFLAGLINE", "secret", "session"),
		ConfigSources: []any{config.EnvConfig{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.GetParameter(context.Background(), &webhook.GetParameterInput{Name: "/p", WithDecryption: true}); err != nil || out.Parameter.Value != "v" || len(s.requests) != 1 {
		t.Fatalf("%+v %v, %d requests reached AWS_ENDPOINT_URL_SSM", out, err, len(s.requests))
	}
}

// stalledSSM is an SSM endpoint that accepts requests and answers none for
// 30 seconds, and reports whether any such sleep ended.
func stalledSSM(t *testing.T) (*webhook.SSMClient, *atomic.Bool) {
	var woke atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(30 * time.Second):
			woke.Store(true)
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := webhook.NewSSMClient(aws.Config{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLAGLINE", "secret", "session"),
		RetryMaxAttempts: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, &woke
}

// A stalled SSM is given up on while the invocation still has time, so the
// sender gets a 503 with Retry-After instead of the function timing out:
// the secrets and the notifier key reads, given a 10-second invocation
// context, return ErrSecretsUnavailable before that context ends and while
// the server is still sleeping.
func TestSSMReadsGiveUpOnAStalledSSM(t *testing.T) {
	reads := map[string]func(context.Context, *webhook.SSMClient) error{
		"webhook secrets": func(ctx context.Context, c *webhook.SSMClient) error {
			_, err := (&webhook.SSMStore{Client: c, Path: "/flagline/prod/sources", TTL: webhook.RefreshPeriod}).Secrets(ctx, "demo")
			return err
		},
		"notifier key": func(ctx context.Context, c *webhook.SSMClient) error {
			_, err := (&intake.SSMNotifierKey{Client: c, Name: "/flagline/prod/notifier-key", TTL: webhook.RefreshPeriod}).NotifierKey(ctx)
			return err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, woke := stalledSSM(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := read(ctx, c)
			if !errors.Is(err, webhook.ErrSecretsUnavailable) {
				t.Fatalf("%v, want ErrSecretsUnavailable", err)
			}
			if ctx.Err() != nil {
				t.Errorf("returned only when the invocation's context ended: %v", err)
			}
			if woke.Load() {
				t.Errorf("returned after the server's 30 s sleep")
			}
		})
	}
}

// One stalled request is abandoned and tried again within the read's
// budget: a read whose first request never answers still gets the secrets
// from the second.
func TestSSMClientRetriesAStalledRequest(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			<-release
			return
		}
		io.WriteString(w, `{"Parameters":[{"Name":"/flagline/prod/sources/demo","Type":"SecureString","Value":"`+secretA+`"}]}`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := webhook.NewSSMClient(aws.Config{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFLAGLINE", "secret", "session"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &webhook.SSMStore{Client: c, Path: "/flagline/prod/sources", TTL: webhook.RefreshPeriod}
	if got, err := s.Secrets(ctx, "demo"); err != nil || got.Len() != 1 {
		t.Fatalf("%d secrets, %v after %d requests", got.Len(), err, requests.Load())
	}
}
