package casesapi_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
)

// ACK_DEADLINES and TAKEDOWN_DEADLINE reach the store that writes the
// clocks; a malformed value stops start-up.
func TestFromEnvDeadlines(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg := aws.Config{Region: "eu-west-1"}
	env := func(extra map[string]string) func(string) (string, bool) {
		vars := map[string]string{"TABLE_NAME": "t", "FLAGLINE_LINK_KEY": "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHMh"}
		for k, v := range extra {
			vars[k] = v
		}
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	store := func(t *testing.T, extra map[string]string) *caseaction.Store {
		t.Helper()
		h, err := casesapi.FromEnv(cfg, env(extra), log)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := h.Cases.(*caseaction.Store)
		if !ok {
			t.Fatalf("Cases is %T", h.Cases)
		}
		return s
	}

	s := store(t, map[string]string{"ACK_DEADLINES": "critical=20s,high=1m,medium=2m,low=3m", "TAKEDOWN_DEADLINE": "90s"})
	if s.Ack.For(casestore.Critical) != 20*time.Second || s.TakedownDeadline != 90*time.Second {
		t.Errorf("store deadlines %v, %v", s.Ack, s.TakedownDeadline)
	}
	s = store(t, nil)
	if s.Ack.For(casestore.Medium) != 72*time.Hour || s.TakedownDeadline != 72*time.Hour {
		t.Errorf("default deadlines %v, %v", s.Ack, s.TakedownDeadline)
	}

	for name, extra := range map[string]map[string]string{
		"ACK_DEADLINES":     {"ACK_DEADLINES": "critical=1h,high=24h"},
		"TAKEDOWN_DEADLINE": {"TAKEDOWN_DEADLINE": "3d"},
	} {
		if _, err := casesapi.FromEnv(cfg, env(extra), log); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: error %v", extra, err)
		}
	}
}
