//go:build integration

package runtimetest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/streamimage"
)

var writeDrafts = flag.Bool("write-drafts", false, "rewrite testdata/aggregate-*.json from the reports in drafts_test.go")

// The drafts share the stream and shard of events/alert-*.json.
const (
	draftStreamARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/flagline-Table-1R8Y0ZQ5XK2M4/stream/2026-11-20T09:00:00.000"
	draftShard     = "shardId-00000001795400000000-8a3c1f2e"
)

// draftReport is one delivery as ingest stored it, and where its insert
// sits in the stream.
type draftReport struct {
	source, id, body string
	received         string // RFC 3339
	seq              string
}

// draftReports: the first is events/ingest-valid.json's delivery; a second
// report about the same post from another source and notifier; a threat to
// life about another post, with no country.
var draftReports = []draftReport{
	{
		source: "demo", id: "sub_01JDX8Q6R4M2ZB7K9N3TQ5V1WA", received: "2026-11-27T08:30:00Z", seq: "4421584400000000017450438850",
		body: `{"url":"https://t.me/crossings_now/4821?utm_source=share","category":"smuggling_offer","explanation":"Channel post offers places on a boat from Sfax to Lampedusa for 1,800 EUR per person, departures every Friday, contact by WhatsApp.","notifier":{"name":"Monitoring Desk","email":"desk@monitor.example.org"},"good_faith":true,"countries":["IT","MT"],"platform":"telegram","language":"ar","observed_at":"2026-11-26T21:14:00Z","evidence":{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","archive_url":"https://archive.example.org/t.me/crossings_now/4821"}}`,
	},
	{
		source: "ngo-portal", id: "np-2026-11-27-0042", received: "2026-11-27T08:30:21.482Z", seq: "4421584400000000017450438901",
		body: `{"url":"https://t.me/crossings_now/4821","category":"transport","explanation":"Same channel now also offers minibus pick-ups in Sfax to the departure beach.","notifier":{"name":"Hotline Volunteer","email":"volunteer@hotline.example.net"},"good_faith":true,"countries":["it"],"language":"fr"}`,
	},
	{
		source: "demo", id: "sub_01JDX9A2K7P4QW8N5T3RZ6M1BC", received: "2026-11-27T08:30:48.113Z", seq: "4421584400000000017450438977",
		body: `{"url":"https://www.facebook.com/groups/777/posts/1001/","category":"threat_to_life","explanation":"Post says an overloaded rubber boat with about 60 people left Zuwara tonight; organisers ask relatives to send money.","notifier":{"name":"Monitoring Desk","email":"desk@monitor.example.org"},"good_faith":true}`,
	},
}

// draftExpired is a report whose TTL ran out: its REMOVE is in the ignored
// batch.
var draftExpired = draftReport{
	source: "demo", id: "sub_01JB2K8F3N6QT1W9R4M7XZ5PDE", received: "2026-05-31T08:30:00Z", seq: "4421594000000000017452125499",
	body: `{"url":"https://x.com/passage/status/1850000000000000002","category":"smuggling_offer","explanation":"Account advertises crossings to Crete.","notifier":{"name":"Monitoring Desk","email":"desk@monitor.example.org"},"good_faith":true,"countries":["GR"]}`,
}

// draftNotifierKey keys the notifier pseudonyms of the reports the runtime
// tests store.
var draftNotifierKey = func() reportstore.NotifierKey {
	k, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		panic(err)
	}
	return k
}()

func (d draftReport) item(t *testing.T) map[string]types.AttributeValue {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, d.received)
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.Decode([]byte(d.body), at)
	if err != nil {
		t.Fatalf("draft report %s: %v", d.id, err)
	}
	s := &reportstore.Store{NotifierKey: draftNotifierKey}
	return s.Item(reportstore.Delivery{Source: d.source, ID: d.id, Body: []byte(d.body), ReceivedAt: at}, r, sha256.Sum256([]byte(d.body)))
}

func draftRecord(name events.DynamoDBOperationType, seq string, at time.Time, newImg, oldImg map[string]events.DynamoDBAttributeValue) events.DynamoDBEventRecord {
	img := newImg
	if img == nil {
		img = oldImg
	}
	id := sha256.Sum256([]byte(seq))
	size := 0
	for k, v := range img {
		b, _ := json.Marshal(v)
		size += len(k) + len(b)
	}
	return events.DynamoDBEventRecord{
		AWSRegion:      "eu-west-1",
		EventID:        hex.EncodeToString(id[:16]),
		EventName:      string(name),
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: draftStreamARN,
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: at.Truncate(time.Second)},
			Keys:                        map[string]events.DynamoDBAttributeValue{"pk": img["pk"], "sk": img["sk"]},
			NewImage:                    newImg,
			OldImage:                    oldImg,
			SequenceNumber:              seq,
			SizeBytes:                   int64(size),
			StreamViewType:              "NEW_AND_OLD_IMAGES",
		},
	}
}

func draftWindow(start string, records []events.DynamoDBEventRecord) events.DynamoDBTimeWindowEvent {
	s, _ := time.Parse(time.RFC3339, start)
	ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: records}}
	ev.Window = events.Window{Start: events.RFC3339EpochTime{Time: s}, End: events.RFC3339EpochTime{Time: s.Add(time.Minute)}}
	ev.State = map[string]string{}
	ev.ShardID = draftShard
	ev.EventSourceARN = draftStreamARN
	return ev
}

// TestWriteDrafts rewrites the aggregate sample event drafts:
//
//	go test -tags integration -run TestWriteDrafts ./internal/local/runtimetest/ -write-drafts
func TestWriteDrafts(t *testing.T) {
	if !*writeDrafts {
		t.Skip("run with -write-drafts to rewrite testdata/aggregate-*.json")
	}
	var inserts []events.DynamoDBEventRecord
	for _, d := range draftReports {
		at, _ := time.Parse(time.RFC3339Nano, d.received)
		inserts = append(inserts, draftRecord(events.DynamoDBOperationTypeInsert, d.seq, at, streamimage.FromSDK(d.item(t)), nil))
	}
	writeDraft(t, "aggregate-reports.json", draftWindow("2026-11-27T08:30:00Z", inserts))

	s := events.NewStringAttribute
	n := events.NewNumberAttribute
	ss := events.NewStringSetAttribute
	caseImage := func(alerted bool) map[string]events.DynamoDBAttributeValue {
		img := map[string]events.DynamoDBAttributeValue{
			"pk": s("CASE#ivul6jn4ozqe6gny"), "sk": s("CASE"), "type": s("case"), "case_id": s("ivul6jn4ozqe6gny"),
			"canonical_url": s("https://t.me/crossings_now/4821"), "platform": s("telegram"), "status": s("open"),
			"report_count": n("1"), "source_count": n("1"), "notifier_count": n("1"), "initial_countries": n("2"),
			"first_seen": s("2026-11-27T08:30:00Z"), "last_seen": s("2026-11-27T08:30:00Z"),
			"countries": ss([]string{"IT", "MT"}), "categories": ss([]string{"smuggling_offer"}), "sources": ss([]string{"demo"}),
			"level": n("1"), "severity": s("medium"), "version": n("1"),
			"applied": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{
				draftShard: events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{
					"seq": s("0000000000004421584400000000017450438850"), "at": n("1795768202"),
				}),
			}),
		}
		if alerted {
			img["alerted_level"] = n("1")
		}
		return img
	}
	alertedAt, _ := time.Parse(time.RFC3339Nano, "2026-11-27T08:30:03.418Z")
	event := map[string]events.DynamoDBAttributeValue{
		"pk": s("CASE#ivul6jn4ozqe6gny"), "sk": s("EVENT#2026-11-27T08:30:03.418000000Z#ivul6jn4ozqe6gny-1"),
		"type": s("case_event"), "event": s("alerted"), "case_id": s("ivul6jn4ozqe6gny"), "alert_id": s("ivul6jn4ozqe6gny-1"),
		"kind": s("new"), "level": n("1"), "countries": ss([]string{"IT", "MT"}), "actor": s("flagline-alert"),
		"at": s("2026-11-27T08:30:03.418Z"),
	}
	expiredAt, _ := time.Parse(time.RFC3339, "2026-11-27T08:30:17Z")
	ttl := draftRecord(events.DynamoDBOperationTypeRemove, draftExpired.seq, expiredAt, nil, streamimage.FromSDK(draftExpired.item(t)))
	ttl.UserIdentity = &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}
	ignored := []events.DynamoDBEventRecord{
		// alert recorded alerted_level on the case, and its timeline event.
		draftRecord(events.DynamoDBOperationTypeModify, "4421584500000000017450439130", alertedAt, caseImage(true), caseImage(false)),
		draftRecord(events.DynamoDBOperationTypeInsert, "4421584500000000017450439131", alertedAt, event, nil),
		// TTL removed an expired report.
		ttl,
	}
	writeDraft(t, "aggregate-ignored.json", draftWindow("2026-11-27T08:30:00Z", ignored))
}

func writeDraft(t *testing.T, name string, ev events.DynamoDBTimeWindowEvent) {
	t.Helper()
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
