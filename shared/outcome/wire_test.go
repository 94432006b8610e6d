package outcome

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/webhook"
)

// Deployed (no local AWS endpoint), an inline http endpoint stops
// start-up; pointed at a local AWS it is allowed to loopback.
func TestFromEnvPolicyFollowsTheAWSEndpoint(t *testing.T) {
	vars := map[string]string{
		"TABLE_NAME": "t", EnvQueue: "https://sqs.eu-west-1.amazonaws.com/1/q", EnvQueueARN: "arn:aws:sqs:eu-west-1:1:q", EnvFailures: "https://sqs.eu-west-1.amazonaws.com/1/f",
		EnvEndpoints: `{"ngo":"http://127.0.0.1:9000/outcomes"}`, "FLAGLINE_WEBHOOK_SECRETS": `{"ngo":["` + webhook.NewSecret() + `"]}`,
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	if _, err := FromEnv(aws.Config{Region: "eu-west-1"}, lookup, nil); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("deployed: FromEnv = %v, want the http endpoint refused", err)
	}
	h, err := FromEnv(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:5000")}, lookup, nil)
	if err != nil || h == nil || !h.Policy.Local || h.QueueARN != "arn:aws:sqs:eu-west-1:1:q" {
		t.Fatalf("local: %v %+v", err, h)
	}
	// The queue's ARN is what routes its batches: start-up without it fails.
	delete(vars, EnvQueueARN)
	if _, err := FromEnv(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:5000")}, lookup, nil); err == nil || !strings.Contains(err.Error(), EnvQueueARN) {
		t.Fatalf("no queue ARN: FromEnv = %v, want it named", err)
	}
	delete(vars, EnvQueue)
	if h, err := FromEnv(aws.Config{}, lookup, nil); h != nil || err != nil {
		t.Fatalf("no queue: %v %v, want outcome webhooks off", h, err)
	}
}
