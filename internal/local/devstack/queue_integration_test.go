//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/devstack"
)

// flagline dev creates the template's queues with their attributes (the
// digest queue's visibility timeout and its redrive to the dead-letter
// queue) and feeds the alert function from the digest queue through an
// SQS event source mapping with the template's settings.
func TestDevCreatesQueuesAndQueueMappings(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{Template: filepath.Join("..", "..", "..", "template.yaml"), Addr: "127.0.0.1:0", Log: log}
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	out, err := sqs.NewFromConfig(s.AWS).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.Locals.Refs["DigestQueue"]), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Attributes["VisibilityTimeout"]; got != "180" {
		t.Errorf("DigestQueue VisibilityTimeout %s, want the template's 180", got)
	}
	var policy struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &policy); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", out.Attributes["RedrivePolicy"], err)
	}
	if policy.DeadLetterTargetArn != s.Locals.Attrs["DigestDeadLetters.Arn"] || policy.MaxReceiveCount != float64(5) && policy.MaxReceiveCount != "5" {
		t.Errorf("RedrivePolicy %+v, want DigestDeadLetters (%s) after 5 receives", policy, s.Locals.Attrs["DigestDeadLetters.Arn"])
	}

	// The alert function's events in name order: Digests, Outcomes.
	if len(s.QueueMappings) != 2 {
		t.Fatalf("%d queue mappings, want the alert function's digests and outcomes", len(s.QueueMappings))
	}
	for i, queue := range []string{"DigestQueue", "OutcomeQueue"} {
		m := s.QueueMappings[i]
		if m.Name != "AlertFunction" || m.QueueARN != s.Locals.Attrs[queue+".Arn"] || m.BatchSize != 10 || !m.ReportBatchItemFailures || m.FunctionTimeout != 30*time.Second || m.Disabled {
			t.Errorf("mapping %+v, want AlertFunction on %s, batch 10, ReportBatchItemFailures, timeout 30s", m, queue)
		}
	}
}
