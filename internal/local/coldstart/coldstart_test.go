package coldstart

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a bootstrap: with COLDSTART_HELPER set it
// behaves as that mode says, against AWS_LAMBDA_RUNTIME_API.
func TestMain(m *testing.M) {
	if mode := os.Getenv("COLDSTART_HELPER"); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"
	fmt.Fprintf(os.Stderr, "env: %s\n", strings.Join(os.Environ(), " "))
	switch mode {
	case "next":
		resp, err := http.Get(api + "invocation/next")
		if err == nil {
			resp.Body.Close()
		}
		return 0
	case "exit":
		fmt.Fprintln(os.Stderr, "ingest: missing TABLE_NAME")
		return 3
	case "initerror":
		resp, err := http.Post(api+"init/error", "application/json", strings.NewReader(`{"errorMessage":"bad config"}`))
		if err == nil {
			resp.Body.Close()
		}
		select {}
	case "other":
		resp, err := http.Get(api + "invocation/1/response")
		if err == nil {
			resp.Body.Close()
		}
		select {}
	}
	return 2
}

func self(t *testing.T, mode string) Bootstrap {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Bootstrap{Name: mode, Path: exe, Env: map[string]string{"COLDSTART_HELPER": mode, "TABLE_NAME": "flagline-Table"}}
}

func TestStartEndsAtFirstNext(t *testing.T) {
	t.Setenv("COLDSTART_LEAK", "from-the-developer")
	b := self(t, "next")
	d, stderr, err := Start(context.Background(), b.Path, b.Env)
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Errorf("init took %s", d)
	}
	env := string(stderr)
	if !strings.Contains(env, "TABLE_NAME=flagline-Table") || !strings.Contains(env, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:") {
		t.Errorf("bootstrap did not get its environment and the Runtime API address: %s", env)
	}
	if strings.Contains(env, "COLDSTART_LEAK") {
		t.Errorf("bootstrap saw the caller's environment, which Lambda never gives it: %s", env)
	}
}

func TestStartFailsWhereLambdaInitFails(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"exit", "missing TABLE_NAME"},
		{"initerror", "bad config"},
		{"other", "unexpected request GET /2018-06-01/runtime/invocation/1/response"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			b := self(t, tc.mode)
			_, _, err := Start(context.Background(), b.Path, b.Env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestCompareCountsRoundsAfterWarmup(t *testing.T) {
	floor, fn := self(t, "next"), self(t, "next")
	floor.Name, fn.Name = "floor", "ingest"
	got, err := Compare(context.Background(), floor, []Bootstrap{fn}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "ingest" || len(got[0].Init) != 3 || len(got[0].Floor) != 3 {
		t.Fatalf("Compare = %+v, want 3 paired rounds for ingest", got)
	}
	if _, err := Compare(context.Background(), floor, []Bootstrap{self(t, "exit")}, 1, 0); err == nil || !strings.Contains(err.Error(), "missing TABLE_NAME") {
		t.Errorf("Compare with a failing bootstrap = %v, want its init failure", err)
	}
}

// The ratio pairs each round's starts: a round where the machine was slow
// for both cancels out, which a ratio of medians would not do.
func TestRatioIsMedianOfPerRoundRatios(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	c := Comparison{Init: ms(2, 4, 9), Floor: ms(1, 4, 3)}
	if got := c.Ratio(); got != 2 {
		t.Errorf("Ratio = %v, want 2 (median of 2, 1, 3)", got)
	}
}

func TestMedian(t *testing.T) {
	in := []float64{3, 1, 2}
	if got := Median(in); got != 2 {
		t.Errorf("Median(3,1,2) = %v", got)
	}
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("Median changed its input: %v", in)
	}
	if got := Median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("Median(4,1,3,2) = %v", got)
	}
	if got := Median([]time.Duration(nil)); got != 0 {
		t.Errorf("Median() = %v", got)
	}
}
