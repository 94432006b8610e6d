//go:build integration

package runtimetest_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/internal/local/runtimetest"
	"github.com/flagline/flagline/shared/webhook"
)

// ingestForHarness is the ingest function with the template's environment,
// for the harness's own tests.
func ingestForHarness(t *testing.T) (string, map[string]string) {
	t.Helper()
	env, err := stack.FunctionEnv("IngestFunction", moto.Env(), ingestSuite.overrides)
	if err != nil {
		t.Fatal(err)
	}
	return runtimetest.Build(t, "IngestFunction"), env
}

// unknownSource is a delivery the intake refuses without writing anything.
func unknownSource(t *testing.T) []byte {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	decodeStrict(t, filepath.Join(root, "events", "ingest-unknown-source.json"), &ev)
	return mustJSON(t, ev)
}

func TestInvokesAreSerialised(t *testing.T) {
	bootstrap, env := ingestForHarness(t)
	fn := runtimetest.Start(t, bootstrap, env)
	payload := unknownSource(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			raw, fnErr, err := fn.Invoke(context.Background(), payload)
			var resp events.APIGatewayV2HTTPResponse
			if err != nil || fnErr != "" || json.Unmarshal(raw, &resp) != nil || resp.StatusCode != 404 {
				t.Errorf("concurrent invoke: %v %q %s", err, fnErr, raw)
			}
		})
	}
	wg.Wait()
}

func TestStopLeavesNothingBehind(t *testing.T) {
	bootstrap, env := ingestForHarness(t)
	var pids []int
	t.Run("run", func(t *testing.T) {
		fn := runtimetest.Start(t, bootstrap, env)
		invoke(t, fn, unknownSource(t)) // the bootstrap runs from the first invoke
		if pids = runtimetest.Processes(fn); len(pids) < 2 {
			t.Fatalf("processes %v; want the emulator and the bootstrap", pids)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !runtimetest.Alive(p) })
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v (of %v) are left after the test ended", left, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFunctionErrorsAreNotInvokeErrors(t *testing.T) {
	bootstrap, env := ingestForHarness(t)
	fn := runtimetest.Start(t, bootstrap, env)
	resp, fnErr, err := fn.Invoke(context.Background(), []byte(`"not an API Gateway event"`))
	if err != nil || fnErr == "" || !strings.Contains(string(resp), "errorMessage") {
		t.Errorf("Invoke = %s, %q, %v; want a function error", resp, fnErr, err)
	}
	// The function still answers afterwards.
	invoke(t, fn, unknownSource(t))
}

func TestStartupFailureIsAnInvokeError(t *testing.T) {
	bootstrap, env := ingestForHarness(t)
	env = maps.Clone(env)
	delete(env, "TABLE_NAME")
	fn := runtimetest.Start(t, bootstrap, env)
	_, _, err := fn.Invoke(context.Background(), unknownSource(t))
	if err == nil || !strings.Contains(err.Error(), "TABLE_NAME") {
		t.Errorf("Invoke with TABLE_NAME unset: %v; want an error quoting the function's start-up message", err)
	}
}

// The function sees only the environment given to Start: none of the
// developer's AWS settings.
func TestDevelopersAWSConfigDoesNotLeak(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[profile broken]\nregion = nowhere-1\ncredential_process = /bin/false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_PROFILE", "does-not-exist")
	t.Setenv(webhook.EnvSecrets, "not json")
	bootstrap, env := ingestForHarness(t)
	fn := runtimetest.Start(t, bootstrap, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, fnErr, err := fn.Invoke(ctx, unknownSource(t))
	var resp events.APIGatewayV2HTTPResponse
	if err != nil || fnErr != "" || json.Unmarshal(raw, &resp) != nil || resp.StatusCode != 404 {
		t.Errorf("with the developer's AWS settings broken: %v %q %s", err, fnErr, raw)
	}
}

func TestOverridesMustBeDeclared(t *testing.T) {
	if _, err := stack.FunctionEnv("AggregateFunction", moto.Env(), map[string]string{"NOT_DECLARED": "x"}); err == nil {
		t.Error("an override of a variable the template does not declare was accepted")
	}
}
