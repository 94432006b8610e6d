package alert_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
)

// ACK_DEADLINES sets the clock an alert's record starts and the one a
// reopening starts; a malformed value stops start-up.
func TestFromEnvAckDeadlines(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg := aws.Config{Region: "eu-west-1"}
	env := func(ack string) func(string) (string, bool) {
		vars := map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN}
		if ack != "" {
			vars["ACK_DEADLINES"] = ack
		}
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}

	h, err := alert.FromEnv(cfg, env("critical=20s,high=1m,medium=2m,low=3m"), log)
	if err != nil {
		t.Fatal(err)
	}
	if h.Ack.For(casestore.Critical) != 20*time.Second || h.Ack.For(casestore.Low) != 3*time.Minute {
		t.Errorf("Ack %v", h.Ack)
	}
	if s, ok := h.Reopener.(*caseaction.Store); !ok || s.Ack.For(casestore.Critical) != 20*time.Second {
		t.Errorf("reopener %#v does not have the deadlines", h.Reopener)
	}

	h, err = alert.FromEnv(cfg, env(""), log)
	if err != nil || h.Ack.For(casestore.Critical) != time.Hour || h.Ack.For(casestore.Low) != 168*time.Hour {
		t.Errorf("default: %v %v", err, h.Ack)
	}

	for _, bad := range []string{"critical=1h", "critical=1h,high=1d,medium=72h,low=168h"} {
		if _, err := alert.FromEnv(cfg, env(bad), log); err == nil || !strings.Contains(err.Error(), "ACK_DEADLINES") {
			t.Errorf("ACK_DEADLINES=%q: error %v", bad, err)
		}
	}
}
