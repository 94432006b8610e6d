package devstack

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/internal/local/sqspoll"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/escalate"
	"github.com/flagline/flagline/shared/intake"
)

// Functions sets opts' factories to Flagline's functions, each built by the
// same FromEnv its Lambda main calls, logging to log with its name.
func (opts *Options) Functions(log *slog.Logger) {
	named := func(id string) *slog.Logger { return log.With("function", id) }
	opts.HTTP = map[string]HTTPFactory{
		"IngestFunction": func(cfg aws.Config, env map[string]string) (apigw.Handler, error) {
			h, err := intake.FromEnv(cfg, Lookup(env), named("IngestFunction"))
			if err != nil {
				return nil, err
			}
			return h.Handle, nil
		},
		"CasesFunction": func(cfg aws.Config, env map[string]string) (apigw.Handler, error) {
			h, err := casesapi.FromEnv(cfg, Lookup(env), named("CasesFunction"))
			if err != nil {
				return nil, err
			}
			return h.Handle, nil
		},
	}
	opts.Stream = map[string]StreamFactory{
		"AggregateFunction": func(cfg aws.Config, env map[string]string) (streampoll.Handler, error) {
			h, err := aggregate.FromEnv(cfg, Lookup(env), named("AggregateFunction"))
			if err != nil {
				return nil, err
			}
			return lambda.NewHandler(h.Handle).Invoke, nil
		},
		"AlertFunction": func(cfg aws.Config, env map[string]string) (streampoll.Handler, error) {
			h, err := alert.FromEnv(cfg, Lookup(env), named("AlertFunction"))
			if err != nil {
				return nil, err
			}
			h.Metrics = nil // metric lines are for CloudWatch, not a terminal
			// Invoke, as the deployed main: it tells the two event sources
			// apart.
			return lambda.NewHandler(h.Invoke).Invoke, nil
		},
	}
	opts.Queue = map[string]QueueFactory{
		// The digest queue: a desk's held alerts, flushed when due.
		"AlertFunction": func(cfg aws.Config, env map[string]string) (sqspoll.Handler, error) {
			h, err := alert.FromEnv(cfg, Lookup(env), named("AlertFunction"))
			if err != nil {
				return nil, err
			}
			h.Metrics = nil // metric lines are for CloudWatch, not a terminal
			return lambda.NewHandler(h.Invoke).Invoke, nil
		},
	}
	opts.Schedule = map[string]ScheduleFactory{
		"EscalateFunction": func(cfg aws.Config, env map[string]string) (func(ctx context.Context) error, error) {
			h, err := escalate.FromEnv(cfg, Lookup(env), named("EscalateFunction"))
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				_, err := h.Run(ctx)
				return err
			}, nil
		},
	}
}
