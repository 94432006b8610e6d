package escalate

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/deadline"
)

// Environment variables FromEnv reads besides TABLE_NAME, ALERTS_TOPIC_ARN,
// DASHBOARD_URL and the link key's.
const (
	EnvAckDeadlines              = "ACK_DEADLINES"
	EnvTakedownDeadline          = "TAKEDOWN_DEADLINE"
	EnvRemindersBeforeEscalation = "REMINDERS_BEFORE_ESCALATION"
)

// DefaultTakedown and DefaultReminders are the template parameters'
// defaults.
const (
	DefaultTakedown  = 72 * time.Hour
	DefaultReminders = 2
)

// FromEnv builds the handler from a function's environment: TABLE_NAME and
// ALERTS_TOPIC_ARN (required), ACK_DEADLINES (default deadline.DefaultAck),
// TAKEDOWN_DEADLINE (default 72h), REMINDERS_BEFORE_ESCALATION (a whole
// number, 0 or more, default 2), DASHBOARD_URL and the link key
// (FLAGLINE_LINK_KEY or LINK_KEY_PARAMETER) as for the alert function. A
// malformed value stops start-up naming it. It makes clients but no
// network call. The Lambda function and `flagline dev` both build their
// handler here.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	topic := env.Required("ALERTS_TOPIC_ARN")
	dashboard := env.Optional("DASHBOARD_URL", "")
	ackText := env.Optional(EnvAckDeadlines, deadline.DefaultAck)
	takedownText := env.Optional(EnvTakedownDeadline, "")
	remindersText := env.Optional(EnvRemindersBeforeEscalation, strconv.Itoa(DefaultReminders))
	if err := env.Err(); err != nil {
		return nil, err
	}
	ack, err := deadline.ParseAck(ackText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvAckDeadlines, err)
	}
	takedown := DefaultTakedown
	if takedownText != "" {
		if takedown, err = deadline.ParseDuration(takedownText); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTakedownDeadline, err)
		}
	}
	reminders, err := strconv.Atoi(remindersText)
	if err != nil || reminders < 0 {
		return nil, fmt.Errorf("%s=%q is not a whole number 0 or more", EnvRemindersBeforeEscalation, remindersText)
	}
	if dashboard != "" {
		u, err := url.Parse(dashboard)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("DASHBOARD_URL=%q is not an http(s) URL", dashboard)
		}
	}
	links, err := alert.LinkKeyFromEnv(cfg, lookup, log)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(cfg)
	return &Handler{
		DB:           db,
		Gate:         db,
		SNS:          sns.NewFromConfig(cfg),
		Table:        table,
		TopicARN:     topic,
		Ack:          ack,
		Takedown:     takedown,
		Reminders:    reminders,
		DashboardURL: dashboard,
		Links:        links,
		Now:          time.Now,
		Log:          log,
	}, nil
}
