package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/webhook"
)

// fakeSSM answers GetParametersByPath as Parameter Store does: at most
// MaxResults (1 to 10, default 10) parameters a page, continued by NextToken,
// SecureString values decrypted only WithDecryption, only the parameters
// directly under Path. emptyPages makes every other page empty but not the
// last, which the API allows ("best-effort").
type fakeSSM struct {
	calls      int
	params     []webhook.Parameter
	err        error
	failPage   int // fail the call that asks for this page (1-based), once
	emptyPages bool
}

func (f *fakeSSM) GetParametersByPath(_ context.Context, in *webhook.GetParametersByPathInput) (*webhook.GetParametersByPathOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	max := 10
	if in.MaxResults != 0 {
		if in.MaxResults < 1 || in.MaxResults > 10 {
			return nil, fmt.Errorf("ValidationException: MaxResults %d must be 1 to 10", in.MaxResults)
		}
		max = int(in.MaxResults)
	}
	var under []webhook.Parameter
	for _, p := range f.params {
		rest, ok := strings.CutPrefix(p.Name, in.Path+"/")
		if ok && !strings.Contains(rest, "/") {
			if p.Type == webhook.ParameterTypeSecureString && !in.WithDecryption {
				p.Value = "AQICAHh" + strconv.Itoa(len(p.Value)) // ciphertext
			}
			under = append(under, p)
		}
	}
	// The token is "<page>:<offset>".
	page, offset := 1, 0
	if t := in.NextToken; t != "" {
		fmt.Sscanf(t, "%d:%d", &page, &offset)
	}
	if page == f.failPage {
		f.failPage = 0
		return nil, errors.New("ThrottlingException: Rate exceeded")
	}
	out := &webhook.GetParametersByPathOutput{}
	end := offset
	if !(f.emptyPages && page%2 == 1) {
		end = min(offset+max, len(under))
		out.Parameters = under[offset:end]
	}
	if end < len(under) {
		out.NextToken = fmt.Sprintf("%d:%d", page+1, end)
	}
	return out, nil
}

func secure(name, value string) webhook.Parameter {
	return webhook.Parameter{Name: name, Value: value, Type: webhook.ParameterTypeSecureString}
}

// clock is a settable clock for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time            { return c.t }
func (c *clock) add(d time.Duration)       { c.t = c.t.Add(d) }
func noJitter(time.Duration) time.Duration { return 0 }

func newStore(f *fakeSSM, c *clock, log *slog.Logger) *webhook.SSMStore {
	return &webhook.SSMStore{Client: f, Path: "/flagline/prod/sources/", TTL: 5 * time.Minute, Now: c.now, Jitter: noJitter, Log: log}
}

func TestSSMStore(t *testing.T) {
	second := webhook.NewSecret()
	f := &fakeSSM{params: []webhook.Parameter{
		secure("/flagline/prod/sources/demo", secretA+","+second),
		secure("/flagline/prod/sources/ngo", second),
		secure("/flagline/prod/sources/ngo/nested", second),
		secure("/flagline/staging/sources/other", second),
	}}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	got, err := s.Secrets(ctx, "demo")
	if err != nil || got.Len() != 2 {
		t.Fatalf("demo: %d secrets, %v", got.Len(), err)
	}
	if _, err := s.Secrets(ctx, "ngo"); err != nil || f.calls != 1 {
		t.Fatalf("second lookup: %v, %d SSM calls (want cached)", err, f.calls)
	}
	for _, unknown := range []string{"other", "nested", "ngo/nested"} {
		if _, err := s.Secrets(ctx, unknown); !errors.Is(err, webhook.ErrUnknownSource) {
			t.Fatalf("%s: %v", unknown, err)
		}
	}
}

// One unusable parameter is logged by name and skipped; every other source
// keeps working. A source whose own parameter is unusable answers
// ErrSecretsUnavailable (503), not "unknown source".
func TestSSMStoreSkipsBadParameter(t *testing.T) {
	good := webhook.NewSecret()
	unprefixed := strings.TrimPrefix(webhook.NewSecret(), "whsec_") // the reference library would accept it
	f := &fakeSSM{params: []webhook.Parameter{
		secure("/flagline/prod/sources/demo", good),
		secure("/flagline/prod/sources/NGO-Desk", good),
		secure("/flagline/prod/sources/raw-base64", unprefixed),
		secure("/flagline/prod/sources/half-rotated", good+" whsec_tooshort"),
		{Name: "/flagline/prod/sources/plain", Value: good, Type: "String"},
		secure("/flagline/prod/sources/zeta", good),
	}}
	var logs bytes.Buffer
	s := newStore(f, &clock{time.Unix(1_800_000_000, 0)}, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx := context.Background()
	for _, ok := range []string{"demo", "zeta"} {
		if got, err := s.Secrets(ctx, ok); err != nil || got.Len() != 1 {
			t.Errorf("%s: %d secrets, %v (a bad parameter elsewhere must not matter)", ok, got.Len(), err)
		}
	}
	for _, broken := range []string{"raw-base64", "half-rotated", "plain"} {
		if _, err := s.Secrets(ctx, broken); !errors.Is(err, webhook.ErrSecretsUnavailable) {
			t.Errorf("%s: %v, want ErrSecretsUnavailable", broken, err)
		}
	}
	if _, err := s.Secrets(ctx, "ngo-desk"); !errors.Is(err, webhook.ErrUnknownSource) {
		t.Errorf("ngo-desk: %v", err)
	}
	for _, name := range []string{"NGO-Desk", "raw-base64", "half-rotated", "plain"} {
		if !strings.Contains(logs.String(), "/flagline/prod/sources/"+name+`"`) {
			t.Errorf("no log line names %s:\n%s", name, logs.String())
		}
	}
	for _, secret := range []string{good[6:20], unprefixed[:12], "tooshort"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log reveals a secret value:\n%s", logs.String())
		}
	}
}

// While SSM fails, the secrets already held are served and SSM is asked
// again only after a growing backoff capped at the refresh period: a
// request a second for ten minutes makes a dozen calls, not 600.
func TestSSMStoreBacksOffWhileSSMFails(t *testing.T) {
	f := &fakeSSM{params: []webhook.Parameter{secure("/flagline/prod/sources/demo", secretA)}}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	if _, err := s.Secrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	c.add(5 * time.Minute)
	f.err = errors.New("ThrottlingException: Rate exceeded")
	for i := range 600 {
		if _, err := s.Secrets(ctx, "demo"); err != nil {
			t.Fatalf("request %d during the outage: %v (the secrets held must be served)", i, err)
		}
		c.add(time.Second)
	}
	// Backoffs of 0.5, 1, 2, … 128, then 150 s (half the 5-minute cap, with
	// the jitter at its least): 9 calls in the first 255 s, then one every
	// 150 s.
	if calls := f.calls - 1; calls > 12 {
		t.Fatalf("%d SSM calls for 600 requests during the outage; want at most 12", calls)
	}
	// SSM is back: the next read after the backoff succeeds, and then the
	// store reads once a period again.
	f.err = nil
	c.add(5 * time.Minute)
	before := f.calls
	for range 10 {
		if _, err := s.Secrets(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls != before+1 {
		t.Fatalf("%d calls after recovery, want 1", f.calls-before)
	}
}

// A cold store whose first read fails answers ErrSecretsUnavailable and
// backs off too: the requests of a cold start during an outage do not each
// call SSM.
func TestSSMStoreColdStartBacksOff(t *testing.T) {
	f := &fakeSSM{err: errors.New("AccessDeniedException")}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	for range 100 {
		if _, err := s.Secrets(context.Background(), "demo"); !errors.Is(err, webhook.ErrSecretsUnavailable) {
			t.Fatalf("cold store with failing SSM: %v", err)
		}
		c.add(100 * time.Millisecond)
	}
	if f.calls > 5 {
		t.Fatalf("%d SSM calls in 10 s of a failing cold start; want at most 5", f.calls)
	}
}

// A source deleted from SSM stops being accepted once the refresh period
// has passed.
func TestSSMStoreRemovalTakesEffectWithinPeriod(t *testing.T) {
	f := &fakeSSM{params: []webhook.Parameter{
		secure("/flagline/prod/sources/demo", secretA),
		secure("/flagline/prod/sources/revoked", secretA),
	}}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	if _, err := s.Secrets(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	f.params = f.params[:1]
	c.add(5 * time.Minute)
	if _, err := s.Secrets(ctx, "revoked"); !errors.Is(err, webhook.ErrUnknownSource) {
		t.Fatalf("revoked source one period after its removal: %v, want ErrUnknownSource", err)
	}
	if _, err := s.Secrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
}

// Secrets read more than MaxStale (3 periods) ago are not served while SSM
// keeps failing: a removed source cannot stay accepted for ever.
func TestSSMStoreFailsClosedWhenStale(t *testing.T) {
	f := &fakeSSM{params: []webhook.Parameter{secure("/flagline/prod/sources/demo", secretA)}}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	if _, err := s.Secrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	f.err = errors.New("ThrottlingException: Rate exceeded")
	c.add(15 * time.Minute)
	if _, err := s.Secrets(ctx, "demo"); err != nil {
		t.Fatalf("at the staleness limit: %v", err)
	}
	c.add(time.Second)
	_, err := s.Secrets(ctx, "demo")
	if !errors.Is(err, webhook.ErrSecretsUnavailable) {
		t.Fatalf("past the staleness limit: %v, want ErrSecretsUnavailable", err)
	}
	f.err = nil
	c.add(5 * time.Minute) // past any backoff
	if _, err := s.Secrets(ctx, "demo"); err != nil {
		t.Fatalf("after SSM recovers: %v", err)
	}
}

// Every page is read, whatever its size, with MaxResults within the API's
// range and WithDecryption; a read that fails on a later page keeps every
// source held rather than the first pages only.
func TestSSMStorePagination(t *testing.T) {
	var params []webhook.Parameter
	for i := range 25 {
		params = append(params, secure(fmt.Sprintf("/flagline/prod/sources/src-%02d", i), secretA))
	}
	f := &fakeSSM{params: params, emptyPages: true}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	for i := range 25 {
		if _, err := s.Secrets(ctx, fmt.Sprintf("src-%02d", i)); err != nil {
			t.Fatalf("src-%02d: %v", i, err)
		}
	}
	if f.calls < 6 {
		t.Fatalf("%d calls for 25 parameters with empty pages between", f.calls)
	}
	f.params = params[:5]
	f.failPage = 2
	c.add(5 * time.Minute)
	if _, err := s.Secrets(ctx, "src-24"); err != nil {
		t.Fatalf("a failed partial read dropped src-24: %v", err)
	}
}

func TestStoreFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	newSSM := func() webhook.ParameterReader { return &fakeSSM{} }
	if s, err := webhook.StoreFromEnv(env(map[string]string{webhook.EnvSecrets: `{"demo":["` + secretA + `"]}`}), newSSM, nil); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(webhook.Sources); !ok {
		t.Errorf("inline secrets gave %T", s)
	}
	if s, err := webhook.StoreFromEnv(env(map[string]string{webhook.EnvSecretsPath: "/flagline/prod/sources"}), newSSM, nil); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(*webhook.SSMStore); !ok {
		t.Errorf("SSM path gave %T", s)
	}
	if _, err := webhook.StoreFromEnv(env(nil), newSSM, nil); err == nil {
		t.Error("no configuration accepted")
	}
	if _, err := webhook.StoreFromEnv(env(map[string]string{webhook.EnvSecretsPath: "relative"}), newSSM, nil); err == nil {
		t.Error("relative SSM path accepted")
	}
}

// ValidSourceName accepts exactly what ^[a-z0-9][a-z0-9_-]{0,62}$ matches.
func TestValidSourceName(t *testing.T) {
	ref := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	names := []string{"", "a", "demo", "ngo-desk", "ngo_desk", "0", "-a", "_a", "A", "NGO-Desk", "a b", "a/b", "a.b", "é",
		"a\x00", strings.Repeat("a", 63), strings.Repeat("a", 64), "a-", "a_", "9z-_"}
	for c := 0; c < 256; c++ {
		names = append(names, "a"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, n := range names {
		if got, want := webhook.ValidSourceName(n), ref.MatchString(n); got != want {
			t.Errorf("ValidSourceName(%q) = %v, want %v", n, got, want)
		}
	}
}
