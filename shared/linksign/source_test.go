package linksign_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/webhook"
)

type fakeSSM struct {
	param *webhook.Parameter
	err   error
	calls int
	in    *webhook.GetParameterInput
}

func (f *fakeSSM) GetParameter(_ context.Context, in *webhook.GetParameterInput) (*webhook.GetParameterOutput, error) {
	f.calls++
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	return &webhook.GetParameterOutput{Parameter: f.param}, nil
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestKeyFromEnv(t *testing.T) {
	ctx := context.Background()
	inline := linksign.NewKey()
	noSSM := func() linksign.ParameterGetter { t.Fatal("SSM client made for an inline key"); return nil }

	src, err := linksign.KeyFromEnv(env(map[string]string{linksign.EnvKey: inline, linksign.EnvKeyParameter: "/flagline/prod/link-key"}), noSSM)
	if err != nil {
		t.Fatal(err)
	}
	k, err := src.LinkKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := linksign.ParseKey(inline)
	l := link()
	if err := want.Verify(l, k.Sign(l), now); err != nil {
		t.Errorf("the inline key is not the one used: %v", err)
	}

	for name, vars := range map[string]map[string]string{
		"neither":            {},
		"both empty":         {linksign.EnvKey: "", linksign.EnvKeyParameter: ""},
		"bad inline":         {linksign.EnvKey: "c2hvcnQ="},
		"relative parameter": {linksign.EnvKeyParameter: "flagline/prod/link-key"},
	} {
		if _, err := linksign.KeyFromEnv(env(vars), noSSM); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

// The key in SSM must be a SecureString, read decrypted; a String parameter
// (stored and shown in clear) or a malformed value signs nothing.
func TestSSMKey(t *testing.T) {
	ctx := context.Background()
	good := linksign.NewKey()
	for _, tc := range []struct {
		name  string
		param *webhook.Parameter
		err   error
		ok    bool
	}{
		{"secure string", &webhook.Parameter{Name: "/k", Type: webhook.ParameterTypeSecureString, Value: good}, nil, true},
		{"plain string", &webhook.Parameter{Name: "/k", Type: "String", Value: good}, nil, false},
		{"malformed", &webhook.Parameter{Name: "/k", Type: webhook.ParameterTypeSecureString, Value: "short"}, nil, false},
		{"missing", nil, nil, false},
		{"unreachable", nil, errors.New("dial tcp: connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{param: tc.param, err: tc.err}
			src, err := linksign.KeyFromEnv(env(map[string]string{linksign.EnvKeyParameter: "/flagline/prod/link-key"}),
				func() linksign.ParameterGetter { return f })
			if err != nil {
				t.Fatal(err)
			}
			k, err := src.LinkKey(ctx)
			if (err == nil) != tc.ok {
				t.Fatalf("LinkKey: %v, want ok=%v", err, tc.ok)
			}
			if f.in == nil || f.in.Name != "/flagline/prod/link-key" || !f.in.WithDecryption {
				t.Errorf("read %+v", f.in)
			}
			if err != nil && strings.Contains(err.Error(), good) {
				t.Errorf("the error shows the key: %v", err)
			}
			if tc.ok && k.IsZero() {
				t.Error("zero key")
			}
		})
	}
}

// The key is read once and then held until the refresh period passes.
func TestSSMKeyCached(t *testing.T) {
	ctx := context.Background()
	clock := now
	f := &fakeSSM{param: &webhook.Parameter{Name: "/k", Type: webhook.ParameterTypeSecureString, Value: linksign.NewKey()}}
	s := &linksign.SSMKey{Client: f, Name: "/k", TTL: time.Minute, Now: func() time.Time { return clock }}
	for range 5 {
		if _, err := s.LinkKey(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls != 1 {
		t.Errorf("%d reads within the period, want 1", f.calls)
	}
	clock = clock.Add(2 * time.Minute)
	if _, err := s.LinkKey(ctx); err != nil {
		t.Fatal(err)
	}
	if f.calls != 2 {
		t.Errorf("%d reads after the period, want 2", f.calls)
	}
}

func TestZeroKeyIsNoSource(t *testing.T) {
	var zero linksign.Key
	if _, err := zero.LinkKey(context.Background()); err == nil {
		t.Error("the zero key is a source")
	}
}
