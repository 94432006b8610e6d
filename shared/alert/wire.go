package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/outcome"
	"github.com/flagline/flagline/shared/webhook"
)

// FromEnv builds the alert handler from a function's environment:
// TABLE_NAME and ALERTS_TOPIC_ARN (required), DASHBOARD_URL (optional base
// URL of the signed links in emails, http or https), the link key
// (FLAGLINE_LINK_KEY inline, or LINK_KEY_PARAMETER in SSM; neither set
// sends alerts without links), LEVEL_THRESHOLDS (the aggregator's
// report-count thresholds, default 5,25,100; the reasons quote them) and
// ACK_DEADLINES (how long an open case's desks have to acknowledge it, per
// severity, default deadline.DefaultAck: recording an alert starts that
// clock), and grouping: DIGEST_QUEUE_URL (the digest queue; empty sends
// every copy at once), GROUP_WAIT and GROUP_INTERVAL (defaults 30s and
// 5m, see CheckGroupSettings).
// Metrics go to stdout. It makes clients but no network call: the SSM key
// is read at first use, and an alert whose key cannot be read goes without
// links. The Lambda function and `flagline dev` both build their handler
// here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	topic := env.Required("ALERTS_TOPIC_ARN")
	dashboard := env.Optional("DASHBOARD_URL", "")
	thresholds := env.Ints("LEVEL_THRESHOLDS", casestore.DefaultThresholds)
	ackDeadlines := env.Optional("ACK_DEADLINES", deadline.DefaultAck)
	digestQueue := env.Optional("DIGEST_QUEUE_URL", "")
	groupWaitS := env.Optional("GROUP_WAIT", DefaultGroupWait.String())
	groupIntervalS := env.Optional("GROUP_INTERVAL", DefaultGroupInterval.String())
	if err := env.Err(); err != nil {
		return nil, err
	}
	groupWait, err1 := time.ParseDuration(groupWaitS)
	groupInterval, err2 := time.ParseDuration(groupIntervalS)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("GROUP_WAIT=%q, GROUP_INTERVAL=%q: %w", groupWaitS, groupIntervalS, err)
	}
	if err := CheckGroupSettings(groupWait, groupInterval); err != nil {
		return nil, fmt.Errorf("GROUP_WAIT, GROUP_INTERVAL: %w", err)
	}
	ack, err := deadline.ParseAck(ackDeadlines)
	if err != nil {
		return nil, fmt.Errorf("ACK_DEADLINES: %w", err)
	}
	if dashboard != "" {
		u, err := url.Parse(dashboard)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("DASHBOARD_URL=%q is not an http(s) URL", dashboard)
		}
	}
	links, err := linkKey(cfg, lookup, log)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(cfg)
	now := time.Now
	var grouping *Grouping
	if digestQueue != "" {
		grouping = &Grouping{Queue: digestQueue, SQS: sqs.NewFromConfig(cfg), DB: db, Wait: groupWait, Interval: groupInterval}
	} else if log != nil {
		log.Warn("no DIGEST_QUEUE_URL: every alert is sent at once, without grouping or spacing")
	}
	outcomes, err := outcome.FromEnv(cfg, lookup, log)
	if err != nil {
		return nil, fmt.Errorf("outcome webhooks: %w", err)
	}
	return &Handler{
		Outcome:      outcomes,
		Grouping:     grouping,
		SNS:          sns.NewFromConfig(cfg),
		DB:           db,
		Table:        table,
		TopicARN:     topic,
		DashboardURL: dashboard,
		Links:        links,
		Reopener:     &caseaction.Store{DB: db, Table: table, Now: now, Ack: ack},
		Rules:        casestore.Rules{Thresholds: thresholds},
		Ack:          ack,
		Log:          log,
		Metrics:      os.Stdout,
		Now:          now,
	}, nil
}

// linkKey is the link key's source, or nil (no links) when neither
// variable is set. A malformed inline key or parameter name stops start-up
// like any malformed setting; a key that cannot be read later only costs
// the links. Parameter Store is read with webhook.SSMClient, made only when
// a parameter is named (as shared/intake does).
func linkKey(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (linksign.Source, error) {
	inline, _ := lookup(linksign.EnvKey)
	param, _ := lookup(linksign.EnvKeyParameter)
	if inline == "" && param == "" {
		if log != nil {
			log.Warn("no link key: alert emails carry no signed links", "set", linksign.EnvKeyParameter+" or "+linksign.EnvKey)
		}
		return nil, nil
	}
	var clientErr error
	src, err := linksign.KeyFromEnv(lookup, func() linksign.ParameterGetter {
		client, err := webhook.NewSSMClient(cfg)
		if err != nil {
			clientErr = err
			return nil
		}
		return client
	})
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	if clientErr != nil {
		return nil, fmt.Errorf("link key: %w", clientErr)
	}
	return src, nil
}
