package alert_test

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/linksign"
)

func TestFromEnv(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	env := func(vars map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	cfg := aws.Config{Region: "eu-west-1"}

	h, err := alert.FromEnv(cfg, env(map[string]string{
		"TABLE_NAME": "flagline", "ALERTS_TOPIC_ARN": topicARN,
		"DASHBOARD_URL": "https://dashboard.example.org", "LEVEL_THRESHOLDS": "3,10,50",
	}), log)
	if err != nil {
		t.Fatal(err)
	}
	if h.Table != "flagline" || h.TopicARN != topicARN || h.DashboardURL != "https://dashboard.example.org" ||
		!slices.Equal(h.Rules.Thresholds, []int{3, 10, 50}) || h.SNS == nil || h.DB == nil || h.Metrics == nil || h.Log != log {
		t.Errorf("handler %+v", h)
	}

	h, err = alert.FromEnv(cfg, env(map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN}), log)
	if err != nil || h.DashboardURL != "" || !slices.Equal(h.Rules.Thresholds, []int{5, 25, 100}) || h.Links != nil || h.Reopener == nil {
		t.Errorf("defaults: %v %+v", err, h)
	}

	// The link key: inline (local), or an SSM parameter read at first use.
	for _, vars := range []map[string]string{
		{linksign.EnvKey: linksign.NewKey()},
		{linksign.EnvKeyParameter: "/flagline/prod/link-key", linksign.EnvKey: ""},
	} {
		vars["TABLE_NAME"], vars["ALERTS_TOPIC_ARN"] = "t", topicARN
		if h, err := alert.FromEnv(cfg, env(vars), log); err != nil || h.Links == nil {
			t.Errorf("%v: links %v, %v", vars, h, err)
		}
	}

	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"TABLE_NAME", "ALERTS_TOPIC_ARN"}},
		{"no topic", map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": ""}, []string{"ALERTS_TOPIC_ARN"}},
		{"bad dashboard", map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN, "DASHBOARD_URL": "dashboard.example.org"}, []string{"DASHBOARD_URL"}},
		{"bad link key", map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN, "FLAGLINE_LINK_KEY": "c2hvcnQ="}, []string{"FLAGLINE_LINK_KEY"}},
		{"relative key parameter", map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN, "LINK_KEY_PARAMETER": "link-key"}, []string{"LINK_KEY_PARAMETER"}},
		{"bad thresholds", map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN, "LEVEL_THRESHOLDS": "25,5"}, []string{"LEVEL_THRESHOLDS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alert.FromEnv(cfg, env(tc.vars), log)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// Grouping from the environment: on with a digest queue, the template's
// GROUP_WAIT kept as set (0s included), bad settings refused at start-up.
func TestFromEnvGrouping(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg := aws.Config{Region: "eu-west-1"}
	from := func(extra map[string]string) (*alert.Handler, error) {
		vars := map[string]string{"TABLE_NAME": "t", "ALERTS_TOPIC_ARN": topicARN}
		for k, v := range extra {
			vars[k] = v
		}
		return alert.FromEnv(cfg, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, log)
	}
	queue := "https://sqs.eu-west-1.amazonaws.com/123456789012/flagline-DigestQueue"
	h, err := from(map[string]string{"DIGEST_QUEUE_URL": queue, "GROUP_WAIT": "0s", "GROUP_INTERVAL": "20s"})
	if err != nil || !h.Grouping.Enabled() || h.Grouping.Queue != queue || h.Grouping.Wait != 0 || h.Grouping.Interval != 20*time.Second {
		t.Fatalf("grouping %+v, %v", h.Grouping, err)
	}
	h, err = from(map[string]string{"DIGEST_QUEUE_URL": queue})
	if err != nil || h.Grouping.Wait != alert.DefaultGroupWait || h.Grouping.Interval != alert.DefaultGroupInterval {
		t.Fatalf("defaults %+v, %v", h.Grouping, err)
	}
	if h, err := from(nil); err != nil || h.Grouping.Enabled() {
		t.Fatalf("no queue: grouping %+v, %v", h.Grouping, err)
	}
	for _, bad := range []map[string]string{{"GROUP_WAIT": "soon"}, {"GROUP_WAIT": "2h"}, {"GROUP_INTERVAL": "0s"}, {"GROUP_INTERVAL": "-5m"}} {
		bad["DIGEST_QUEUE_URL"] = queue
		if _, err := from(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
