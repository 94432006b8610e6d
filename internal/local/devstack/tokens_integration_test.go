//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/shared/tokens"
)

// The stack makes one case API token per contact point of its directory;
// each authenticates as its contact point with the store the cases
// function uses, the local API accepts it, and TokensPath serves them all.
func TestStackTokens(t *testing.T) {
	ctx := context.Background()
	p := startPipeline(t, time.Hour) // no stream work needed here
	s := p.stack

	if got, want := slices.Sorted(maps.Keys(s.Tokens)), slices.Sorted(maps.Keys(contactCountries)); !slices.Equal(got, want) {
		t.Fatalf("tokens for %v, want one per contact point %v", got, want)
	}
	store := &tokens.Store{DB: s.DynamoDB(), Table: s.Locals.Refs["Table"]}
	for cp, tok := range s.Tokens {
		info, err := store.Lookup(ctx, tok)
		if err != nil || info.ContactPoint != cp {
			t.Errorf("token of %s: %+v %v", cp, info, err)
		}
	}

	resp, err := http.Get(s.URL + devstack.TokensPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !maps.Equal(served, s.Tokens) {
		t.Errorf("%s: %d %s %v, want %v", devstack.TokensPath, resp.StatusCode, resp.Header.Get("Content-Type"), served, s.Tokens)
	}

	// Through the local API: the cases function accepts each desk's token
	// and refuses a request without one.
	list := func(token string) int {
		t.Helper()
		req, err := http.NewRequest("GET", s.URL+"/v1/cases", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := list(s.Tokens["it-desk"]); code != 200 {
		t.Errorf("GET /v1/cases as it-desk: %d, want 200", code)
	}
	if code := list(""); code != 401 {
		t.Errorf("GET /v1/cases without a token: %d, want 401", code)
	}
}

// The functions that sign and verify links get the stack's own URL as
// DASHBOARD_URL and one shared local link key.
func TestStackLinkSettings(t *testing.T) {
	p := startPipeline(t, time.Hour)
	for _, id := range []string{"AlertFunction", "CasesFunction"} {
		env, err := p.stack.FunctionEnv(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, declared := env["DASHBOARD_URL"]; !declared {
			t.Errorf("%s does not declare DASHBOARD_URL", id)
		}
	}
	// What the functions actually received is checked through a link:
	// the page a link of the alert email opens is served locally.
	resp, err := http.Get(p.stack.URL + "/cases/c_unknown?cp=it-desk&exp=1&sig=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a forged link on the local server: %d, want 403 (the link key is set)", resp.StatusCode)
	}
}
