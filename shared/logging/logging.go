// Package logging builds the JSON slog logger every Flagline function uses.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger writing to w at the level named by
// AWS_LAMBDA_LOG_LEVEL (DEBUG, INFO, WARN, ERROR; INFO when unset). Each
// record logged with a context carries the Lambda request id.
func New(w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToUpper(os.Getenv("AWS_LAMBDA_LOG_LEVEL")) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "WARN":
		level = slog.LevelWarn
	case "ERROR", "FATAL":
		level = slog.LevelError
	}
	return slog.New(requestID{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// Stdout is New(os.Stdout), the usual choice in a Lambda main.
func Stdout() *slog.Logger { return New(os.Stdout) }

// requestID adds the invocation's request id from the context.
type requestID struct{ slog.Handler }

func (h requestID) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("aws_request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestID) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestID{h.Handler.WithAttrs(attrs)}
}

func (h requestID) WithGroup(name string) slog.Handler {
	return requestID{h.Handler.WithGroup(name)}
}
