//go:build integration

package protect_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/protect"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(moto.Config())
	name := "t-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := spec.Create(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })
	return db, name
}

func parse(t *testing.T, yaml string) *protect.List {
	t.Helper()
	l, err := protect.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Apply stores the list (a dry run does not), applying it again changes
// nothing, a changed file adds and removes entries, and the aggregate
// function's reader finds what was applied.
func TestApplyStoresTheList(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	example, err := protect.Load(filepath.Join("..", "..", "humanitarian.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := protect.Apply(ctx, db, table, example, true, time.Now(), &out); err != nil {
		t.Fatal(err)
	}
	if s, err := protect.Read(ctx, db, table, true); err != nil || s.Version != 0 {
		t.Fatalf("a dry run stored version %v (%v)", s, err)
	}
	if !strings.Contains(out.String(), "+ Alarm Phone (handle x.com/alarm_phone)") {
		t.Errorf("plan:\n%s", out.String())
	}
	p, err := protect.Apply(ctx, db, table, example, false, time.Now(), &out)
	if err != nil || len(p.Added) != len(example.Rules) {
		t.Fatalf("apply: %v %+v", err, p)
	}
	m, err := (&protect.Table{DB: db, Table: table}).Matcher(ctx)
	if err != nil || m.Len() != len(example.Rules) {
		t.Fatalf("stored matcher: %v %d entries", err, m.Len())
	}
	if r, ok := m.Match("https://help.unhcr.org/italy/"); !ok || r.Name != "UNHCR, the UN Refugee Agency" {
		t.Errorf("match %v %v", r, ok)
	}
	if p, err := protect.Apply(ctx, db, table, example, false, time.Now(), &out); err != nil || !p.Empty() {
		t.Fatalf("second apply: %v %+v", err, p)
	}

	smaller := parse(t, "sources:\n  - name: UNHCR, the UN Refugee Agency\n    entries: [{domain: unhcr.org}, {domain: unhcr.ch}]\n")
	p, err = protect.Apply(ctx, db, table, smaller, false, time.Now(), &out)
	if err != nil || len(p.Added) != 1 || p.Unchanged != 1 || len(p.Removed) != len(example.Rules)-1 {
		t.Fatalf("apply smaller: %v %+v", err, p)
	}
	if s, _ := protect.Read(ctx, db, table, true); s.Version != 2 || len(s.Rules) != 2 {
		t.Errorf("stored %+v", s)
	}
}

// Two applies planned on the same version: the second write is refused,
// not lost silently.
func TestConcurrentApplyIsRefused(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t)
	first := parse(t, "sources:\n  - name: A\n    entries: [{domain: a.org}]\n")
	if _, err := protect.Apply(ctx, db, table, first, false, time.Now(), &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	// Another apply wrote between this one's read and write.
	racing := &racingDB{Client: db, race: func() {
		protect.Apply(ctx, db, table, parse(t, "sources:\n  - name: B\n    entries: [{domain: b.org}]\n"), false, time.Now(), &strings.Builder{})
	}}
	_, err := protect.Apply(ctx, racing, table, parse(t, "sources:\n  - name: C\n    entries: [{domain: c.org}]\n"), false, time.Now(), &strings.Builder{})
	if !errors.Is(err, protect.ErrConcurrentApply) {
		t.Fatalf("got %v; want ErrConcurrentApply", err)
	}
	if s, _ := protect.Read(ctx, db, table, true); len(s.Rules) != 1 || s.Rules[0].Host != "b.org" {
		t.Errorf("stored %+v; want the racing apply's", s.Rules)
	}
}

// racingDB runs race before its first PutItem.
type racingDB struct {
	*dynamodb.Client
	race func()
}

func (r *racingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if r.race != nil {
		r.race()
		r.race = nil
	}
	return r.Client.PutItem(ctx, in, opts...)
}
