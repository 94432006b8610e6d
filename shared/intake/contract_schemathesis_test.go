//go:build integration

package intake_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/intake"
)

// apiGateway serves h as the HTTP API does: the one route
// POST /v1/sources/{source}/reports, headers lower-cased and repeated ones
// joined with commas (payload format 2.0,
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
// and API Gateway's own {"message":"Not Found"} for anything else.
func apiGateway(t *testing.T, h *intake.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.EscapedPath(), "/")
		if r.Method != http.MethodPost || len(parts) != 5 || parts[1] != "v1" || parts[2] != "sources" || parts[4] != "reports" || parts[3] == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hdr := map[string]string{}
		for k, vs := range r.Header {
			hdr[strings.ToLower(k)] = strings.Join(vs, ",")
		}
		resp, err := h.Handle(r.Context(), events.APIGatewayV2HTTPRequest{
			Version:        "2.0",
			RouteKey:       "POST /v1/sources/{source}/reports",
			RawPath:        r.URL.EscapedPath(),
			Headers:        hdr,
			PathParameters: map[string]string{"source": parts[3]},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey:  "POST /v1/sources/{source}/reports",
				RequestID: "schemathesis",
				HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path},
			},
			Body: string(body),
		})
		if err != nil {
			t.Errorf("Handle: %v", err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		io.WriteString(w, resp.Body)
	})
}

// TestContractSchemathesis runs schemathesis, which generates requests from
// docs/openapi.yaml, against the intake; testdata/schemathesis_hooks.py
// signs each one. It fails on a 5xx, an undocumented status, header or body,
// and a schema-valid body refused with a code the schema does not list for
// its field (x-schema-valid-refusals).
func TestContractSchemathesis(t *testing.T) {
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
	spec := must(filepath.Abs(specPath))
	hooks := must(filepath.Abs("testdata"))
	log := filepath.Join(t.TempDir(), "answers.log")

	h, _ := newHandler()
	srv := httptest.NewServer(apiGateway(t, h))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, st, "run", spec,
		"--url", srv.URL,
		// The intake's operation only: the document also describes the
		// cases function's routes, which this server does not serve.
		"--include-path", "/v1/sources/{source}/reports",
		"--mode", "positive",
		"--phases", "examples,coverage,fuzzing",
		"--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,schema_valid_refused_only_as_documented",
		"--max-examples", "150",
		"--seed", "8",
		"--workers", "1",
		"--no-color",
	)
	cmd.Dir = t.TempDir() // schemathesis keeps its example database in the working directory
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+hooks,
		"SCHEMATHESIS_HOOKS=schemathesis_hooks",
		"FLAGLINE_CONTRACT_SECRET="+newSecret,
		"FLAGLINE_CONTRACT_SPEC="+spec,
		"FLAGLINE_CONTRACT_LOG="+log,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis: %v\n%s", err, out)
	}

	answers, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("no request reached the intake: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(answers)), "\n")
	statuses := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		statuses[f[0]+" "+f[1]]++
	}
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%5d × %s", statuses[k], k)
	}
	t.Logf("%d requests generated and signed", len(lines))
	if statuses["202 -"] == 0 {
		t.Errorf("no generated report was accepted; the generator explores refusals only\n%s", out)
	}
}
