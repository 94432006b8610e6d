//go:build integration

package silences_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newStore makes the template's table on moto with directory entries: id
// → countries.
func newStore(t *testing.T, dir map[string][]string) (*silences.Store, *clock, *dynamodb.Client) {
	t.Helper()
	ctx := context.Background()
	db := dynamodb.NewFromConfig(moto.Config())
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	table := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if _, err := spec.Create(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	for id, countries := range dir {
		item, err := attributevalue.MarshalMap(struct {
			PK   string `dynamodbav:"pk"`
			SK   string `dynamodbav:"sk"`
			Type string `dynamodbav:"type"`
			contacts.ContactPoint
		}{contacts.Key(id), contacts.SortKey, contacts.TypeContactPoint, contacts.ContactPoint{ID: id, Name: id, Countries: countries}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return &silences.Store{DB: db, Table: table, Now: c.Now}, c, db
}

var directory = map[string][]string{
	"it-polpost": {"IT"},
	"gr-hcg":     {"GR", "CY"},
	"eu-coord":   {"EU"},
}

func ids(ss []silences.Silence) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ContactPoint+"/"+s.ID)
	}
	return strings.Join(out, ", ")
}

// A silence's life: added (active from now), listed, expired early (ended,
// still pending its digest), marked caught up (gone from the index, the
// item keeps caught_up_at).
func TestSilenceLife(t *testing.T) {
	ctx := context.Background()
	s, clk, db := newStore(t, directory)
	start := clk.Now()

	a, err := s.Add(ctx, "it-polpost", start.Add(48*time.Hour), "  office closed for the holiday ", "eu-coord")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 12 || a.ContactPoint != "it-polpost" || !a.From.Equal(start) || !a.Until.Equal(start.Add(48*time.Hour)) ||
		a.Reason != "office closed for the holiday" || a.CreatedBy != "eu-coord" {
		t.Fatalf("added %+v", a)
	}
	if !a.ActiveAt(start) || !a.ActiveAt(start.Add(47*time.Hour)) || a.ActiveAt(start.Add(48*time.Hour)) {
		t.Errorf("ActiveAt wrong for %+v", a)
	}
	clk.Add(time.Minute)
	b, err := s.Add(ctx, "gr-hcg", start.Add(time.Hour), "training day", "cli:ops")
	if err != nil {
		t.Fatal(err)
	}

	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), "it-polpost/"+a.ID+", gr-hcg/"+b.ID; got != want {
		t.Errorf("List(\"\") = %s, want %s (sorted by from)", got, want)
	}
	if got, err := s.List(ctx, "gr-hcg"); err != nil || ids(got) != "gr-hcg/"+b.ID {
		t.Errorf("List(gr-hcg) = %s, %v", ids(got), err)
	}
	if got, err := s.List(ctx, "eu-coord"); err != nil || len(got) != 0 || got == nil {
		t.Errorf("List(eu-coord) = %#v, %v; want an empty list", got, err)
	}

	// Not ended yet: no catch-up.
	if err := s.MarkCaughtUp(ctx, a); !errors.Is(err, silences.ErrInvalid) {
		t.Errorf("MarkCaughtUp of an active silence: %v, want ErrInvalid", err)
	}

	clk.Add(time.Hour)
	expired, err := s.Expire(ctx, "it-polpost", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !expired.ExpiredAt.Equal(clk.Now()) || !expired.EndedAt().Equal(clk.Now()) || expired.ActiveAt(clk.Now()) {
		t.Errorf("expired %+v", expired)
	}
	// Idempotent: the second expire changes nothing.
	clk.Add(time.Minute)
	again, err := s.Expire(ctx, "it-polpost", a.ID)
	if err != nil || !again.ExpiredAt.Equal(expired.ExpiredAt) {
		t.Errorf("second expire: %+v, %v; want expired_at %s kept", again, err, expired.ExpiredAt)
	}
	// Expiring a silence past its until changes nothing either.
	pastB, err := s.Expire(ctx, "gr-hcg", b.ID)
	if err != nil || !pastB.ExpiredAt.IsZero() || !pastB.EndedAt().Equal(b.Until) {
		t.Errorf("expire after until: %+v, %v", pastB, err)
	}
	if _, err := s.Expire(ctx, "gr-hcg", a.ID); !errors.Is(err, silences.ErrNotFound) {
		t.Errorf("expire another desk's silence id: %v, want ErrNotFound", err)
	}

	// Both ended, both still pending their digest.
	pending, err := s.Pending(ctx)
	if err != nil || len(pending) != 2 {
		t.Fatalf("Pending = %s, %v", ids(pending), err)
	}
	if err := s.MarkCaughtUp(ctx, pending[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkCaughtUp(ctx, pending[0]); err != nil {
		t.Errorf("MarkCaughtUp twice: %v, want nil (nothing changes)", err)
	}
	pending, err = s.Pending(ctx)
	if err != nil || ids(pending) != "gr-hcg/"+b.ID {
		t.Errorf("Pending after catch-up = %s, %v", ids(pending), err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "CONTACT#it-polpost"},
		"sk": &types.AttributeValueMemberS{Value: "SILENCE#" + a.ID},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var item map[string]any
	if err := attributevalue.UnmarshalMap(out.Item, &item); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"type": "silence", "silence_id": a.ID, "contact_point": "it-polpost",
		"from": "2026-12-01T09:00:00Z", "until": "2026-12-03T09:00:00Z", "expired_at": "2026-12-01T10:01:00Z",
		"caught_up_at": "2026-12-01T10:02:00Z", "reason": "office closed for the holiday", "created_by": "eu-coord",
	} {
		if item[k] != want {
			t.Errorf("item %s = %v, want %v", k, item[k], want)
		}
	}
	if err := s.MarkCaughtUp(ctx, silences.Silence{ID: "000000000000", ContactPoint: "it-polpost", Until: start}); !errors.Is(err, silences.ErrNotFound) {
		t.Errorf("MarkCaughtUp of no silence: %v, want ErrNotFound", err)
	}
}

// What Add refuses, and that a refusal writes nothing.
func TestSilenceRefusals(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t, directory)
	now := clk.Now()
	for _, tc := range []struct {
		name   string
		cp     string
		until  time.Time
		reason string
		want   error
	}{
		{"the coordinator", "eu-coord", now.Add(time.Hour), "x", silences.ErrCoordinator},
		{"not in the directory", "fr-ocrtis", now.Add(time.Hour), "x", silences.ErrNoContactPoint},
		{"until now", "it-polpost", now, "x", silences.ErrInvalid},
		{"until in the past", "it-polpost", now.Add(-time.Hour), "x", silences.ErrInvalid},
		{"over 90 days", "it-polpost", now.Add(90*24*time.Hour + time.Second), "x", silences.ErrInvalid},
		{"no reason", "it-polpost", now.Add(time.Hour), "  ", silences.ErrInvalid},
		{"reason too long", "it-polpost", now.Add(time.Hour), strings.Repeat("é", 501), silences.ErrInvalid},
		{"no contact point", "", now.Add(time.Hour), "x", silences.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Add(ctx, tc.cp, tc.until, tc.reason, "eu-coord"); !errors.Is(err, tc.want) {
				t.Errorf("Add: %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := s.Pending(ctx); err != nil || len(got) != 0 {
		t.Errorf("refusals left silences: %s, %v", ids(got), err)
	}
	// The limits themselves are allowed.
	if _, err := s.Add(ctx, "it-polpost", now.Add(90*24*time.Hour), strings.Repeat("é", 500), "eu-coord"); err != nil {
		t.Errorf("90 days and 500 characters: %v", err)
	}
	if _, err := s.Expire(ctx, "it-polpost", "nope"); !errors.Is(err, silences.ErrNotFound) {
		t.Errorf("Expire unknown: %v", err)
	}
}

// Adds racing each other all land in the index: none overwrites
// another's entry.
func TestConcurrentAddsKeepTheIndex(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t, directory)
	const n = 12
	var wg sync.WaitGroup
	added := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := []string{"it-polpost", "gr-hcg"}[i%2]
			sil, err := s.Add(ctx, cp, clk.Now().Add(time.Duration(i+1)*time.Hour), fmt.Sprint("reason ", i), "eu-coord")
			added[i], errs[i] = cp+"/"+sil.ID, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, x := range got {
		listed = append(listed, x.ContactPoint+"/"+x.ID)
	}
	slices.Sort(listed)
	slices.Sort(added)
	if !slices.Equal(listed, added) {
		t.Errorf("index lists %d silences:\n%v\nwant the %d added:\n%v", len(listed), listed, n, added)
	}
}
