package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/flagline/flagline/shared/httpapi"
)

// Answers share one header map; the Retry-After of a 503 stays on that 503
// and never reaches the answers after it.
func TestRetryAfterStaysOnItsAnswer(t *testing.T) {
	unavailable := httpapi.Unavailable(2, "try later")
	if unavailable.StatusCode != 503 || unavailable.Headers["Retry-After"] != "2" {
		t.Fatalf("503: %d %v", unavailable.StatusCode, unavailable.Headers)
	}
	for _, resp := range []struct {
		name string
		h    map[string]string
	}{
		{"JSON", httpapi.JSON(202, map[string]bool{"ok": true}).Headers},
		{"Fail", httpapi.Fail(404, httpapi.Error{Code: "unknown_source", Message: "no"}).Headers},
		{"Raw", httpapi.Raw(202, `{}`).Headers},
	} {
		if _, ok := resp.h["Retry-After"]; ok {
			t.Errorf("%s answer after a 503 carries Retry-After: %v", resp.name, resp.h)
		}
		if resp.h["Content-Type"] != "application/json" || resp.h["Cache-Control"] != "no-store" || resp.h["X-Content-Type-Options"] != "nosniff" {
			t.Errorf("%s headers %v", resp.name, resp.h)
		}
	}
	var body struct {
		Error httpapi.Error `json:"error"`
	}
	if err := json.Unmarshal([]byte(unavailable.Body), &body); err != nil || body.Error.Code != "unavailable" {
		t.Errorf("503 body %s: %v", unavailable.Body, err)
	}
}
