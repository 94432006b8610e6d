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
	Kind  string
	Cases []string
	At    time.Time
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
			got := deskMessage{Kind: env.MessageAttributes["kind"].Value, At: time.UnixMilli(sent)}
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
	critical, digests := 0, 0
	for i, m := range got {
		switch {
		case m.Kind == "digest":
			digests++
		case len(m.Cases) == 1 && i == 0:
			critical++
		default:
			t.Errorf("message %d to it-desk is a %s about %v, want the critical alert first and then digests", i, m.Kind, m.Cases)
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
	if len(listed) != 301 || critical != 1 {
		t.Fatalf("it-desk heard of %d cases (want 300 + 1 critical), %d critical alerts", len(listed), critical)
	}
	t.Logf("301 reports sent in %s; it-desk received %d messages: 1 critical (%s after the start), %d digests of %v cases",
		sent.Round(time.Millisecond), len(got), got[0].At.Sub(start).Round(time.Millisecond), digests, func() []int {
			var n []int
			for _, m := range got[1:] {
				n = append(n, len(m.Cases))
			}
			return n
		}())
}
