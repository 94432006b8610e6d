package aggregate

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"

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
