package alert_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/casestore"
)

// publishWant is one Publish a sample event must cause.
type publishWant struct {
	alertID   string
	country   string // the country attribute
	severity  string
	category  string
	subject   string
	sms       string
	inEmail   []string
	alertedTo int // alerted_level recorded afterwards
}

// sampleEvents lists every events/alert-*.json with the publishes it must
// cause, in order; a file missing from this map fails the test.
var sampleEvents = map[string][]publishWant{
	// One publish per recipient: the harness's directory has a desk for
	// IT and one for GR (none for MT).
	"alert-new-case.json": {{
		alertID:   "ivul6jn4ozqe6gny-2-it-polpost",
		country:   `["IT","MT"]`,
		severity:  "medium",
		category:  "smuggling_offer",
		subject:   "[Flagline] New case IT,MT: smuggling_offer on t.me (1 report)",
		sms:       "Flagline L2 MEDIUM IT,MT: smuggling_offer t.me 1 report case ivul6jn4ozqe6gny",
		inEmail:   []string{"NEW CASE", "Why now: new case", "https://t.me/crossings_now/4821", "Sfax to Lampedusa"},
		alertedTo: 2,
	}},
	"alert-update.json": {{
		alertID:   "ivul6jn4ozqe6gny-5-gr-police",
		country:   `["GR","IT","MT"]`,
		severity:  "high",
		category:  "smuggling_offer",
		subject:   "[Flagline] Case GR,IT,MT now 25 reports: smuggling_offer+1 on t.me",
		sms:       "Flagline L5 HIGH GR,IT,MT: smuggling_offer t.me 25 reports case ivul6jn4ozqe6gny",
		inEmail:   []string{"CASE UPDATED", "Why now: reached 25 reports; new country GR joined", "smuggling_offer, transport", "5. \"Recruiting drivers"},
		alertedTo: 5,
	}, {
		alertID:   "ivul6jn4ozqe6gny-5-it-polpost",
		country:   `["GR","IT","MT"]`,
		severity:  "high",
		category:  "smuggling_offer",
		subject:   "[Flagline] Case GR,IT,MT now 25 reports: smuggling_offer+1 on t.me",
		sms:       "Flagline L5 HIGH GR,IT,MT: smuggling_offer t.me 25 reports case ivul6jn4ozqe6gny",
		inEmail:   []string{"CASE UPDATED", "For:         it-polpost"},
		alertedTo: 5,
	}},
	"alert-ignored.json": nil,
	// A case removed: no alert (the outcome webhooks to its sources go
	// through the outcome queue; shared/outcome).
	"alert-outcome.json": nil,
}

var sequenceNumber = regexp.MustCompile(`^[0-9]{21,40}$`)

func TestSampleEvents(t *testing.T) {
	dir := filepath.Join("..", "..", "events")
	files, err := filepath.Glob(filepath.Join(dir, "alert-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, n := range names {
		if _, ok := sampleEvents[n]; !ok {
			t.Errorf("events/%s has no expected publishes in sampleEvents", n)
		}
	}
	for n := range sampleEvents {
		if !slices.Contains(names, n) {
			t.Errorf("sampleEvents expects events/%s, which does not exist", n)
		}
	}
	for _, name := range names {
		want, ok := sampleEvents[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			checkLambdaShape(t, raw)
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}

			// The table holds each case as its newest image shows it.
			x := newHarness()
			for _, r := range ev.Records {
				if pk := imageS(r.Change.NewImage, "pk"); imageS(r.Change.NewImage, "type") == casestore.TypeCase {
					x.db.alerted[pk] = imageN(r.Change.OldImage, "alerted_level")
				}
			}
			if failed := x.handle(t, ev.Records...); failed != nil {
				t.Fatalf("failures %v", failed)
			}
			if len(x.sns.calls) != len(want) {
				t.Fatalf("%d publishes, want %d", len(x.sns.calls), len(want))
			}
			for i, w := range want {
				in := x.sns.calls[i]
				attr := func(k string) string { return aws.ToString(in.MessageAttributes[k].StringValue) }
				if attr("alert_id") != w.alertID || attr("country") != w.country || attr("severity") != w.severity ||
					attr("category") != w.category || aws.ToString(in.Subject) != w.subject {
					t.Errorf("publish %d: subject %q attributes %v", i, aws.ToString(in.Subject), attrs(in.MessageAttributes))
				}
				var msg map[string]string
				if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &msg); err != nil {
					t.Fatal(err)
				}
				if msg["sms"] != w.sms {
					t.Errorf("sms\n got %q\nwant %q", msg["sms"], w.sms)
				}
				for _, s := range w.inEmail {
					if !strings.Contains(msg["email"], s) {
						t.Errorf("email lacks %q:\n%s", s, msg["email"])
					}
				}
				caseID, _, _ := strings.Cut(w.alertID, "-")
				if got := x.db.alerted[casestore.Key(caseID)]; got != w.alertedTo {
					t.Errorf("alerted_level %d, want %d", got, w.alertedTo)
				}
			}
			x.noSecretsLogged(t)
			if strings.Contains(x.logs.String(), "desk@monitor.example.org") {
				t.Error("a notifier's address was logged")
			}
		})
	}
}

// checkLambdaShape checks a file has the fields Lambda sends, spelled as
// Lambda spells them (encoding/json would accept other cases silently).
func checkLambdaShape(t *testing.T, raw []byte) {
	t.Helper()
	var ev struct {
		Records []map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
		t.Fatalf("not a stream event: %v", err)
	}
	for i, r := range ev.Records {
		for _, k := range []string{"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"} {
			if _, ok := r[k]; !ok {
				t.Errorf("record %d lacks %s", i, k)
			}
		}
		var meta struct {
			EventVersion, EventSource, EventName, EventSourceARN string
		}
		for k, v := range map[string]*string{"eventVersion": &meta.EventVersion, "eventSource": &meta.EventSource, "eventName": &meta.EventName, "eventSourceARN": &meta.EventSourceARN} {
			_ = json.Unmarshal(r[k], v)
		}
		if meta.EventVersion != "1.1" || meta.EventSource != "aws:dynamodb" || !strings.Contains(meta.EventSourceARN, ":table/") ||
			!strings.Contains(meta.EventSourceARN, "/stream/") || !slices.Contains([]string{"INSERT", "MODIFY", "REMOVE"}, meta.EventName) {
			t.Errorf("record %d: %+v", i, meta)
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(r["dynamodb"], &d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType"} {
			if _, ok := d[k]; !ok {
				t.Errorf("record %d dynamodb lacks %s", i, k)
			}
		}
		var seq, view string
		_ = json.Unmarshal(d["SequenceNumber"], &seq)
		_ = json.Unmarshal(d["StreamViewType"], &view)
		if !sequenceNumber.MatchString(seq) || view != "NEW_AND_OLD_IMAGES" {
			t.Errorf("record %d: sequence number %q, view %q", i, seq, view)
		}
		_, hasOld := d["OldImage"]
		if hasOld != (meta.EventName == "MODIFY") {
			t.Errorf("record %d: %s with OldImage %v", i, meta.EventName, hasOld)
		}
	}
}

func imageS(img map[string]events.DynamoDBAttributeValue, k string) string {
	if v, ok := img[k]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

func imageN(img map[string]events.DynamoDBAttributeValue, k string) int {
	if v, ok := img[k]; ok && v.DataType() == events.DataTypeNumber {
		n, _ := v.Integer()
		return int(n)
	}
	return 0
}

func attrs(m map[string]snstypes.MessageAttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
	}
	return out
}
