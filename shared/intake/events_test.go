package intake_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/webhook"
)

// demoSecret signs the sample events in events/; events/README.md publishes it.
const demoSecret = "whsec_ZmxhZ2xpbmUtZGVtby1zZWNyZXQtbm90LWZvci1wcm9k"

// eventWant is what the handler must answer to one sample event.
type eventWant struct {
	status    int
	code      string   // error code; "" for 202
	duplicate bool     // for 202
	fields    []string // fields a 422 must name
	// resign false keeps the file's signature (only the timestamp is made
	// current), for a file whose signature is meant to be wrong.
	resign bool
}

// sampleEvents lists every events/ingest-*.json. Valid and retry run first,
// in that order; a file missing from this map fails the test.
var sampleEvents = map[string]eventWant{
	"ingest-valid.json":          {status: 202, resign: true},
	"ingest-retry.json":          {status: 202, duplicate: true, resign: true},
	"ingest-bad-signature.json":  {status: 401, code: "signature_invalid"},
	"ingest-oversized.json":      {status: 413, code: "payload_too_large", resign: true},
	"ingest-invalid-field.json":  {status: 422, code: "invalid_field", fields: []string{"url", "good_faith"}, resign: true},
	"ingest-unknown-source.json": {status: 404, code: "unknown_source", resign: true},
}

func TestSampleEvents(t *testing.T) {
	dir := filepath.Join("..", "..", "events")
	files, err := filepath.Glob(filepath.Join(dir, "ingest-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, n := range names {
		if _, ok := sampleEvents[n]; !ok {
			t.Errorf("events/%s has no expected answer in sampleEvents", n)
		}
	}
	for n := range sampleEvents {
		if !slices.Contains(names, n) {
			t.Errorf("sampleEvents expects events/%s, which does not exist", n)
		}
	}
	first := []string{"ingest-valid.json", "ingest-retry.json"}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(first, a), slices.Index(first, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), demoSecret) {
		t.Errorf("events/README.md does not publish the demo secret %s", demoSecret)
	}
	secret := must(webhook.ParseSecret(demoSecret))

	h, store := newHandler()
	h.Secrets = must(webhook.ParseSources(`{"demo":["` + demoSecret + `"]}`))

	var validReceipt *answer
	for _, name := range names {
		want, ok := sampleEvents[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ev := loadSampleEvent(t, filepath.Join(dir, name))
			checkSampleEventShape(t, ev)
			body := []byte(ev.Body)
			id := ev.Headers[webhook.HeaderID]

			// The static file was signed correctly at its own timestamp,
			// unless it is the bad-signature sample.
			ts, err := strconv.ParseInt(ev.Headers[webhook.HeaderTimestamp], 10, 64)
			if err != nil {
				t.Fatalf("webhook-timestamp %q: %v", ev.Headers[webhook.HeaderTimestamp], err)
			}
			staticOK := ev.Headers[webhook.HeaderSignature] == secret.Sign(id, time.Unix(ts, 0), body)
			if staticOK != want.resign {
				t.Errorf("the file's own signature is valid=%v; want %v", staticOK, want.resign)
			}

			now := time.Now()
			ev.Headers[webhook.HeaderTimestamp] = strconv.FormatInt(now.Unix(), 10)
			if want.resign {
				ev.Headers[webhook.HeaderSignature] = secret.Sign(id, now, body)
			}

			resp, err := h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var a answer
			if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, resp.Body)
			}
			if resp.StatusCode != want.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, want.status, resp.Body)
			}
			if want.status != 202 {
				assertRefused(t, resp.StatusCode, a, hostile{status: want.status, code: want.code})
				for _, f := range want.fields {
					assertRefused(t, resp.StatusCode, a, hostile{status: want.status, code: want.code, field: f})
				}
				return
			}
			if a.Duplicate != want.duplicate || a.ReportID == "" || a.CaseID == "" || a.CanonicalURL == "" {
				t.Fatalf("receipt %+v, want duplicate=%v with ids", a, want.duplicate)
			}
			switch {
			case validReceipt == nil:
				validReceipt = &a
			case a.ReportID != validReceipt.ReportID || a.CaseID != validReceipt.CaseID || a.CanonicalURL != validReceipt.CanonicalURL:
				t.Errorf("retry answered %+v; the first delivery answered %+v", a, *validReceipt)
			}
		})
	}
	if n := store.len(); n != 1 {
		t.Errorf("%d reports stored, want exactly 1 (valid; retry is its duplicate)", n)
	}
}

func loadSampleEvent(t *testing.T, path string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields() // a misspelt key would silently be dropped
	var ev events.APIGatewayV2HTTPRequest
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("%s is not an API Gateway v2 event: %v", path, err)
	}
	return ev
}

// checkSampleEventShape checks what sam local invoke and the handler rely on.
func checkSampleEventShape(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
	t.Helper()
	const route = "POST /v1/sources/{source}/reports"
	source := ev.PathParameters["source"]
	path := "/v1/sources/" + source + "/reports"
	switch {
	case ev.Version != "2.0":
		t.Errorf("version %q, want 2.0", ev.Version)
	case ev.RouteKey != route || ev.RequestContext.RouteKey != route:
		t.Errorf("routeKey %q / requestContext.routeKey %q, want %q", ev.RouteKey, ev.RequestContext.RouteKey, route)
	case !webhook.ValidSourceName(source):
		t.Errorf("pathParameters.source %q is not a source name", source)
	case ev.RawPath != path || ev.RequestContext.HTTP.Path != path:
		t.Errorf("rawPath %q / requestContext.http.path %q, want %q", ev.RawPath, ev.RequestContext.HTTP.Path, path)
	case ev.RequestContext.HTTP.Method != "POST":
		t.Errorf("requestContext.http.method %q, want POST", ev.RequestContext.HTTP.Method)
	case ev.RequestContext.HTTP.SourceIP == "" || ev.RequestContext.RequestID == "":
		t.Error("requestContext.http.sourceIp and requestContext.requestId must be set")
	case ev.IsBase64Encoded:
		t.Error("isBase64Encoded must be false: the samples are readable JSON")
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-case, as API Gateway v2 delivers headers", k)
		}
	}
	if cl := ev.Headers["content-length"]; cl != "" && cl != strconv.Itoa(len(ev.Body)) {
		t.Errorf("content-length %s, but the body is %d bytes", cl, len(ev.Body))
	}
	for _, h := range []string{"content-type", webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature} {
		if ev.Headers[h] == "" {
			t.Errorf("header %s is missing", h)
		}
	}
}
