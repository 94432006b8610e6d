package alert

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/config"
)

// FromEnv builds the alert handler from a function's environment:
// TABLE_NAME and ALERTS_TOPIC_ARN (required), DASHBOARD_URL (optional base
// URL of case links in emails, http or https) and LEVEL_THRESHOLDS (the
// aggregator's report-count thresholds, default 5,25,100; the reasons quote
// them). Metrics go to stdout. It makes clients but no network call. The
// Lambda function and `flagline dev` both build their handler here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	topic := env.Required("ALERTS_TOPIC_ARN")
	dashboard := env.Optional("DASHBOARD_URL", "")
	thresholds := env.Ints("LEVEL_THRESHOLDS", casestore.DefaultThresholds)
	if err := env.Err(); err != nil {
		return nil, err
	}
	if dashboard != "" {
		u, err := url.Parse(dashboard)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("DASHBOARD_URL=%q is not an http(s) URL", dashboard)
		}
	}
	return &Handler{
		SNS:          sns.NewFromConfig(cfg),
		DB:           dynamodb.NewFromConfig(cfg),
		Table:        table,
		TopicARN:     topic,
		DashboardURL: dashboard,
		Rules:        casestore.Rules{Thresholds: thresholds},
		Log:          log,
		Metrics:      os.Stdout,
	}, nil
}
