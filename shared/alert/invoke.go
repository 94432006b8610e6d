package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/outcome"
)

// Invoke answers the alert function's three event sources in one binary:
// a DynamoDB stream batch (Handle), a batch of the digest queue
// (HandleDigests) or of the outcome queue (Outcome.Handle), told apart by
// the records' eventSource ("aws:dynamodb" or "aws:sqs", as Lambda sets
// it: https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html,
// https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html) and, for
// SQS, by the queue's ARN in eventSourceARN, never by a message's body: a
// body of any shape (a parked message sent back, a malformed one) goes to
// its own queue's handler. A batch of neither source is an error, never
// guessed.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("alert: event cannot be read: %w", err)
	}
	source := ""
	if len(probe.Records) > 0 {
		source = probe.Records[0].EventSource
	}
	switch source {
	case "aws:sqs":
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("alert: SQS event: %w", err)
		}
		// A mapping reads one queue, so every record of a batch names the
		// same queue.
		arn := ev.Records[0].EventSourceARN
		if h.Outcome != nil && h.Outcome.QueueARN != "" && arn == h.Outcome.QueueARN {
			return h.Outcome.Handle(ctx, ev)
		}
		if h.Outcome == nil && outcome.IsMessage(ev.Records[0].Body) {
			return nil, errors.New("alert: outcome message received, but outcome webhooks are not configured (OUTCOME_QUEUE_URL)")
		}
		return h.HandleDigests(ctx, ev)
	case "aws:dynamodb", "":
		// An empty batch is answered as a stream batch: nothing to do.
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("alert: stream event: %w", err)
		}
		return h.Handle(ctx, ev)
	default:
		return nil, fmt.Errorf("alert: event source %q is neither the table's stream nor the digest queue", source)
	}
}
