package casesapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/silences"
)

// fakeSilences stands in for silences.Store, with its refusals.
type fakeSilences struct {
	directory map[string][]string
	stored    []silences.Silence
	err       error
}

func (f *fakeSilences) Add(_ context.Context, cp string, until time.Time, reason, createdBy string) (silences.Silence, error) {
	if f.err != nil {
		return silences.Silence{}, f.err
	}
	countries, ok := f.directory[cp]
	switch {
	case !ok:
		return silences.Silence{}, silences.ErrNoContactPoint
	case len(countries) == 1 && countries[0] == "EU":
		return silences.Silence{}, silences.ErrCoordinator
	}
	s := silences.Silence{ID: "a1b2c3d4e5f6", ContactPoint: cp, From: now, Until: until, Reason: strings.TrimSpace(reason), CreatedBy: createdBy}
	f.stored = append(f.stored, s)
	return s, nil
}

func (f *fakeSilences) List(_ context.Context, cp string) ([]silences.Silence, error) {
	var out []silences.Silence
	for _, s := range f.stored {
		if cp == "" || s.ContactPoint == cp {
			out = append(out, s)
		}
	}
	return out, f.err
}

func (f *fakeSilences) Expire(_ context.Context, cp, id string) (silences.Silence, error) {
	for i, s := range f.stored {
		if s.ContactPoint == cp && s.ID == id {
			if s.ExpiredAt.IsZero() {
				f.stored[i].ExpiredAt = now
			}
			return f.stored[i], nil
		}
	}
	return silences.Silence{}, silences.ErrNotFound
}

func silenceEnv() (*env, *fakeSilences) {
	e := newEnv()
	f := &fakeSilences{directory: e.db.entries}
	e.h.Silences = f
	return e, f
}

func silenceReq(route, token, body string, path, query map[string]string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	r := request(route, path, h)
	r.Body = body
	r.QueryStringParameters = query
	return r
}

// The coordinator silences a desk, lists it, and ends it; the answers carry
// what the contract names.
func TestSilencesAPI(t *testing.T) {
	e, f := silenceEnv()
	resp := e.do(t, silenceReq(casesapi.RouteSilenceAdd, "flt_eu",
		`{"contact_point":"it-polpost","until":"2026-12-03T10:42:00+01:00","reason":"office closed"}`, nil, nil))
	if resp.StatusCode != 201 {
		t.Fatalf("add: %d %s", resp.StatusCode, resp.Body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"silence_id": "a1b2c3d4e5f6", "contact_point": "it-polpost", "from": "2026-12-01T10:42:00Z",
		"until": "2026-12-03T09:42:00Z", "reason": "office closed", "created_by": "eu-coord", "active": true,
	} {
		if got[k] != want {
			t.Errorf("add answer %s = %v, want %v (%s)", k, got[k], want, resp.Body)
		}
	}

	resp = e.do(t, silenceReq(casesapi.RouteSilenceList, "flt_eu", "", nil, nil))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"silences":[{"silence_id":"a1b2c3d4e5f6"`) {
		t.Errorf("list: %d %s", resp.StatusCode, resp.Body)
	}
	resp = e.do(t, silenceReq(casesapi.RouteSilenceList, "flt_eu", "", nil, map[string]string{"contact_point": "fr-ocrieet"}))
	if resp.StatusCode != 200 || resp.Body != `{"silences":[]}` {
		t.Errorf("list of a desk with none: %d %s", resp.StatusCode, resp.Body)
	}

	resp = e.do(t, silenceReq(casesapi.RouteSilenceExpire, "flt_eu", "", map[string]string{"silence_id": "a1b2c3d4e5f6"}, map[string]string{"contact_point": "it-polpost"}))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"expired_at":"2026-12-01T10:42:00Z"`) || !strings.Contains(resp.Body, `"active":false`) {
		t.Errorf("expire: %d %s", resp.StatusCode, resp.Body)
	}
	if len(f.stored) != 1 || f.stored[0].ExpiredAt.IsZero() {
		t.Errorf("stored %+v", f.stored)
	}
}

// Every refusal of the silences routes, with its status and code.
func TestSilencesAPIRefusals(t *testing.T) {
	add := func(token, body string) events.APIGatewayV2HTTPRequest {
		return silenceReq(casesapi.RouteSilenceAdd, token, body, nil, nil)
	}
	expire := func(id, cp string) events.APIGatewayV2HTTPRequest {
		q := map[string]string{}
		if cp != "" {
			q["contact_point"] = cp
		}
		return silenceReq(casesapi.RouteSilenceExpire, "flt_eu", "", map[string]string{"silence_id": id}, q)
	}
	ok := `"until":"2026-12-02T00:00:00Z","reason":"x"`
	for _, tc := range []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"no token", add("", `{"contact_point":"it-polpost",`+ok+`}`), 401, "unauthorized"},
		{"a desk's token", add("flt_it", `{"contact_point":"it-polpost",`+ok+`}`), 403, "forbidden"},
		{"a desk lists", silenceReq(casesapi.RouteSilenceList, "flt_de", "", nil, nil), 403, "forbidden"},
		{"a desk expires", silenceReq(casesapi.RouteSilenceExpire, "flt_fr", "", map[string]string{"silence_id": "a1b2c3d4e5f6"}, map[string]string{"contact_point": "it-polpost"}), 403, "forbidden"},
		{"not JSON", add("flt_eu", `{`), 400, "invalid_json"},
		{"unknown field", add("flt_eu", `{"contact_point":"it-polpost",`+ok+`,"from":"2026-12-01T00:00:00Z"}`), 400, "invalid_json"},
		{"no contact point", add("flt_eu", `{`+ok+`}`), 400, "invalid_request"},
		{"bad until", add("flt_eu", `{"contact_point":"it-polpost","until":"tomorrow","reason":"x"}`), 400, "invalid_request"},
		{"until in the past", add("flt_eu", `{"contact_point":"it-polpost","until":"2026-12-01T10:00:00Z","reason":"x"}`), 400, "invalid_request"},
		{"until over 90 days", add("flt_eu", `{"contact_point":"it-polpost","until":"2027-03-02T10:42:01Z","reason":"x"}`), 400, "invalid_request"},
		{"blank reason", add("flt_eu", `{"contact_point":"it-polpost","until":"2026-12-02T00:00:00Z","reason":" "}`), 400, "invalid_request"},
		{"unknown contact point", add("flt_eu", `{"contact_point":"xx-nobody",`+ok+`}`), 404, "contact_point_not_found"},
		{"the coordinator", add("flt_eu", `{"contact_point":"eu-coord",`+ok+`}`), 409, "coordinator_not_silenceable"},
		{"expire without contact point", expire("a1b2c3d4e5f6", ""), 400, "invalid_request"},
		{"expire unknown", expire("a1b2c3d4e5f6", "it-polpost"), 404, "silence_not_found"},
		{"expire malformed id", expire("nope", "it-polpost"), 404, "silence_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, f := silenceEnv()
			resp := e.do(t, tc.req)
			if resp.StatusCode != tc.status || errorCode(t, resp) != tc.code {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, resp.Body, tc.status, tc.code)
			}
			if len(f.stored) != 0 {
				t.Errorf("a refused request stored %+v", f.stored)
			}
		})
	}
	// The store failing is a 503, never a 500.
	e, f := silenceEnv()
	f.err = errors.New("throttled")
	if resp := e.do(t, add("flt_eu", `{"contact_point":"it-polpost",`+ok+`}`)); resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
		t.Errorf("store down: %d %v", resp.StatusCode, resp.Headers)
	}
}
