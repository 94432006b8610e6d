package devstack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/samtemplate"
)

// runCounter is a ScheduleFactory per function that counts the runs and
// keeps the environment each function was built with.
type runCounter struct {
	mu    sync.Mutex
	runs  map[string]int
	envs  map[string]map[string]string
	ticks chan struct{}
}

func newRunCounter() *runCounter {
	return &runCounter{runs: map[string]int{}, envs: map[string]map[string]string{}, ticks: make(chan struct{}, 1)}
}

func (c *runCounter) factories(ids ...string) map[string]ScheduleFactory {
	out := map[string]ScheduleFactory{}
	for _, id := range ids {
		out[id] = func(_ aws.Config, env map[string]string) (func(context.Context) error, error) {
			c.mu.Lock()
			c.envs[id] = env
			c.mu.Unlock()
			return func(context.Context) error {
				c.mu.Lock()
				c.runs[id]++
				c.mu.Unlock()
				select {
				case c.ticks <- struct{}{}:
				default:
				}
				return nil
			}, nil
		}
	}
	return out
}

func (c *runCounter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// scheduleStack wires the template at path into a stack that runs its
// schedules (no moto: the scheduled functions are counters).
func scheduleStack(t *testing.T, path string, opts Options) (*Stack, error) {
	t.Helper()
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{tpl: tpl, URL: "http://127.0.0.1:3999", log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Locals: samtemplate.Locals{Refs: map[string]string{"Table": "flagline-Table"}, Attrs: map[string]string{}, Params: opts.Params},
		runCtx: ctx, cancel: cancel, stop: make(chan struct{})}
	t.Cleanup(func() {
		close(s.stop)
		s.wg.Wait()
		cancel()
	})
	return s, s.wire(aws.Config{}, opts, http.NewServeMux())
}

func schedules(s *Stack) map[string]ScheduledFunction {
	out := map[string]ScheduledFunction{}
	for _, sf := range s.Schedules {
		out[sf.Function] = sf
	}
	return out
}

const scheduleFixture = "testdata/schedule.yaml"

// --schedule-every runs every enabled scheduled function (Schedule and
// ScheduleV2) that often; a disabled one never runs. No timing is
// asserted: the test waits, within a generous deadline, until each ran
// three times.
func TestScheduleEveryRunsScheduledFunctions(t *testing.T) {
	c := newRunCounter()
	s, err := scheduleStack(t, scheduleFixture, Options{
		ScheduleEvery: 10 * time.Millisecond,
		Schedule:      c.factories("EscalateFunction", "DigestFunction", "RetiredFunction"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := schedules(s)
	for _, id := range []string{"EscalateFunction", "DigestFunction"} {
		if got[id].Every != 10*time.Millisecond || got[id].Disabled {
			t.Fatalf("%s: %+v, want every 10ms", id, got[id])
		}
	}
	if !got["RetiredFunction"].Disabled {
		t.Errorf("RetiredFunction: %+v, want disabled", got["RetiredFunction"])
	}
	deadline := time.After(60 * time.Second)
	for c.count("EscalateFunction") < 3 || c.count("DigestFunction") < 3 {
		select {
		case <-c.ticks:
		case <-deadline:
			t.Fatalf("runs after 60s: EscalateFunction %d, DigestFunction %d; want each run 3 times", c.count("EscalateFunction"), c.count("DigestFunction"))
		}
	}
	if n := c.count("RetiredFunction"); n != 0 {
		t.Errorf("RetiredFunction (Enabled: false) ran %d times", n)
	}
}

// Without --schedule-every a function runs on the template's rate, and a
// --param that sets the schedule changes it; the parameter also reaches
// the function's environment.
func TestScheduleFollowsTemplateAndParams(t *testing.T) {
	c := newRunCounter()
	s, err := scheduleStack(t, scheduleFixture, Options{Schedule: c.factories("EscalateFunction", "DigestFunction", "RetiredFunction")})
	if err != nil {
		t.Fatal(err)
	}
	got := schedules(s)
	if got["EscalateFunction"].Every != time.Minute || got["DigestFunction"].Every != 5*time.Minute {
		t.Errorf("schedules %+v, want the template's rate(1 minute) and rate(5 minutes)", s.Schedules)
	}

	c = newRunCounter()
	s, err = scheduleStack(t, scheduleFixture, Options{
		Params:   map[string]string{"EscalateSchedule": "rate(20 minutes)", "LevelThresholds": "2,4"},
		Schedule: c.factories("EscalateFunction", "DigestFunction", "RetiredFunction"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if sf := schedules(s)["EscalateFunction"]; sf.Every != 20*time.Minute || sf.Expression != "rate(20 minutes)" {
		t.Errorf("EscalateFunction %+v, want the overridden rate(20 minutes)", sf)
	}
	if env := c.envs["EscalateFunction"]; env["LEVEL_THRESHOLDS"] != "2,4" {
		t.Errorf("LEVEL_THRESHOLDS %q, want 2,4 from --param LevelThresholds=2,4", env["LEVEL_THRESHOLDS"])
	}
}

// A cron schedule runs locally only at the --schedule-every interval;
// without one it is an error, not a function that silently never runs.
func TestScheduleCron(t *testing.T) {
	data, err := os.ReadFile(scheduleFixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	cron := strings.Replace(string(data), "ScheduleExpression: rate(5 minutes)", `ScheduleExpression: "cron(0 9 * * ? *)"`, 1)
	if err := os.WriteFile(path, []byte(cron), 0o600); err != nil {
		t.Fatal(err)
	}
	factories := newRunCounter().factories("EscalateFunction", "DigestFunction", "RetiredFunction")
	if _, err := scheduleStack(t, path, Options{Schedule: factories}); err == nil || !strings.Contains(err.Error(), "only rate(N unit) expressions run locally") {
		t.Errorf("cron without --schedule-every: %v", err)
	}
	s, err := scheduleStack(t, path, Options{Schedule: factories, ScheduleEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if sf := schedules(s)["DigestFunction"]; sf.Every != time.Hour {
		t.Errorf("DigestFunction %+v, want every 1h", sf)
	}
}

// A bad --param stops Start with an error naming the parameter and the
// rule, before anything is created: the address below cannot be
// listened on, so any later step would fail with a different error.
func TestStartRefusesBadParams(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   []string
	}{
		{map[string]string{"LogRetentionDays": "8"}, []string{"LogRetentionDays", `"8"`, "AllowedValues"}},
		{map[string]string{"Stage": "Prod"}, []string{"Stage", "AllowedPattern"}},
		{map[string]string{"ReportRetentionDays": "0"}, []string{"ReportRetentionDays", "MinValue 1"}},
		{map[string]string{"LevelTresholds": "2,4"}, []string{"declares no parameter LevelTresholds", "LevelThresholds"}},
	} {
		_, err := Start(context.Background(), Options{
			Template: filepath.Join("..", "..", "..", "template.yaml"),
			Addr:     "256.0.0.1:bad",
			Params:   tc.params,
		})
		if !errors.Is(err, samtemplate.ErrInvalidParameter) {
			t.Errorf("%v: %v, want ErrInvalidParameter", tc.params, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", tc.params, err, w)
			}
		}
	}
}

// A DashboardUrl given as a parameter is where links point; the stack's
// own URL stands in only for the template's default.
func TestParamDashboardURL(t *testing.T) {
	w, err := wireFrom(t, wireTemplate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.envs["CasesFunction"]["DASHBOARD_URL"]; got != "http://127.0.0.1:3999" {
		t.Fatalf("DASHBOARD_URL %q without a parameter, want the stack's URL", got)
	}
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{tpl: tpl, URL: "http://127.0.0.1:3999", Locals: samtemplate.Locals{
		Refs:   map[string]string{"Table": "t", "HttpApi": "api", "AlertsTopic": "arn:topic"},
		Attrs:  map[string]string{},
		Params: map[string]string{"DashboardUrl": "https://dash.example"},
	}}
	overridesFor := func(opts Options) map[string]string {
		env, err := s.FunctionEnv("CasesFunction", functionOverrides(opts, s.URL))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	if got := overridesFor(Options{Params: s.Locals.Params})["DASHBOARD_URL"]; got != "https://dash.example" {
		t.Errorf("DASHBOARD_URL %q, want the DashboardUrl parameter", got)
	}
	// An explicit environment override still wins.
	if got := overridesFor(Options{Params: s.Locals.Params, Env: map[string]string{"DASHBOARD_URL": "https://tunnel.example"}})["DASHBOARD_URL"]; got != "https://tunnel.example" {
		t.Errorf("DASHBOARD_URL %q, want the Env override", got)
	}
}
