package webhook_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/webhook"
)

const secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func signed(t testing.TB, secret, id string, at time.Time, body string) webhook.Headers {
	s, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return webhook.Headers{ID: id, Timestamp: strconv.FormatInt(at.Unix(), 10), Signature: s.Sign(id, at, []byte(body))}
}

func TestVerify(t *testing.T) {
	secretB := webhook.NewSecret()
	a, _ := webhook.ParseSecret(secretA)
	b, _ := webhook.ParseSecret(secretB)
	body := `{"url":"https://t.me/x/1"}`
	now := time.Now()
	good := signed(t, secretA, "msg_1", now, body)

	cases := []struct {
		name    string
		secrets []webhook.Secret
		body    string
		h       webhook.Headers
		want    error
	}{
		{"valid", []webhook.Secret{a}, body, good, nil},
		{"second secret of a rotation", []webhook.Secret{b, a}, body, good, nil},
		{"one of several signatures", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: good.Timestamp, Signature: "v1,AAAA " + good.Signature + " v2,zzz"}, nil},
		{"4 minutes old", []webhook.Secret{a}, body, signed(t, secretA, "msg_1", now.Add(-4*time.Minute), body), nil},
		{"6 minutes old", []webhook.Secret{a}, body, signed(t, secretA, "msg_1", now.Add(-6*time.Minute), body), webhook.ErrStale},
		{"6 minutes ahead", []webhook.Secret{a}, body, signed(t, secretA, "msg_1", now.Add(6*time.Minute), body), webhook.ErrStale},
		{"wrong secret", []webhook.Secret{b}, body, good, webhook.ErrSignature},
		{"body changed", []webhook.Secret{a}, body + " ", good, webhook.ErrSignature},
		{"id changed", []webhook.Secret{a}, body, webhook.Headers{ID: "msg_2", Timestamp: good.Timestamp, Signature: good.Signature}, webhook.ErrSignature},
		{"timestamp changed", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: strconv.FormatInt(now.Unix()-1, 10), Signature: good.Signature}, webhook.ErrSignature},
		{"signature without version", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: good.Timestamp, Signature: strings.TrimPrefix(good.Signature, "v1,")}, webhook.ErrSignature},
		{"other version", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: good.Timestamp, Signature: "v1a" + strings.TrimPrefix(good.Signature, "v1")}, webhook.ErrSignature},
		{"no id", []webhook.Secret{a}, body, webhook.Headers{Timestamp: good.Timestamp, Signature: good.Signature}, webhook.ErrMissing},
		{"no timestamp", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Signature: good.Signature}, webhook.ErrMissing},
		{"no signature", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: good.Timestamp}, webhook.ErrMissing},
		{"timestamp in milliseconds text", []webhook.Secret{a}, body, webhook.Headers{ID: good.ID, Timestamp: "1.5e9", Signature: good.Signature}, webhook.ErrMalformed},
		{"id with a space", []webhook.Secret{a}, body, webhook.Headers{ID: "msg 1", Timestamp: good.Timestamp, Signature: good.Signature}, webhook.ErrMalformed},
		{"id too long", []webhook.Secret{a}, body, webhook.Headers{ID: strings.Repeat("x", 129), Timestamp: good.Timestamp, Signature: good.Signature}, webhook.ErrMalformed},
		{"no secrets", nil, body, good, webhook.ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secrets, []byte(tc.body), tc.h)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	s, err := webhook.ParseSources(`{"demo":["` + secretA + `"],"ngo-1":["` + webhook.NewSecret() + `","` + webhook.NewSecret() + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if s["demo"].Len() != 1 || s["ngo-1"].Len() != 2 {
		t.Fatalf("sources = %v", s)
	}
	if _, err := s.Secrets(context.Background(), "nobody"); !errors.Is(err, webhook.ErrUnknownSource) {
		t.Errorf("unknown source: %v", err)
	}
	for _, bad := range []string{
		`not json`, `{"Demo":["` + secretA + `"]}`, `{"demo":[]}`, `{"demo":["secret"]}`,
		`{"demo":["whsec_!!!"]}`, `{"demo":["whsec_c2hvcnQ="]}`, `{"a/b":["` + secretA + `"]}`,
	} {
		if _, err := webhook.ParseSources(bad); err == nil {
			t.Errorf("ParseSources(%s) accepted", bad)
		} else if strings.Contains(err.Error(), "MfKQ9r8") {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Now()
	good := signed(f, secretA, "msg_1", now, "{}")
	f.Add("msg_1", good.Timestamp, good.Signature, []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("msg_1", "-99999999999999999999", "v1,,,, v1", []byte("x"))
	s, _ := webhook.ParseSecret(secretA)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := webhook.Verify([]webhook.Secret{s}, body, webhook.Headers{ID: id, Timestamp: ts, Signature: sig})
		if err == nil {
			// Accepted only if the signature really is ours over these bytes.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || !strings.Contains(sig, s.Sign(id, time.Unix(n, 0), body)) {
				t.Fatalf("accepted a delivery it did not sign: id=%q ts=%q sig=%q", id, ts, sig)
			}
		}
	})
}
