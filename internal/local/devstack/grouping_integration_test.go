//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// deskMessage is a message a desk's inbox received, and when.
type deskMessage struct {
	Kind, Severity string
	Cases          []string
	At             time.Time
}

// deskMessages drains a desk's inbox: each message's kind, the cases it
// is about (a digest's list, or the alert's own case) and when SNS
// delivered it (SentTimestamp).
func (p *pipeline) deskMessages(t *testing.T, cp string) []deskMessage {
	t.Helper()
	q := sqs.NewFromConfig(p.stack.AWS)
	var out []deskMessage
	for {
		r, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.stack.Inboxes[cp]), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			var env struct {
				Message           string
				MessageAttributes map[string]struct{ Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				t.Fatal(err)
			}
			var payload struct {
				CaseID string `json:"case_id"`
				Cases  []struct {
					CaseID string `json:"case_id"`
				} `json:"cases"`
			}
			if err := json.Unmarshal([]byte(env.Message), &payload); err != nil {
				t.Fatal(err)
			}
			var sent int64
			fmt.Sscan(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], &sent)
			got := deskMessage{Kind: env.MessageAttributes["kind"].Value, Severity: env.MessageAttributes["severity"].Value, At: time.UnixMilli(sent)}
			for _, c := range payload.Cases {
				got.Cases = append(got.Cases, c.CaseID)
			}
			if len(payload.Cases) == 0 {
				got.Cases = []string{payload.CaseID}
			}
			out = append(out, got)
			q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(p.stack.Inboxes[cp]), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// Issue 10's burst, through the whole local stack as `flagline dev` runs
// it (HTTP API, both streams, the digest queue's event source mapping):
// 300 low-severity reports about Italy within a minute, each a new case,
// and a threat to life among them. Italy's desk gets the threat to life
// at once and the 300 cases in digests, each case listed once; no two of
// its messages arrive less than a second apart.
func TestSoakBurstOfLowCasesReachesTheDeskAsDigests(t *testing.T) {
	if testing.Short() {
		t.Skip("a 300-report burst through the whole stack: make soak")
	}
	p := startPipelineWith(t, 0, nil, map[string]string{"GroupWait": "5s", "GroupInterval": "10s"})
	start := time.Now()
	p.send(t, 301, func(i int) string {
		if i == 150 {
			return `{"url":"https://t.me/lost_at_sea/7","category":"threat_to_life","explanation":"People adrift, no water.","notifier":{"name":"Ana","email":"ana@ngo.example"},"good_faith":true,"countries":["IT"]}`
		}
		return report(fmt.Sprintf("https://t.me/boats_it_%03d/1", i), "IT")(i)
	})
	sent := time.Since(start)

	var got []deskMessage
	listed := map[string]int{}
	deadline := time.Now().Add(3 * time.Minute)
	for len(listed) < 301 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		for _, m := range p.deskMessages(t, "it-desk") {
			got = append(got, m)
			for _, c := range m.Cases {
				listed[c]++
			}
		}
	}
	// Which message told the desk of the threat to life: the only case
	// of severity critical, alone (as itself) or in a digest whose worst
	// severity it makes critical, depending on when the desk's slot was
	// free.
	critical := -1
	for i, m := range got {
		if m.Severity == "critical" {
			if critical >= 0 {
				t.Errorf("messages %d and %d are both critical", critical, i)
			}
			critical = i
		}
		if i > 0 && m.At.Sub(got[i-1].At) < 900*time.Millisecond {
			t.Errorf("messages %d and %d reached it-desk %s apart", i-1, i, m.At.Sub(got[i-1].At))
		}
	}
	for c, n := range listed {
		if n != 1 {
			t.Errorf("case %s reached it-desk %d times", c, n)
		}
	}
	if len(listed) != 301 || critical < 0 {
		t.Fatalf("it-desk heard of %d cases (want 300 + 1 critical); critical message: %d", len(listed), critical)
	}
	// Grouped: a handful of messages, not 301.
	if len(got) > 10 {
		t.Errorf("it-desk received %d messages for 301 cases", len(got))
	}
	digests := 0
	for _, m := range got {
		if m.Kind == "digest" {
			digests++
		}
	}
	t.Logf("301 reports sent in %s; it-desk received %d messages (%d digests) listing %v cases; the threat to life in message %d (%s, %d cases), %s after the start",
		sent.Round(time.Millisecond), len(got), digests, func() []int {
			var n []int
			for _, m := range got {
				n = append(n, len(m.Cases))
			}
			return n
		}(), critical, got[critical].Kind, len(got[critical].Cases), got[critical].At.Sub(start).Round(time.Millisecond))
}
