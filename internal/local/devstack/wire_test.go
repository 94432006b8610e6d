package devstack

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/linksign"
)

// wireTemplate has a function with several HTTP API events (as the cases
// function has) declaring the link variables, and one with a single event
// that declares only the key.
const wireTemplate = `
Resources:
  CasesFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          DASHBOARD_URL: https://dashboard.example
          FLAGLINE_LINK_KEY: ""
      Events:
        List:
          Type: HttpApi
          Properties: {Path: "/v1/cases", Method: get}
        Show:
          Type: HttpApi
          Properties: {Path: "/v1/cases/{case_id}", Method: GET}
        Act:
          Type: HttpApi
          Properties: {Path: "/v1/cases/{case_id}/actions", Method: POST}
        Confirm:
          Type: HttpApi
          Properties: {Path: "/cases/{case_id}/{action}", Method: GET}
  IngestFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          FLAGLINE_LINK_KEY: ""
      Events:
        Report:
          Type: HttpApi
          Properties: {Path: "/v1/sources/{source}/reports", Method: POST}
`

type wired struct {
	stack *Stack
	mux   *http.ServeMux
	built map[string]int               // factory calls per function
	envs  map[string]map[string]string // environment each factory got
}

func wireFrom(t *testing.T, template string, env map[string]string) (*wired, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &wired{
		stack: &Stack{tpl: tpl, URL: "http://127.0.0.1:3999", log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Locals: samtemplate.Locals{Refs: map[string]string{}, Attrs: map[string]string{}}},
		mux:   http.NewServeMux(),
		built: map[string]int{},
		envs:  map[string]map[string]string{},
	}
	factory := func(id string) HTTPFactory {
		return func(_ aws.Config, env map[string]string) (apigw.Handler, error) {
			w.built[id]++
			w.envs[id] = env
			return func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: id + " " + req.RouteKey}, nil
			}, nil
		}
	}
	opts := Options{Env: env, HTTP: map[string]HTTPFactory{"CasesFunction": factory("CasesFunction"), "IngestFunction": factory("IngestFunction")}}
	return w, w.stack.wire(aws.Config{}, opts, w.mux)
}

// A function with several HTTP API events is built once and each of its
// routes is served once, by that function.
func TestWireRegistersEachRouteOnce(t *testing.T) {
	w, err := wireFrom(t, wireTemplate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.built["CasesFunction"] != 1 || w.built["IngestFunction"] != 1 {
		t.Errorf("handlers built %v, want one per function", w.built)
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1/cases", "CasesFunction GET /v1/cases"},
		{"GET", "/v1/cases/c_1", "CasesFunction GET /v1/cases/{case_id}"},
		{"POST", "/v1/cases/c_1/actions", "CasesFunction POST /v1/cases/{case_id}/actions"},
		{"GET", "/cases/c_1/acknowledge", "CasesFunction GET /cases/{case_id}/{action}"},
		{"POST", "/v1/sources/demo/reports", "IngestFunction POST /v1/sources/{source}/reports"},
	} {
		rec := httptest.NewRecorder()
		w.mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != 200 || rec.Body.String() != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.want)
		}
	}
	// A route the template does not declare is not served.
	rec := httptest.NewRecorder()
	w.mux.ServeHTTP(rec, httptest.NewRequest("DELETE", "/v1/cases/c_1", nil))
	if rec.Code == 200 {
		t.Errorf("DELETE /v1/cases/c_1 served")
	}
}

// Two events declaring one route key are an error, as API Gateway refuses
// them, not a panic.
func TestWireRefusesDuplicateRoute(t *testing.T) {
	dup := strings.Replace(wireTemplate, `{Path: "/v1/sources/{source}/reports", Method: POST}`, `{Path: "/v1/cases", Method: GET}`, 1)
	_, err := wireFrom(t, dup, nil)
	if err == nil || !strings.Contains(err.Error(), "route GET /v1/cases is declared twice") {
		t.Errorf("err %v", err)
	}
}

// Every function gets the same local link key, and DASHBOARD_URL is the
// stack's own URL, each only where the function declares it.
func TestWireLocalLinkSettings(t *testing.T) {
	w, err := wireFrom(t, wireTemplate, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases, ingest := w.envs["CasesFunction"], w.envs["IngestFunction"]
	if cases["DASHBOARD_URL"] != "http://127.0.0.1:3999" {
		t.Errorf("DASHBOARD_URL %q, want the stack's URL", cases["DASHBOARD_URL"])
	}
	if _, ok := ingest["DASHBOARD_URL"]; ok {
		t.Error("a function that does not declare DASHBOARD_URL got it")
	}
	if _, err := linksign.ParseKey(cases[linksign.EnvKey]); err != nil {
		t.Errorf("link key: %v", err)
	}
	if cases[linksign.EnvKey] != ingest[linksign.EnvKey] {
		t.Error("functions got different link keys: links signed by one would not verify in the other")
	}

	// What the caller sets wins.
	key := linksign.NewKey()
	w, err = wireFrom(t, wireTemplate, map[string]string{"DASHBOARD_URL": "https://tunnel.example", linksign.EnvKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if env := w.envs["CasesFunction"]; env["DASHBOARD_URL"] != "https://tunnel.example" || env[linksign.EnvKey] != key {
		t.Errorf("caller's settings overridden: %v", env)
	}
}
