package casesapi

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/silences"
	"github.com/flagline/flagline/shared/tokens"
	"github.com/flagline/flagline/shared/webhook"
)

// IdempotencyTTL is how long the first answer to an Idempotency-Key is kept.
const IdempotencyTTL = 24 * time.Hour

// FromEnv builds the cases handler from a function's environment:
// TABLE_NAME (required), DASHBOARD_URL (optional, an absolute http(s) URL),
// the link key (FLAGLINE_LINK_KEY inline, or LINK_KEY_PARAMETER in SSM,
// read at first use), ACK_DEADLINES (per severity, default
// deadline.DefaultAck: the clock a reopened case starts) and
// TAKEDOWN_DEADLINE (default 72h: the clock takedown_requested starts). It makes clients but no network call; a variable
// missing or malformed stops start-up. The Lambda function and
// `flagline dev` both build their handler here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	dashboard := env.Optional("DASHBOARD_URL", "")
	ackDeadlines := env.Optional("ACK_DEADLINES", deadline.DefaultAck)
	takedown := env.Duration("TAKEDOWN_DEADLINE", caseaction.DefaultTakedownDeadline)
	if err := env.Err(); err != nil {
		return nil, err
	}
	ack, err := deadline.ParseAck(ackDeadlines)
	if err != nil {
		return nil, fmt.Errorf("ACK_DEADLINES: %w", err)
	}
	if dashboard != "" {
		if u, err := url.Parse(dashboard); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("DASHBOARD_URL %q is not an absolute http(s) URL", dashboard)
		}
		dashboard = strings.TrimRight(dashboard, "/")
	}
	// Parameter Store is read with webhook.SSMClient, as the intake does.
	var (
		client    *webhook.SSMClient
		clientErr error
	)
	keys, err := linksign.KeyFromEnv(lookup, func() linksign.ParameterGetter {
		client, clientErr = webhook.NewSSMClient(cfg)
		return client
	})
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	if clientErr != nil {
		return nil, clientErr
	}
	db := dynamodb.NewFromConfig(cfg)
	return &Handler{
		Cases:        &caseaction.Store{DB: db, Table: table, Now: time.Now, IdempotencyTTL: IdempotencyTTL, Ack: ack, TakedownDeadline: takedown},
		Tokens:       &tokens.Store{DB: db, Table: table, Now: time.Now},
		Silences:     &silences.Store{DB: db, Table: table, Now: time.Now},
		DB:           db,
		StatsDB:      db,
		Table:        table,
		Keys:         keys,
		DashboardURL: dashboard,
		Log:          log,
	}, nil
}
