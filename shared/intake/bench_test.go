package intake_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// itemBuilder stands in for DynamoDB: it builds the item a real Put would
// send, so the benchmark covers everything intake does but the network.
type itemBuilder struct{ store reportstore.Store }

func (b *itemBuilder) Put(_ context.Context, d reportstore.Delivery, r *report.Report) (reportstore.Receipt, error) {
	item := b.store.Item(d, r, sha256.Sum256(d.Body))
	if len(item) == 0 {
		panic("empty item")
	}
	return reportstore.Receipt{ReportID: reportstore.ReportID(d.Source, d.ID), CaseID: r.Link.CaseID, CanonicalURL: r.Link.Canonical}, nil
}

// benchSecrets are the two cases the benchmarks cover: the fixture's "demo"
// source in the middle of a rotation, and a source with one secret.
//
// secrets=2 stores the old and the new secret in that order and every
// delivery is signed with the new one, the secret not tried first. The
// benchmark runs many deliveries of that one source, as an execution
// environment serving one sender does, so it measures the steady state the
// per-source hint (webhook.SourceSecrets) is for: two HMACs for the first
// delivery, then one each.
var benchSecrets = []struct {
	name    string
	secrets webhook.Store
}{
	{"secrets=2", sources},
	{"secrets=1", webhook.Sources{"demo": webhook.NewSourceSecrets(must(webhook.ParseSecret(newSecret)))}},
}

// BenchmarkHotPath is one report through the handler: size and type checks,
// signature verification, strict decode, validation, canonicalisation, the
// DynamoDB item and the JSON answer.
func BenchmarkHotPath(b *testing.B) {
	for _, bs := range benchSecrets {
		b.Run(bs.name, func(b *testing.B) {
			h, _ := newHandler()
			h.Secrets = bs.secrets
			h.Reports = &itemBuilder{store: reportstore.Store{Table: "flagline", NotifierKey: notifierKey}}
			ev := delivery{id: "msg_bench", body: validBody}.event()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(validBody)))
			defer cpuPerOp(b)()
			for b.Loop() {
				resp, _ := h.Handle(ctx, ev)
				if resp.StatusCode != 202 {
					b.Fatal(resp.Body)
				}
			}
		})
	}
}

// BenchmarkFloor is the least any intake must do with the same body: one
// HMAC-SHA256 over "id.timestamp.body" and one json.Unmarshal.
func BenchmarkFloor(b *testing.B) {
	ev := delivery{id: "msg_bench", body: validBody}.event()
	key, _ := base64.StdEncoding.DecodeString(newSecret[len("whsec_"):])
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := []byte(ev.Body)
	b.ReportAllocs()
	b.SetBytes(int64(len(validBody)))
	defer cpuPerOp(b)()
	for b.Loop() {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(ev.Headers["webhook-id"]))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		_ = mac.Sum(nil)
		var v report.Body
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCore is the hot path without the handler's logging and JSON
// answer: verify, decode, validate and canonicalise, build the item.
func BenchmarkCore(b *testing.B) {
	for _, bs := range benchSecrets {
		b.Run(bs.name, func(b *testing.B) {
			ev := delivery{id: "msg_bench", body: validBody}.event()
			secrets, _ := bs.secrets.Secrets(context.Background(), "demo")
			store := reportstore.Store{Table: "flagline", NotifierKey: notifierKey}
			hdr := webhook.Headers{ID: ev.Headers["webhook-id"], Timestamp: ev.Headers["webhook-timestamp"], Signature: ev.Headers["webhook-signature"]}
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				body := []byte(ev.Body)
				if err := secrets.Verify(body, hdr); err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				r, err := report.Decode(body, now)
				if err != nil {
					b.Fatal(err)
				}
				store.Item(reportstore.Delivery{Source: "demo", ID: hdr.ID, Body: body, ReceivedAt: now}, r, sha256.Sum256(body))
			}
		})
	}
}
