package intake

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// FromEnv builds the intake handler from a function's environment:
// TABLE_NAME (required), REPORT_RETENTION_DAYS (default 180), and the webhook
// secrets (FLAGLINE_WEBHOOK_SECRETS inline, or WEBHOOK_SECRETS_PATH in SSM).
// It makes clients but no network call. The Lambda function and
// `flagline dev` both build their handler here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	retentionDays := env.Int("REPORT_RETENTION_DAYS", 180)
	if err := env.Err(); err != nil {
		return nil, err
	}
	secrets, err := webhook.StoreFromEnv(lookup, func() webhook.ParameterReader { return ssm.NewFromConfig(cfg) })
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	return &Handler{
		Secrets: secrets,
		Reports: &reportstore.Store{
			DB:        dynamodb.NewFromConfig(cfg),
			Table:     table,
			Retention: time.Duration(retentionDays) * 24 * time.Hour,
		},
		Log: log,
	}, nil
}
