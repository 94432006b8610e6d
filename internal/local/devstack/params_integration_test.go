//go:build integration

package devstack_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/local/streampoll"
)

// flagline dev --param LevelThresholds=2,4 --param DashboardUrl=…: the
// project's functions are built with the overridden values wherever the
// template refers to the parameters (LEVEL_THRESHOLDS through !Join,
// DASHBOARD_URL through !If on a condition).
func TestDevParamReachesFunctions(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{
		Template: filepath.Join("..", "..", "..", "template.yaml"),
		Addr:     "127.0.0.1:0",
		Log:      log,
		Params:   map[string]string{"LevelThresholds": "2, 4", "DashboardUrl": "https://dash.example"},
	}
	opts.Functions(log)
	var mu sync.Mutex
	envs := map[string]map[string]string{}
	for id, f := range opts.Stream {
		opts.Stream[id] = func(cfg aws.Config, env map[string]string) (streampoll.Handler, error) {
			mu.Lock()
			envs[id] = env
			mu.Unlock()
			return f(cfg, env)
		}
	}
	for id, f := range opts.HTTP {
		opts.HTTP[id] = func(cfg aws.Config, env map[string]string) (apigw.Handler, error) {
			mu.Lock()
			envs[id] = env
			mu.Unlock()
			return f(cfg, env)
		}
	}
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{"AggregateFunction", "AlertFunction"} {
		if got := envs[id]["LEVEL_THRESHOLDS"]; got != "2,4" {
			t.Errorf("%s: LEVEL_THRESHOLDS=%q, want 2,4", id, got)
		}
	}
	for _, id := range []string{"AlertFunction", "CasesFunction"} {
		if got := envs[id]["DASHBOARD_URL"]; got != "https://dash.example" {
			t.Errorf("%s: DASHBOARD_URL=%q, want the DashboardUrl parameter", id, got)
		}
	}
}

// flagline dev --schedule-every: Start runs the template's scheduled
// functions at that interval. No timing is asserted: the test waits,
// within a generous deadline, for three runs.
func TestDevScheduleEvery(t *testing.T) {
	runs := make(chan struct{}, 100)
	count := func(_ aws.Config, _ map[string]string) (func(context.Context) error, error) {
		return func(context.Context) error {
			select {
			case runs <- struct{}{}:
			default:
			}
			return nil
		}, nil
	}
	s, err := devstack.Start(context.Background(), devstack.Options{
		Template:      filepath.Join("testdata", "schedule.yaml"),
		Addr:          "127.0.0.1:0",
		ScheduleEvery: 50 * time.Millisecond,
		Params:        map[string]string{"EscalateSchedule": "rate(10 minutes)"},
		Schedule:      map[string]devstack.ScheduleFactory{"EscalateFunction": count, "DigestFunction": count, "RetiredFunction": count},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.After(60 * time.Second)
	for n := 0; n < 3; n++ {
		select {
		case <-runs:
		case <-deadline:
			t.Fatalf("%d scheduled runs after 60s, want 3", n)
		}
	}
	for _, sf := range s.Schedules {
		if sf.Function == "EscalateFunction" && (sf.Expression != "rate(10 minutes)" || sf.Every != 50*time.Millisecond) {
			t.Errorf("EscalateFunction %+v, want rate(10 minutes) from --param, run every 50ms", sf)
		}
	}
}
