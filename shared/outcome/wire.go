package outcome

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/webhook"
)

// Environment of the alert function for outcome webhooks.
const (
	// EnvQueue is the outcome queue's URL; empty turns outcome webhooks off.
	EnvQueue = "OUTCOME_QUEUE_URL"
	// EnvQueueARN is the outcome queue's ARN (required with EnvQueue):
	// the alert function routes a batch from it to Handle by its records'
	// eventSourceARN.
	EnvQueueARN = "OUTCOME_QUEUE_ARN"
	// EnvFailures is the on-failure queue's URL (required with EnvQueue).
	EnvFailures = "OUTCOME_FAILURES_URL"
	// EnvEndpoints holds the endpoints inline (local runs):
	// {"<source>":"<url>"}. It wins when set.
	EnvEndpoints = "FLAGLINE_OUTCOME_ENDPOINTS"
	// EnvEndpointsPath names the SSM path holding one String parameter per
	// source, <path>/<source>, whose value is its endpoint (deployed).
	EnvEndpointsPath = "OUTCOME_ENDPOINTS_PATH"
	// EnvRetryBase is the first retry's delay (Go duration; default
	// DefaultRetryBase).
	EnvRetryBase = "OUTCOME_RETRY_BASE"
	// envLocalAWS is set (non-empty) when the functions run against a
	// local AWS (sam local invoke with env.json): only then, or with the
	// SDK's BaseEndpoint set (flagline dev), may endpoints be http on
	// loopback.
	envLocalAWS = "AWS_ENDPOINT_URL"
)

// FromEnv builds the outcome handler from the alert function's environment,
// or nil when EnvQueue is empty (outcome webhooks off). Secrets come from
// webhook.StoreFromEnv (the sources' own signing secrets). It makes clients
// but no network call.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	queue := env.Optional(EnvQueue, "")
	if queue == "" {
		return nil, nil
	}
	table := env.Required("TABLE_NAME")
	queueARN := env.Required(EnvQueueARN)
	failures := env.Required(EnvFailures)
	base := env.Duration(EnvRetryBase, DefaultRetryBase)
	inline := env.Optional(EnvEndpoints, "")
	path := env.Optional(EnvEndpointsPath, "")
	if err := env.Err(); err != nil {
		return nil, err
	}
	if base <= 0 {
		return nil, fmt.Errorf("%s must be positive", EnvRetryBase)
	}
	// Local: the SDK is pointed at a local AWS (AWS_ENDPOINT_URL, which
	// awsenv.Load turns into BaseEndpoint; flagline dev sets BaseEndpoint
	// itself). Deployed functions have neither.
	local, _ := lookup(envLocalAWS)
	policy := Policy{Local: local != "" || aws.ToString(cfg.BaseEndpoint) != ""}

	var ssmClient *webhook.SSMClient
	newSSM := func() (*webhook.SSMClient, error) {
		if ssmClient != nil {
			return ssmClient, nil
		}
		c, err := webhook.NewSSMClient(cfg)
		ssmClient = c
		return c, err
	}
	var endpoints Endpoints
	switch {
	case inline != "":
		e, err := ParseEndpoints(inline, policy)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvEndpoints, err)
		}
		endpoints = e
	case path != "":
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%s must be an absolute parameter path such as /flagline/prod/outcome-endpoints", EnvEndpointsPath)
		}
		c, err := newSSM()
		if err != nil {
			return nil, err
		}
		endpoints = NewSSMEndpoints(c, path, webhook.RefreshPeriod, log)
	default:
		return nil, fmt.Errorf("%s is set: set %s (SSM path, deployed) or %s (inline JSON, local)", EnvQueue, EnvEndpointsPath, EnvEndpoints)
	}
	var clientErr error
	secrets, err := webhook.StoreFromEnv(lookup, func() webhook.ParameterReader {
		c, err := newSSM()
		clientErr = err
		return c
	}, log)
	if err == nil {
		err = clientErr
	}
	if err != nil {
		return nil, fmt.Errorf("outcome webhooks: %w", err)
	}
	return &Handler{
		DB: dynamodb.NewFromConfig(cfg), Table: table,
		SQS: sqs.NewFromConfig(cfg), QueueURL: queue, QueueARN: queueARN, FailuresURL: failures,
		Endpoints: endpoints, Secrets: secrets, Policy: policy,
		RetryBase: base, Log: log,
	}, nil
}
