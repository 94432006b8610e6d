//go:build integration

package casesapi_test

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/shared/casesapi"
)

// contractSpec is the OpenAPI document that desks integrate against.
const contractSpec = "../../docs/openapi.yaml"

// TestCasesContractSchemathesis runs schemathesis, which generates requests
// from docs/openapi.yaml, against the case API's JSON routes (^/v1/cases, ^/v1/silences),
// served by the handler FromEnv builds over moto behind the HTTP API's
// routes, as the EU coordinator's token (it may list any country and act on
// every case). It fails on a 5xx, a status, header, media type or body that
// the document does not describe: every refusal the API answers, its field
// codes included.
func TestCasesContractSchemathesis(t *testing.T) {
	s := newStack(t)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var (
		mu       sync.Mutex
		answered = map[string]int{} // "route status" → count
	)
	mux := http.NewServeMux()
	for _, route := range casesapi.Routes {
		apigw.Handle(mux, route, apigw.Handler(s.h.Handle), log)
	}
	// What no route matches: API Gateway's own answer.
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		mu.Lock()
		answered[fmt.Sprintf("%s %d", pattern, rec.status)]++
		mu.Unlock()
	}))
	defer srv.Close()

	// The case API's JSON routes; the intake has its own contract test and
	// the link pages are HTML.
	out := runSchemathesis(t, s, srv.URL, "^/v1/(cases|silences)", 60)

	total := 0
	for _, k := range slices.Sorted(maps.Keys(answered)) {
		t.Logf("%5d × %s", answered[k], k)
		total += answered[k]
	}
	t.Logf("%d requests", total)
	// The run must have reached every operation's success, not only its
	// refusals.
	for _, route := range []string{casesapi.RouteList, casesapi.RouteDetail, casesapi.RouteAction, casesapi.RouteNotice} {
		method, path, _ := strings.Cut(route, " ")
		if answered[method+" "+path+" 200"] == 0 {
			t.Errorf("no request to %s was answered 200; the run explored refusals only\n%s", route, out)
		}
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// runSchemathesis runs schemathesis (from the venv `make venv` installs)
// on the operations of docs/openapi.yaml whose paths match pathRegex,
// against the API at url, as the EU coordinator of stack s: every phase
// but the stateful one, one worker, a fixed seed, and every check of a
// status, header, media type and body against the document, and of no
// 5xx. A failing run fails the test with its report and what the handler
// logged; the output of a passing one is returned.
func runSchemathesis(t *testing.T, s *stack, url, pathRegex string, maxExamples int) []byte {
	t.Helper()
	venv := os.Getenv("FLAGLINE_VENV")
	if venv == "" {
		venv = filepath.Join("..", "..", ".venv")
	}
	st, err := filepath.Abs(filepath.Join(venv, "bin", "schemathesis"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st); err != nil {
		t.Fatalf("schemathesis is not installed (make venv): %v", err)
	}
	spec, err := filepath.Abs(contractSpec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), st, "run", spec,
		"--url", url,
		"--include-path-regex", pathRegex,
		"--header", "Authorization: Bearer "+s.tokens["eu-coord"],
		"--mode", "all",
		"--phases", "examples,coverage,fuzzing",
		"--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
		"--max-examples", strconv.Itoa(maxExamples),
		"--seed", "9",
		"--workers", "1",
		"--no-color",
	)
	cmd.Dir = t.TempDir() // schemathesis keeps its example database in the working directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis: %v\n%s\nthe handler logged:\n%s", err, out, s.logs)
	}
	return out
}
