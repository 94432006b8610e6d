//go:build integration

package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/flagline/flagline/shared/tokens"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// newStore makes the template's table on moto with directory entries for
// the given contact points.
func newStore(t *testing.T, contactPoints ...string) (*tokens.Store, *dynamodb.Client) {
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
	for _, cp := range contactPoints {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk":   &types.AttributeValueMemberS{Value: contacts.Key(cp)},
			"sk":   &types.AttributeValueMemberS{Value: contacts.SortKey},
			"type": &types.AttributeValueMemberS{Value: contacts.TypeContactPoint},
			"id":   &types.AttributeValueMemberS{Value: cp},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	return &tokens.Store{DB: db, Table: table}, db
}

func list(t *testing.T, s *tokens.Store, cp string) string {
	t.Helper()
	infos, err := s.List(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		state := "active"
		if i.Revoked() {
			state = "revoked"
		}
		out = append(out, i.ID+" "+i.ContactPoint+" "+state)
	}
	return strings.Join(out, ", ")
}

// The life of a token: it works from creation, is listed, stops working
// the moment it is revoked, stays listed as revoked, and revoking it again
// changes nothing.
func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, "it-polpost", "gr-hp")
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { clock = clock.Add(time.Minute); return clock }

	first, a, err := s.Create(ctx, "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	second, b, err := s.Create(ctx, "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	greek, _, err := s.Create(ctx, "gr-hp")
	if err != nil {
		t.Fatal(err)
	}
	for tok, cp := range map[string]string{first: "it-polpost", second: "it-polpost", greek: "gr-hp"} {
		info, err := s.Lookup(ctx, tok)
		if err != nil || info.ContactPoint != cp {
			t.Errorf("Lookup: %+v %v, want %s", info, err, cp)
		}
	}
	if got, want := list(t, s, "it-polpost"), a.ID+" it-polpost active, "+b.ID+" it-polpost active"; got != want {
		t.Errorf("list %q, want %q", got, want)
	}

	if err := s.Revoke(ctx, "it-polpost", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, first); !errors.Is(err, tokens.ErrUnknown) {
		t.Errorf("revoked token: %v, want ErrUnknown", err)
	}
	if _, err := s.Lookup(ctx, second); err != nil {
		t.Errorf("the other token stopped working: %v", err)
	}
	if got, want := list(t, s, "it-polpost"), a.ID+" it-polpost revoked, "+b.ID+" it-polpost active"; got != want {
		t.Errorf("list %q, want %q", got, want)
	}
	infos, err := s.List(ctx, "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := infos[0].RevokedAt
	if err := s.Revoke(ctx, "it-polpost", a.ID); err != nil {
		t.Errorf("revoke again: %v", err)
	}
	if infos, _ := s.List(ctx, "it-polpost"); !infos[0].RevokedAt.Equal(revokedAt) {
		t.Errorf("revoking again moved revoked_at from %v to %v", revokedAt, infos[0].RevokedAt)
	}

	// A token id is only revocable through its own contact point.
	if err := s.Revoke(ctx, "gr-hp", b.ID); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("revoke another desk's token: %v, want ErrNotFound", err)
	}
	if err := s.Revoke(ctx, "it-polpost", "000000000000"); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("revoke unknown id: %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup(ctx, second); err != nil {
		t.Errorf("a failed revoke touched another token: %v", err)
	}
	// Well formed, never issued.
	if _, err := s.Lookup(ctx, tokens.Prefix+strings.Repeat("A", 43)); !errors.Is(err, tokens.ErrUnknown) {
		t.Errorf("never issued: %v", err)
	}
}

// No token is issued to a contact point that is not in the stored
// directory, and nothing is written for it.
func TestCreateRefusesUnknownContactPoint(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, "it-polpost")
	tok, _, err := s.Create(ctx, "xx-nobody")
	if !errors.Is(err, tokens.ErrNoContactPoint) || tok != "" {
		t.Fatalf("Create: %q %v, want ErrNoContactPoint", tok, err)
	}
	if got := list(t, s, "xx-nobody"); got != "" {
		t.Errorf("tokens written for an unknown contact point: %s", got)
	}
}

// The table holds the token's hash, never its text.
func TestTableHoldsNoTokenText(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, "it-polpost")
	tok, info, err := s.Create(ctx, "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.Table)})
	if err != nil {
		t.Fatal(err)
	}
	hashes := 0
	for _, item := range out.Items {
		var v map[string]any
		if err := attributevalue.UnmarshalMap(item, &v); err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprint(v)
		if strings.Contains(text, tok[len(tokens.Prefix):]) {
			t.Errorf("item holds the token text: %s", text)
		}
		if strings.Contains(text, tokens.Hash(tok)) {
			hashes++
		}
	}
	if hashes != 2 || info.ID == "" {
		t.Errorf("%d items name the token's hash, want 2", hashes)
	}
}

// Concurrent revokes of one token all succeed and leave it revoked.
func TestConcurrentRevoke(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, "it-polpost")
	tok, info, err := s.Create(ctx, "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Revoke(ctx, "it-polpost", info.ID) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("concurrent revoke: %v", err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, tokens.ErrUnknown) {
		t.Errorf("after revoke: %v", err)
	}
}
