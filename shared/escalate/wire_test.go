package escalate

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/casestore"
)

func TestFromEnv(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts"}
	lookup := func(extra map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if v, ok := extra[k]; ok {
				return v, true
			}
			v, ok := base[k]
			return v, ok
		}
	}
	h, err := FromEnv(aws.Config{}, lookup(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Reminders != 2 || h.Takedown != 72*time.Hour || h.Ack.For(casestore.Critical) != time.Hour {
		t.Errorf("defaults: reminders %d, takedown %v, critical %v", h.Reminders, h.Takedown, h.Ack.For(casestore.Critical))
	}
	h, err = FromEnv(aws.Config{}, lookup(map[string]string{
		EnvAckDeadlines: "critical=20s,high=40s,medium=1m,low=2m", EnvTakedownDeadline: "90s", EnvRemindersBeforeEscalation: "0",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Reminders != 0 || h.Takedown != 90*time.Second || h.Ack.For(casestore.Critical) != 20*time.Second {
		t.Errorf("set: reminders %d, takedown %v, critical %v", h.Reminders, h.Takedown, h.Ack.For(casestore.Critical))
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TABLE_NAME": "", "ALERTS_TOPIC_ARN": ""}, "TABLE_NAME, ALERTS_TOPIC_ARN"},
		{map[string]string{EnvRemindersBeforeEscalation: "-1"}, EnvRemindersBeforeEscalation},
		{map[string]string{EnvRemindersBeforeEscalation: "two"}, EnvRemindersBeforeEscalation},
		{map[string]string{EnvAckDeadlines: "critical=1h"}, EnvAckDeadlines},
		{map[string]string{EnvTakedownDeadline: "3d"}, EnvTakedownDeadline},
		{map[string]string{"DASHBOARD_URL": "ftp://x"}, "DASHBOARD_URL"},
	} {
		if _, err := FromEnv(aws.Config{}, lookup(tc.env), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}
