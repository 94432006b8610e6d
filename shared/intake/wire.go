package intake

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// Environment variables that give the notifier key (see
// reportstore.NotifierKey).
const (
	// EnvNotifierKey holds the key inline, in base64 (local runs, tests). It
	// wins when set.
	EnvNotifierKey = "FLAGLINE_NOTIFIER_KEY"
	// EnvNotifierKeyParameter names the SecureString parameter holding the
	// key (deployed functions), e.g. /flagline/prod/notifier-key.
	EnvNotifierKeyParameter = "NOTIFIER_KEY_PARAMETER"
)

// FromEnv builds the intake handler from a function's environment:
// TABLE_NAME (required), REPORT_RETENTION_DAYS (default 180), the webhook
// secrets (FLAGLINE_WEBHOOK_SECRETS inline, or WEBHOOK_SECRETS_PATH in SSM)
// and the notifier key (FLAGLINE_NOTIFIER_KEY inline, or
// NOTIFIER_KEY_PARAMETER in SSM). It makes clients but no network call; a
// variable missing or malformed stops start-up. What is read from SSM is
// read at first use and every webhook.RefreshPeriod: while it cannot be
// had, deliveries are answered 503 and nothing is stored.
// The Lambda function and `flagline dev` both build their handler here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	retentionDays := env.Int("REPORT_RETENTION_DAYS", 180)
	if err := env.Err(); err != nil {
		return nil, err
	}
	// Parameter Store is read with webhook.SSMClient, not service/ssm: see
	// there why.
	var (
		client    *webhook.SSMClient
		clientErr error
	)
	newSSM := func() *webhook.SSMClient {
		if client == nil && clientErr == nil {
			client, clientErr = webhook.NewSSMClient(cfg)
		}
		return client
	}
	secrets, err := webhook.StoreFromEnv(lookup, func() webhook.ParameterReader { return newSSM() }, log)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	keys, err := NotifierKeyFromEnv(lookup, func() ParameterGetter { return newSSM() })
	if err != nil {
		return nil, fmt.Errorf("notifier key: %w", err)
	}
	if clientErr != nil {
		// Every read would fail: refuse to start rather than answer 503
		// until someone looks.
		return nil, clientErr
	}
	return &Handler{
		Secrets: secrets,
		Reports: &reportstore.Store{
			DB:          dynamodb.NewFromConfig(cfg, boundStore),
			Table:       table,
			Retention:   time.Duration(retentionDays) * 24 * time.Hour,
			NotifierKey: keys,
		},
		Log:          log,
		StoreTimeout: storeTimeout(cfg),
	}, nil
}

// The DynamoDB write is bounded by its client, set up once here, rather than
// by a timer made for every request: each attempt may take
// storeAttemptTimeout (the HTTP client's timeout, which "includes connection
// time, any redirects, and reading the response body",
// https://aws.github.io/aws-sdk-go-v2/docs/configuring-sdk/custom-http/#timeout),
// and the waits between DynamoDB's four attempts are capped at
// storeMaxBackoff. So a write gives up after at most 4 × 1 s + 3 × 0.2 s =
// 4.6 s, answered 503 (the error is a timeout, retryable), well within the
// function's 10-second timeout and API Gateway's 30 seconds.
const (
	storeAttemptTimeout = time.Second
	storeMaxBackoff     = 200 * time.Millisecond
	storeMaxAttempts    = 4
)

// boundStore applies the bound above; with an HTTP client that is not the
// SDK's buildable one (a test's), the handler's StoreTimeout takes over.
func boundStore(o *dynamodb.Options) {
	if b, ok := o.HTTPClient.(*awshttp.BuildableClient); ok {
		o.HTTPClient = b.WithTimeout(storeAttemptTimeout)
	}
	// dynamodb.New wraps the retryer with o.RetryMaxAttempts after these
	// options run (AWS_MAX_ATTEMPTS sets it), so the bound goes there: a
	// retryer wrapped here would be wrapped again with the larger number.
	if o.RetryMaxAttempts == 0 || o.RetryMaxAttempts > storeMaxAttempts {
		o.RetryMaxAttempts = storeMaxAttempts
	}
	o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, storeMaxBackoff)
}

// storeTimeout is the handler's own bound on the write when boundStore
// cannot bound the client: none with the SDK's HTTP client.
func storeTimeout(cfg aws.Config) time.Duration {
	if _, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok || cfg.HTTPClient == nil {
		return 0
	}
	return 5 * time.Second
}

// NotifierKeyFromEnv returns the inline key of EnvNotifierKey when set, else
// an SSMNotifierKey reading EnvNotifierKeyParameter with the client newSSM
// makes (called only then). Neither set is an error: no report may be stored
// without a keyed pseudonym.
func NotifierKeyFromEnv(lookup func(string) (string, bool), newSSM func() ParameterGetter) (reportstore.NotifierKeySource, error) {
	if inline, ok := lookup(EnvNotifierKey); ok && inline != "" {
		k, err := reportstore.ParseNotifierKey(inline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvNotifierKey, err)
		}
		return k, nil
	}
	if name, ok := lookup(EnvNotifierKeyParameter); ok && name != "" {
		if !strings.HasPrefix(name, "/") {
			return nil, fmt.Errorf("%s must be an absolute parameter name such as /flagline/prod/notifier-key", EnvNotifierKeyParameter)
		}
		return &SSMNotifierKey{Client: newSSM(), Name: name, TTL: webhook.RefreshPeriod}, nil
	}
	return nil, fmt.Errorf("set %s (SSM parameter, deployed) or %s (base64 key, local)", EnvNotifierKeyParameter, EnvNotifierKey)
}

// ParameterGetter is the SSM call SSMNotifierKey makes.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *webhook.GetParameterInput) (*webhook.GetParameterOutput, error)
}

var _ ParameterGetter = (*webhook.SSMClient)(nil)

// SSMNotifierKey reads the notifier key from one SecureString parameter,
// refreshed and backed off as the webhook secrets are (webhook.Refresher).
// A key that is missing, unreadable, not a SecureString or malformed gives
// an error, so Put stores nothing and intake answers 503 until an operator
// puts the key: a report is never stored with an unkeyed pseudonym.
type SSMNotifierKey struct {
	Client ParameterGetter
	Name   string
	TTL    time.Duration
	Now    func() time.Time

	once sync.Once
	r    *webhook.Refresher[reportstore.NotifierKey]
}

// NotifierKey implements reportstore.NotifierKeySource.
func (s *SSMNotifierKey) NotifierKey(ctx context.Context) (reportstore.NotifierKey, error) {
	s.once.Do(func() {
		s.r = &webhook.Refresher[reportstore.NotifierKey]{Load: s.load, Period: s.TTL, Now: s.Now}
	})
	return s.r.Get(ctx)
}

func (s *SSMNotifierKey) load(ctx context.Context) (reportstore.NotifierKey, error) {
	out, err := s.Client.GetParameter(ctx, &webhook.GetParameterInput{Name: s.Name, WithDecryption: true})
	if err != nil {
		return reportstore.NotifierKey{}, fmt.Errorf("read %s: %w", s.Name, err)
	}
	if out.Parameter == nil || out.Parameter.Type != webhook.ParameterTypeSecureString {
		return reportstore.NotifierKey{}, fmt.Errorf("parameter %s must be a SecureString", s.Name)
	}
	k, err := reportstore.ParseNotifierKey(out.Parameter.Value)
	if err != nil {
		return reportstore.NotifierKey{}, fmt.Errorf("parameter %s: %w", s.Name, err)
	}
	return k, nil
}
