package webhook_test

// The Standard Webhooks reference library is the specification of Verify and
// Sign: these tests sign with the library and verify with ours, sign with ours
// and verify with the library, and check that both verifiers give the same
// verdict on random and fuzzed deliveries.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/shared/webhook"
)

func TestHeaderNamesAreTheLibrarys(t *testing.T) {
	if webhook.HeaderID != standardwebhooks.HeaderWebhookID ||
		webhook.HeaderTimestamp != standardwebhooks.HeaderWebhookTimestamp ||
		webhook.HeaderSignature != standardwebhooks.HeaderWebhookSignature {
		t.Fatal("header names differ from the reference library's")
	}
}

// pair is one secret as ours and as the library's.
type pair struct {
	ours webhook.Secret
	lib  *standardwebhooks.Webhook
}

func newPair(t testing.TB, key []byte) pair {
	t.Helper()
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(key)
	ours, err := webhook.ParseSecret(whsec)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		t.Fatal(err)
	}
	return pair{ours, lib}
}

// referenceVerify is Verify as it was written over the library: the same
// pre-checks, then the library's Verify for each secret, its errors mapped
// onto ours.
func referenceVerify(secrets []*standardwebhooks.Webhook, body []byte, h webhook.Headers) error {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return webhook.ErrMissing
	}
	if len(h.ID) > webhook.MaxIDLength || strings.IndexFunc(h.ID, func(r rune) bool { return r <= 0x20 || r >= 0x7f }) >= 0 {
		return webhook.ErrMalformed
	}
	hdr := http.Header{
		"Webhook-Id":        {h.ID},
		"Webhook-Timestamp": {h.Timestamp},
		"Webhook-Signature": {h.Signature},
	}
	for _, s := range secrets {
		err := s.Verify(body, hdr)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
			return webhook.ErrStale
		case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
			return webhook.ErrMalformed
		}
	}
	return webhook.ErrSignature
}

var verdicts = []error{webhook.ErrMissing, webhook.ErrMalformed, webhook.ErrStale, webhook.ErrSignature}

// verdict names the sentinel err wraps, "ok" for nil.
func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	for _, v := range verdicts {
		if errors.Is(err, v) {
			return v.Error()
		}
	}
	return "unexpected error: " + err.Error()
}

// nearEdge reports whether a timestamp header is so close to the edge of the
// tolerance that the two verifiers, reading the clock at different moments,
// could disagree.
func nearEdge(ts string) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := time.Since(time.Unix(n, 0)).Abs()
	return d > 5*time.Minute-3*time.Second && d < 5*time.Minute+3*time.Second
}

func checkSame(t *testing.T, pairs []pair, body []byte, h webhook.Headers) {
	t.Helper()
	if nearEdge(h.Timestamp) {
		return
	}
	ours := make([]webhook.Secret, len(pairs))
	lib := make([]*standardwebhooks.Webhook, len(pairs))
	for i, p := range pairs {
		ours[i], lib[i] = p.ours, p.lib
	}
	got, want := verdict(webhook.Verify(ours, body, h)), verdict(referenceVerify(lib, body, h))
	if got != want {
		t.Fatalf("%d secrets, id=%q ts=%q sig=%q body=%q:\nours:      %s\nreference: %s", len(pairs), h.ID, h.Timestamp, h.Signature, body, got, want)
	}
	// SourceSecrets answers the same wherever its hint points: set it to
	// each secret in turn with a delivery that secret signed.
	for i, s := range ours {
		src := webhook.NewSourceSecrets(ours...)
		at := time.Now()
		warm := webhook.Headers{ID: "msg_warm", Timestamp: strconv.FormatInt(at.Unix(), 10), Signature: s.Sign("msg_warm", at, nil)}
		if err := src.Verify(nil, warm); err != nil {
			t.Fatalf("secret #%d: %v", i+1, err)
		}
		if got := verdict(src.Verify(body, h)); got != want {
			t.Fatalf("%d secrets, hint at #%d, id=%q ts=%q sig=%q body=%q:\nsource:    %s\nreference: %s", len(pairs), i+1, h.ID, h.Timestamp, h.Signature, body, got, want)
		}
	}
}

func TestSignMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		p := newPair(t, randBytes(r, 24+r.IntN(41)))
		id := randID(r, 1+r.IntN(200)) // Sign takes ids longer than Verify accepts
		at := time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9))
		body := randBytes(r, r.IntN(3000))
		want, err := p.lib.Sign(id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.ours.Sign(id, at, body); got != want {
			t.Fatalf("Sign(%q, %v, %q) = %q, library %q", id, at, body, got, want)
		}
	}
}

func TestVerifyMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	accepted := 0
	for range n {
		pairs := make([]pair, r.IntN(4)) // 0 to 3 secrets
		for i := range pairs {
			pairs[i] = newPair(t, randBytes(r, 24+r.IntN(41)))
		}
		body := randBytes(r, r.IntN(1500))
		h := randHeaders(r, pairs, body)
		checkSame(t, pairs, body, h)

		// Library-signed deliveries verify with ours.
		if len(pairs) > 0 && !nearEdge(h.Timestamp) {
			ours := make([]webhook.Secret, len(pairs))
			for i, p := range pairs {
				ours[i] = p.ours
			}
			if webhook.Verify(ours, body, h) == nil {
				accepted++
			}
		}
	}
	if accepted < n/5 {
		t.Errorf("only %d of %d random deliveries were valid; the generator should make more", accepted, n)
	}
}

func TestOursVerifiesWithReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		p := newPair(t, randBytes(r, 24+r.IntN(41)))
		id := randID(r, 1+r.IntN(webhook.MaxIDLength))
		at := time.Now().Add(time.Duration(r.Int64N(int64(8*time.Minute))) - 4*time.Minute)
		body := randBytes(r, r.IntN(3000))
		hdr := http.Header{}
		hdr.Set(standardwebhooks.HeaderWebhookID, id)
		hdr.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
		hdr.Set(standardwebhooks.HeaderWebhookSignature, p.ours.Sign(id, at, body))
		if err := p.lib.Verify(body, hdr); err != nil {
			t.Fatalf("library refused our signature: %v", err)
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randID(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x21 + r.IntN(0x7f-0x21))
	}
	return string(b)
}

// randHeaders makes headers that are mostly valid for one of pairs, with
// every kind of damage the verifiers must agree on.
func randHeaders(r *rand.Rand, pairs []pair, body []byte) webhook.Headers {
	now := time.Now()
	var h webhook.Headers
	switch k := r.IntN(20); {
	case k == 0:
		h.ID = ""
	case k == 1:
		h.ID = randID(r, webhook.MaxIDLength+1+r.IntN(10))
	case k == 2:
		h.ID = "msg " + randID(r, 5)
	case k == 3:
		h.ID = "msg\u00e9"
	default:
		h.ID = randID(r, 1+r.IntN(webhook.MaxIDLength))
	}
	at := now.Add(time.Duration(r.Int64N(int64(9*time.Minute))) - 4*time.Minute - 30*time.Second)
	stale := 5*time.Minute + 5*time.Second + time.Duration(r.Int64N(int64(2*time.Minute)))
	if r.IntN(2) == 0 {
		stale = time.Duration(r.Int64N(1<<62)) + time.Hour
	}
	switch k := r.IntN(10); {
	case k == 0:
		at = now.Add(-stale)
	case k == 1:
		at = now.Add(stale)
	}
	h.Timestamp = strconv.FormatInt(at.Unix(), 10)
	switch k := r.IntN(30); {
	case k == 0:
		h.Timestamp = ""
	case k == 1:
		h.Timestamp = "+" + h.Timestamp // ParseInt accepts a sign; the signed content has none
	case k == 2:
		h.Timestamp = "00" + h.Timestamp
	case k == 3:
		h.Timestamp = []string{"1.5e9", "0x6746f000", " 1", "1 ", "-", "99999999999999999999", "-99999999999999999999", "١٧٠٠"}[r.IntN(8)]
	case k == 4:
		h.Timestamp = strconv.FormatInt(at.UnixMilli(), 10)
	}

	good := func() string {
		if len(pairs) == 0 {
			return "v1," + base64.StdEncoding.EncodeToString(randBytes(r, 32))
		}
		sig, _ := pairs[r.IntN(len(pairs))].lib.Sign(h.ID, at, body)
		return sig
	}
	var entries []string
	for range 1 + r.IntN(4) {
		var e string
		switch k := r.IntN(14); k {
		case 0:
			e = "v1," + base64.StdEncoding.EncodeToString(randBytes(r, 32)) // wrong
		case 1:
			e = "v2" + good()[2:] // other version
		case 2:
			e = good()[3:] // no version
		case 3:
			e = good() + ",extra" // the library compares the second field only
		case 4:
			e = ""
		case 5:
			e = "v1"
		case 6:
			e = "v1,"
		case 7:
			g := good()
			e = g[:len(g)-1] // cut short
		case 8:
			g := []byte(good())
			i := 3 + r.IntN(len(g)-3)
			g[i] ^= 1 << r.IntN(7) // one bit off
			e = string(g)
		case 9:
			e = strings.Replace(good(), "v1,", "V1,", 1)
		case 10:
			e = strings.TrimRight(good(), "=") // unpadded
		default:
			e = good()
		}
		entries = append(entries, e)
	}
	sep := " "
	if r.IntN(20) == 0 {
		sep = []string{"  ", ",", "\t"}[r.IntN(3)]
	}
	h.Signature = strings.Join(entries, sep)
	return h
}

// FuzzVerifyMatchesReference checks that Verify and the reference library
// give the same verdict. key sets the secret (stretched or cut to 24–64
// bytes); flags bit 0 adds the library's own signature of the delivery,
// bit 1 puts a second secret first, as during a rotation.
func FuzzVerifyMatchesReference(f *testing.F) {
	now := strconv.FormatInt(time.Now().Unix(), 10)
	f.Add([]byte("0123456789abcdefghijklmn"), "msg_1", now, "", []byte("{}"), uint8(1))
	f.Add([]byte("0123456789abcdefghijklmn"), "msg_1", now, "v1,AAAA v2,zzz", []byte("{}"), uint8(3))
	f.Add([]byte("k"), "msg_1", "+"+now, "v1,,,, v1", []byte("x"), uint8(1))
	f.Add([]byte("k"), "msg 1", now, "v1,x", []byte(nil), uint8(0))
	f.Add([]byte("k"), "m", "1.5e9", "v1,x", []byte(nil), uint8(2))
	f.Add([]byte("k"), "m", "100", "v1,x", []byte(nil), uint8(1))
	f.Fuzz(func(t *testing.T, key []byte, id, ts, sig string, body []byte, flags uint8) {
		for len(key) < 24 {
			key = append(key, byte(len(key)))
		}
		key = key[:min(len(key), 64)]
		pairs := []pair{newPair(t, key)}
		if flags&2 != 0 {
			other := append([]byte(nil), key...)
			other[0] ^= 0xff
			pairs = append([]pair{newPair(t, other)}, pairs...)
		}
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && flags&1 != 0 {
			s, _ := pairs[len(pairs)-1].lib.Sign(id, time.Unix(n, 0), body)
			sig = fmt.Sprintf("%s %s", sig, s)
		}
		checkSame(t, pairs, body, webhook.Headers{ID: id, Timestamp: ts, Signature: sig})
	})
}

const benchBody = `{
  "url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
  "category": "smuggling_offer",
  "explanation": "Post offers boat crossings from Libya to Lampedusa for 2,500 EUR, contact by WhatsApp.",
  "notifier": {"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"},
  "good_faith": true,
  "countries": ["IT", "mt"],
  "language": "ar",
  "observed_at": "2026-11-27T08:30:00Z",
  "evidence": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "archive_url": "https://archive.example.org/abc"}
}`

// BenchmarkVerify is the signature check of one intake delivery: with one
// secret, and with two during a rotation where the second (new) one matches.
// The library sub-benchmarks are the reference library doing the same; the
// source sub-benchmarks are SourceSecrets.Verify, the intake's call, over
// many deliveries of one source (the hint tries the matching secret first).
func BenchmarkVerify(b *testing.B) {
	old, cur := newPair(b, []byte("old-secret-0123456789abcdef")), newPair(b, []byte("new-secret-0123456789abcdef"))
	body := []byte(benchBody)
	at := time.Now()
	h := webhook.Headers{ID: "msg_bench", Timestamp: strconv.FormatInt(at.Unix(), 10), Signature: cur.ours.Sign("msg_bench", at, body)}
	for _, bc := range []struct {
		name  string
		pairs []pair
	}{{"secrets=1", []pair{cur}}, {"secrets=2", []pair{old, cur}}} {
		ours := make([]webhook.Secret, len(bc.pairs))
		lib := make([]*standardwebhooks.Webhook, len(bc.pairs))
		for i, p := range bc.pairs {
			ours[i], lib[i] = p.ours, p.lib
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := webhook.Verify(ours, body, h); err != nil {
					b.Fatal(err)
				}
			}
		})
		src := webhook.NewSourceSecrets(ours...)
		b.Run("source/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := src.Verify(body, h); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("library/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := referenceVerify(lib, body, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
