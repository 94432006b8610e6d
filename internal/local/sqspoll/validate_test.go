package sqspoll_test

import (
	"context"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/sqspoll"
)

func noop(context.Context, []byte) ([]byte, error) { return []byte(`{}`), nil }

const (
	standardARN = "arn:aws:sqs:eu-west-1:123456789012:q"
	fifoARN     = "arn:aws:sqs:eu-west-1:123456789012:q.fifo"
)

// The settings CreateEventSourceMapping accepts for an SQS queue pass; those
// it refuses stop the mapping.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    sqspoll.Mapping
		ok   bool
	}{
		{"defaults", sqspoll.Mapping{}, true},
		{"batch of 10 without a window", sqspoll.Mapping{BatchSize: 10}, true},
		{"batch of 11 without a window", sqspoll.Mapping{BatchSize: 11}, false},
		{"batch of 11 with a 1s window", sqspoll.Mapping{BatchSize: 11, BatchingWindow: time.Second}, true},
		{"batch of 10000", sqspoll.Mapping{BatchSize: 10000, BatchingWindow: 300 * time.Second}, true},
		{"batch of 10001", sqspoll.Mapping{BatchSize: 10001, BatchingWindow: 300 * time.Second}, false},
		{"negative batch", sqspoll.Mapping{BatchSize: -1}, false},
		{"window of 301s", sqspoll.Mapping{BatchingWindow: 301 * time.Second}, false},
		{"window not in whole seconds", sqspoll.Mapping{BatchingWindow: 1500 * time.Millisecond}, false},
		{"negative window", sqspoll.Mapping{BatchingWindow: -time.Second}, false},
		{"fifo batch of 10", sqspoll.Mapping{QueueARN: fifoARN, BatchSize: 10}, true},
		{"fifo batch of 11", sqspoll.Mapping{QueueARN: fifoARN, BatchSize: 11, BatchingWindow: time.Second}, false},
		{"fifo with a window", sqspoll.Mapping{QueueARN: fifoARN, BatchingWindow: time.Second}, false},
		{"function timeout of 900s", sqspoll.Mapping{FunctionTimeout: 900 * time.Second}, true},
		{"function timeout of 901s", sqspoll.Mapping{FunctionTimeout: 901 * time.Second}, false},
		{"no handler", sqspoll.Mapping{Handler: nil}, false},
		{"no queue", sqspoll.Mapping{QueueURL: "-"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			m.Name = "f"
			if m.QueueARN == "" {
				m.QueueARN = standardARN
			}
			switch m.QueueURL {
			case "":
				m.QueueURL = "http://127.0.0.1/123456789012/q"
			case "-":
				m.QueueURL = ""
			}
			if tc.name != "no handler" {
				m.Handler = noop
			}
			err := m.Validate()
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("accepted; CreateEventSourceMapping refuses it")
			}
		})
	}
}
