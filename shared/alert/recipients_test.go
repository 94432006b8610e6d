package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/linksign"
)

// threeDesks is a harness whose directory has Italy, France and the EU
// coordinator.
func threeDesks(caseIDs ...string) *harness {
	x := newHarness(caseIDs...)
	x.db.setDirectory(deskIT, deskFR, deskEU)
	return x
}

func attr(in *sns.PublishInput, name string) string {
	return aws.ToString(in.MessageAttributes[name].StringValue)
}

func TestOnePublishPerRecipient(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny", "nocountry0000000")
	c := testCase()
	c.Countries, c.Categories, c.Severity = []string{"IT", "FR"}, []string{alert.ThreatToLife}, casestore.Critical
	none := testCase()
	none.ID, none.Countries = "nocountry0000000", nil
	if failed := x.handle(t, record(t, 1, nil, c), record(t, 2, nil, none)); failed != nil {
		t.Fatal(failed)
	}
	want := []string{
		"ivul6jn4ozqe6gny-1-eu-coordinator", "ivul6jn4ozqe6gny-1-fr-ocriest", "ivul6jn4ozqe6gny-1-it-polpost",
		"nocountry0000000-1-eu-coordinator", // no country: the coordinator only
	}
	if !slices.Equal(x.sns.alerts, want) {
		t.Fatalf("published %v, want %v", x.sns.alerts, want)
	}
	for _, in := range x.sns.calls {
		cp := attr(in, alert.AttrContactPoint)
		if !strings.HasSuffix(attr(in, "alert_id"), "-"+cp) || len(in.MessageAttributes) > alert.MaxAttributes ||
			!strings.Contains(aws.ToString(in.Message), `For:         `+cp) {
			t.Errorf("publish for %q: attributes %v", cp, attrs(in.MessageAttributes))
		}
	}
	if alert.AttrContactPoint != contacts.AttrContactPoint {
		t.Errorf("the alert's attribute %q is not the one filter policies match (%q)", alert.AttrContactPoint, contacts.AttrContactPoint)
	}
	// One directory read for the whole invocation; one event per case
	// naming its recipients.
	if n := x.directoryReads(); n != 1 {
		t.Errorf("directory read %d times", n)
	}
	if len(x.db.events) != 2 || !slices.Equal(stringSet(x.db.events[0]["recipients"]), []string{"eu-coordinator", "fr-ocriest", "it-polpost"}) {
		t.Errorf("events %v", x.db.events)
	}
}

func TestDeliveryRetriesOnlyTheFailedDesk(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	frFailed := false
	x.sns.fail = func(_ int, in *sns.PublishInput) error {
		if attr(in, alert.AttrContactPoint) == "fr-ocriest" && !frFailed {
			frFailed = true
			return &snstypes.InternalErrorException{Message: aws.String("internal")}
		}
		return nil
	}
	c := testCase()
	c.Countries, c.Categories, c.Severity = []string{"IT", "FR"}, []string{alert.ThreatToLife}, casestore.Critical
	rec := record(t, 1, nil, c)

	if failed := x.handle(t, rec); !slices.Equal(failed, []string{rec.Change.SequenceNumber}) {
		t.Fatalf("first Handle: failures %v, want the record", failed)
	}
	if !slices.Equal(x.sns.alerts, []string{"ivul6jn4ozqe6gny-1-eu-coordinator", "ivul6jn4ozqe6gny-1-it-polpost"}) || x.db.transacts != 0 {
		t.Fatalf("first Handle published %v, %d records", x.sns.alerts, x.db.transacts)
	}
	if fails := x.logLines(t, "alert failed"); len(fails) != 1 || fails[0]["retryable"] != true {
		t.Errorf("failure log %v", fails)
	}

	if failed := x.handle(t, rec); failed != nil {
		t.Fatalf("retry: failures %v", failed)
	}
	want := []string{"ivul6jn4ozqe6gny-1-eu-coordinator", "ivul6jn4ozqe6gny-1-it-polpost", "ivul6jn4ozqe6gny-1-fr-ocriest"}
	if !slices.Equal(x.sns.alerts, want) {
		t.Errorf("after the retry published %v, want %v (each desk once)", x.sns.alerts, want)
	}
	if x.db.transacts != 1 || x.db.alerted[casestore.Key(c.ID)] != 1 || len(x.db.events) != 1 ||
		!slices.Equal(stringSet(x.db.events[0]["recipients"]), []string{"eu-coordinator", "fr-ocriest", "it-polpost"}) {
		t.Errorf("record: %d transactions, alerted %v, events %v", x.db.transacts, x.db.alerted, x.db.events)
	}
	if d := x.db.withPrefix("DELIVERY#ivul6jn4ozqe6gny-1#"); len(d) != 3 {
		t.Errorf("%d delivery records", len(d))
	}
}

func TestNoRecipientRecordsTheLevel(t *testing.T) {
	x := newHarness("ivul6jn4ozqe6gny")
	x.db.setDirectory() // an empty directory
	if failed := x.handle(t, record(t, 1, nil, testCase())); failed != nil {
		t.Fatal(failed)
	}
	if len(x.sns.calls) != 0 || x.db.alerted[casestore.Key("ivul6jn4ozqe6gny")] != 1 {
		t.Errorf("%d publishes, alerted %v", len(x.sns.calls), x.db.alerted)
	}
	if w := x.logLines(t, "alert has no recipient: no contact point answers for its countries"); len(w) != 1 {
		t.Errorf("warnings %v", w)
	}
}

// signedURL finds the URLs of the email.
var signedURL = regexp.MustCompile(`https://dashboard\.example\.org/\S+`)

func TestEmailLinksAreSignedForTheirRecipient(t *testing.T) {
	key, err := linksign.ParseKey(linksign.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	x := threeDesks("ivul6jn4ozqe6gny")
	x.h.Links = key
	c := testCase()
	c.Countries = []string{"IT", "FR"}
	if failed := x.handle(t, record(t, 1, nil, c)); failed != nil {
		t.Fatal(failed)
	}
	emails := map[string]string{}
	for _, in := range x.sns.calls {
		var msg map[string]string
		if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &msg); err != nil {
			t.Fatal(err)
		}
		emails[attr(in, alert.AttrContactPoint)] = msg["email"]
	}
	// France's links are France's own.
	for _, raw := range signedURL.FindAllString(emails["fr-ocriest"], -1) {
		u, _ := url.Parse(raw)
		if cp := u.Query().Get(linksign.ParamContactPoint); cp != "fr-ocriest" {
			t.Errorf("France's email has a link for %q: %s", cp, raw)
		}
	}
	itEmail := emails["it-polpost"]
	urls := signedURL.FindAllString(itEmail, -1)
	if len(urls) != 3 {
		t.Fatalf("IT's email has %d links:\n%s", len(urls), itEmail)
	}
	actions := map[string]string{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		action := linksign.View
		if rest, ok := strings.CutPrefix(u.Path, linksign.PagePath(c.ID)+"/"); ok {
			action = rest
		}
		l, sig, err := linksign.FromQuery(c.ID, action, u.Query())
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Verify(l, sig, sentAt); err != nil || l.ContactPoint != "it-polpost" || !l.Expires.Equal(sentAt.Add(linksign.Validity).Truncate(time.Second)) {
			t.Errorf("%s: %v (%+v)", raw, err, l)
		}
		fr := l
		fr.ContactPoint = "fr-ocriest"
		if key.Verify(fr, sig, sentAt) == nil {
			t.Errorf("%s verifies for France", raw)
		}
		actions[action] = raw
	}
	for _, a := range []string{linksign.View, linksign.Acknowledge, linksign.ClaimLead} {
		if actions[a] == "" {
			t.Errorf("no %s link", a)
		}
	}
}

// failingKey is a link key that cannot be had (SSM down).
type failingKey struct{ calls int }

func (f *failingKey) LinkKey(context.Context) (linksign.Key, error) {
	f.calls++
	return linksign.Key{}, errors.New("read /flagline/prod/link-key: throttled")
}

func TestNoLinkKeySendsWithoutLinks(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	k := &failingKey{}
	x.h.Links = k
	c := testCase()
	c.Countries = []string{"IT", "FR"}
	if failed := x.handle(t, record(t, 1, nil, c)); failed != nil {
		t.Fatal(failed)
	}
	if len(x.sns.alerts) != 2 || strings.Contains(aws.ToString(x.sns.calls[0].Message), "dashboard.example.org") {
		t.Errorf("published %v", x.sns.alerts)
	}
	if w := x.logLines(t, "alerts go without signed links: link key unavailable"); len(w) != 1 || k.calls != 1 {
		t.Errorf("%d warnings, %d key reads: once per invocation", len(w), k.calls)
	}
}

func TestEmailSaysStatusAndLead(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	c := testCase()
	c.Status, c.StatusAt = casestore.StatusAcknowledged, lastSeen
	c.Lead, c.LeadSince = "it-polpost", time.Date(2026, 12, 1, 10, 42, 0, 0, time.UTC)
	c.Countries = []string{"IT", "FR"}
	x.handle(t, record(t, 1, nil, c))
	in := x.sns.calls[0]
	msg := aws.ToString(in.Message)
	for _, want := range []string{"Lead:        it-polpost (IT) since 2026-12-01 10:42 UTC", "Status:      acknowledged since 2026-11-27 09:12 UTC",
		"case ivul6jn4ozqe6gny acknowledged lead it-polpost"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// fakeReopener records the cases it is asked to reopen.
type fakeReopener struct{ seen []casestore.Case }

func (f *fakeReopener) Reopen(_ context.Context, c *casestore.Case) (bool, error) {
	f.seen = append(f.seen, *c)
	return true, nil
}

func TestShouldReopen(t *testing.T) {
	at := lastSeen.Add(-time.Hour)
	for _, tc := range []struct {
		status   string
		lastSeen time.Time
		want     bool
	}{
		{casestore.StatusRemoved, lastSeen, true},
		{casestore.StatusClosed, lastSeen, true},
		{casestore.StatusRemoved, at, false},                   // no report since
		{casestore.StatusRemoved, at.Add(-time.Minute), false}, // older report
		{casestore.StatusFalsePositive, lastSeen, false},
		{casestore.StatusNotRemoved, lastSeen, false},
		{casestore.StatusOpen, lastSeen, false},
		{casestore.StatusTakedownRequested, lastSeen, false},
	} {
		c := testCase()
		c.Status, c.StatusAt, c.LastSeen = tc.status, at, tc.lastSeen
		if got := alert.ShouldReopen(&c); got != tc.want {
			t.Errorf("%s, last seen %s after: %v, want %v", tc.status, tc.lastSeen.Sub(at), got, tc.want)
		}
	}
}

func TestReopenedAlertGoesToTheLead(t *testing.T) {
	dir := []contacts.ContactPoint{deskEU, deskFR, deskIT}
	if got := alert.ReopenRecipients(dir, "fr-ocriest", []string{"IT", "FR"}); len(got) != 1 || got[0].ID != "fr-ocriest" {
		t.Errorf("with a lead: %v", got)
	}
	if got := alert.ReopenRecipients(dir, "", []string{"IT", "FR"}); len(got) != 2 {
		t.Errorf("without a lead: %v", got)
	}
	if got := alert.ReopenRecipients(dir, "gone-desk", []string{"IT"}); len(got) != 1 || got[0].ID != "it-polpost" {
		t.Errorf("lead no longer in the directory: %v", got)
	}

	x := threeDesks("ivul6jn4ozqe6gny")
	r := &fakeReopener{}
	x.h.Reopener = r
	// A report after removal: the case is reopened, nothing is sent yet.
	removed := testCase()
	removed.AlertedLevel, removed.Countries = 1, []string{"IT", "FR"}
	removed.Status, removed.StatusAt, removed.Lead = casestore.StatusRemoved, lastSeen.Add(-time.Hour), "fr-ocriest"
	reported := removed
	reported.Reports++
	if failed := x.handle(t, record(t, 1, &removed, reported)); failed != nil {
		t.Fatal(failed)
	}
	if len(r.seen) != 1 || r.seen[0].Status != casestore.StatusRemoved || len(x.sns.calls) != 0 {
		t.Fatalf("reopen calls %v, %d publishes", r.seen, len(x.sns.calls))
	}
	// The reopening's image: one reopened alert, to the lead only; the
	// retry of the same record sends nothing more and records once.
	reopened := reported
	reopened.Status, reopened.StatusAt, reopened.ReopenCount = casestore.StatusOpen, lastSeen.Add(time.Minute), 1
	rec := record(t, 2, &reported, reopened)
	x.handle(t, rec)
	x.handle(t, rec)
	if !slices.Equal(x.sns.alerts, []string{"ivul6jn4ozqe6gny-reopened1-fr-ocriest"}) {
		t.Errorf("published %v", x.sns.alerts)
	}
	if s := aws.ToString(x.sns.calls[0].Subject); !strings.HasPrefix(s, "[Flagline] Reopened: ") {
		t.Errorf("subject %q", s)
	}
	if x.db.alerted[casestore.Key(reopened.ID)] != 0 || x.db.reopens[casestore.Key(reopened.ID)] != 1 {
		t.Errorf("alerted_level %v, alerted_reopen_count %v: want 0 and 1", x.db.alerted, x.db.reopens)
	}
	if ev := x.db.withPrefix(casestore.EventPrefix); len(ev) != 1 || ev[0]["kind"].(*types.AttributeValueMemberS).Value != "reopened" {
		t.Errorf("events %v", ev)
	}
	if len(r.seen) != 1 {
		t.Errorf("the open image was reopened again: %v", r.seen)
	}
}

func TestEveryCaseImageIsProjected(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	c := testCase()
	done := c
	done.AlertedLevel = 1 // no alert to send: still projected
	x.handle(t, record(t, 1, nil, done))
	if items := x.db.withPrefix("LIST#"); len(items) != 1 {
		t.Fatalf("%d listing items", len(items))
	}
	// An image that changes only what the alert function itself writes
	// shows nothing new on a list: no listing write.
	writes := x.db.batchWrites
	again := done
	again.AlertedReopenCount = 0
	x.handle(t, record(t, 2, &c, again))
	if x.db.batchWrites != writes {
		t.Errorf("an alerted_level write was projected again (%d listing writes)", x.db.batchWrites-writes)
	}
	// A new report is.
	more := done
	more.Reports++
	more.LastSeen = more.LastSeen.Add(time.Minute)
	x.handle(t, record(t, 3, &done, more))
	if x.db.batchWrites != writes+1 {
		t.Errorf("a new report wrote %d listings, want 1", x.db.batchWrites-writes)
	}
	// A listing that cannot be written fails the record, before any alert.
	x = threeDesks("ivul6jn4ozqe6gny")
	x.db.writeErr = func() error { return errors.New("throttled") }
	rec := record(t, 1, nil, testCase())
	if failed := x.handle(t, rec); !slices.Equal(failed, []string{rec.Change.SequenceNumber}) || len(x.sns.calls) != 0 {
		t.Errorf("failures %v, %d publishes", failed, len(x.sns.calls))
	}
}

func stringSet(v types.AttributeValue) []string {
	if ss, ok := v.(*types.AttributeValueMemberSS); ok {
		return ss.Value
	}
	return nil
}

// directoryReads counts reads of the directory's index item.
func (x *harness) directoryReads() int { return x.db.indexReads }
