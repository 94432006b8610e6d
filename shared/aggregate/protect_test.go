package aggregate

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/protect"
)

// allowList is a Protector over a fixed list that counts its reads.
type allowList struct {
	m     *protect.Matcher
	err   error
	reads int
}

func (a *allowList) Matcher(context.Context) (*protect.Matcher, error) {
	a.reads++
	return a.m, a.err
}

func newAllowList(t *testing.T) *allowList {
	t.Helper()
	l, err := protect.Parse([]byte(`
sources:
  - name: Alarm Phone
    entries:
      - domain: alarmphone.org
      - platform: x.com
        handle: "@alarm_phone"
`))
	if err != nil {
		t.Fatal(err)
	}
	return &allowList{m: protect.NewMatcher(l.Rules)}
}

func TestCaseOfAListedSourceIsProtectedAtCreation(t *testing.T) {
	for _, tc := range []struct {
		url, by string
	}{
		{"https://www.alarmphone.org/en/2026/12/01/boat-in-distress/", "Alarm Phone (domain alarmphone.org)"},
		{"https://twitter.com/Alarm_Phone", "Alarm Phone (handle x.com/alarm_phone)"},
		{"https://evil-alarmphone.org/", ""},
		{"https://x.com/alarm_phone_fake", ""},
	} {
		t.Run(tc.url, func(t *testing.T) {
			f := newFixture(t, tc.url)
			list := newAllowList(t)
			f.h.Protect = list
			f.feed("shardId-1", []rep{{notifier: notifierHash(1)}, {notifier: notifierHash(2)}}, 1)
			s := f.state()
			if s.Protected != (tc.by != "") || s.ProtectedBy != tc.by {
				t.Errorf("protected %v by %q; want by %q", s.Protected, s.ProtectedBy, tc.by)
			}
			// The list is read for the batch that created the case, not
			// for the second one.
			if list.reads != 1 {
				t.Errorf("list read %d times; want once", list.reads)
			}
		})
	}
}

// Protection is decided at creation only: a case that existed before the
// list named its source keeps what it had.
func TestExistingCaseIsNotMarkedLater(t *testing.T) {
	f := newFixture(t, "https://alarmphone.org/")
	f.feed("shardId-1", []rep{{notifier: notifierHash(1)}}, 1)
	list := newAllowList(t)
	f.h.Protect = list
	f.feed("shardId-1", []rep{{notifier: notifierHash(1)}, {notifier: notifierHash(2)}}, 2)
	if s := f.state(); s.Protected || s.Reports != 3 {
		t.Errorf("protected %v with %d reports; want unprotected, 3", s.Protected, s.Reports)
	}
	if list.reads != 0 {
		t.Errorf("list read %d times for a batch that creates no case", list.reads)
	}
}

// A list that cannot be read fails the batch: a case created without it
// would stay unprotected.
func TestUnreadableListRetriesTheBatch(t *testing.T) {
	f := newFixture(t, "https://alarmphone.org/")
	f.h.Protect = &allowList{err: errors.New("throttled")}
	ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{f.record("shardId-1", 0, rep{notifier: notifierHash(1)})}}}
	ev.ShardID = "shardId-1"
	resp, err := f.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("got %v %v; want the batch failed", err, resp.BatchItemFailures)
	}
	if f.item() != nil {
		t.Errorf("case written without its protection: %v", f.item())
	}
}

// reportAbout adds to db a report of case caseID about canonical URL u.
func (f *fakeDB) reportAbout(t *testing.T, caseID, u, receivedAt string) {
	t.Helper()
	f.addReport(t, caseID, receivedAt, "ngo", "IT")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports[len(f.reports)-1]["canonical_url"] = &types.AttributeValueMemberS{Value: u}
}

// A case first created by a recount (the batch that would have created it
// was discarded) is protected as aggregation would have protected it: a
// listed source's case with its entry, another case not at all; an
// existing case is never marked, and its recount reads no list.
func TestRecountProtectsACaseItCreates(t *testing.T) {
	for _, tc := range []struct {
		name, url, by string
		exists        bool
		reads         int
	}{
		{"listed source", "https://alarmphone.org/en/help", "Alarm Phone (domain alarmphone.org)", false, 1},
		{"listed handle", "https://x.com/alarm_phone", "Alarm Phone (handle x.com/alarm_phone)", false, 1},
		{"other source", "https://evil-alarmphone.org/", "", false, 1},
		{"existing case", "https://alarmphone.org/en/help", "", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{}
			for _, at := range []string{"2026-11-27T08:00:00Z", "2026-11-27T08:10:00Z"} {
				db.reportAbout(t, "c1", tc.url, at)
			}
			if tc.exists {
				db.putCase(t, &State{Case: casestore.Case{
					ID: "c1", CanonicalURL: tc.url, Status: casestore.StatusOpen, Reports: 1, Sources: 1, Notifiers: 1,
					FirstSeen: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
					Countries: []string{"IT"}, Categories: []string{"smuggling_offer"}, Level: 1, Severity: casestore.Low,
				}, Version: 1})
			}
			list := newAllowList(t)
			r := recounter(db)
			r.Protect = list
			res, err := r.Recount(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Written || res.Existed != tc.exists {
				t.Fatalf("recount %+v", res)
			}
			s := db.stored(t, "c1")
			if s.Reports != 2 || s.Protected != (tc.by != "") || s.ProtectedBy != tc.by {
				t.Errorf("case %s: %d reports, protected %v by %q; want by %q", tc.url, s.Reports, s.Protected, s.ProtectedBy, tc.by)
			}
			if res.After.Protected != s.Protected {
				t.Errorf("the outcome says protected %v, the case %v", res.After.Protected, s.Protected)
			}
			if list.reads != tc.reads {
				t.Errorf("list read %d times, want %d", list.reads, tc.reads)
			}
		})
	}
}

// A recount that would create a case but cannot read the list creates
// nothing: the case would stay unprotected for good.
func TestRecountWithAnUnreadableListCreatesNoCase(t *testing.T) {
	db := &fakeDB{}
	db.reportAbout(t, "c1", "https://alarmphone.org/en/help", "2026-11-27T08:00:00Z")
	r := recounter(db)
	r.Protect = &allowList{err: errors.New("AccessDeniedException: not authorized to perform dynamodb:GetItem")}
	_, err := r.Recount(context.Background(), "c1")
	if !errors.Is(err, ErrProtectList) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("error %v; want ErrProtectList with its cause", err)
	}
	if len(db.updates) != 0 || db.cases["c1"] != nil {
		t.Errorf("case written without its protection: %d updates", len(db.updates))
	}
}

// listTable holds the stored humanitarian list as DynamoDB would just
// after flagline protect apply wrote it: a strongly consistent read sees
// the write, an eventually consistent one may still see the table before
// it (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
type listTable struct {
	item map[string]types.AttributeValue
}

func (l *listTable) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if !aws.ToBool(in.ConsistentRead) {
		return &dynamodb.GetItemOutput{}, nil // not yet propagated
	}
	return &dynamodb.GetItemOutput{Item: l.item}, nil
}

func (l *listTable) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	l.item = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

// A list applied a second ago protects the next case aggregation creates:
// the list is read strongly consistently.
func TestListJustAppliedProtectsTheNextCase(t *testing.T) {
	l, err := protect.Parse([]byte("sources:\n  - name: Alarm Phone\n    entries:\n      - domain: alarmphone.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	lt := &listTable{}
	if _, err := protect.Apply(context.Background(), lt, "t", l, false, epoch, io.Discard); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "https://alarmphone.org/en/2026/12/01/boat-in-distress/")
	f.h.Protect = &protect.Table{DB: lt, Table: "t"}
	f.feed("shardId-1", []rep{{notifier: notifierHash(1)}}, 1)
	if s := f.state(); !s.Protected {
		t.Errorf("a case created a moment after its source was listed is not protected")
	}
}
