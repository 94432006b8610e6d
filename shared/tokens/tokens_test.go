package tokens

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fakeDB is a DynamoDB stand-in of funcs; a call with no func fails the
// test.
type fakeDB struct {
	t        *testing.T
	get      func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	query    func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
	transact func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
	calls    int
}

func (f *fakeDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.calls++
	if f.get == nil {
		f.t.Fatalf("unexpected GetItem %v", in.Key)
	}
	return f.get(in)
}

func (f *fakeDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.calls++
	if f.query == nil {
		f.t.Fatal("unexpected Query")
	}
	return f.query(in)
}

func (f *fakeDB) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.calls++
	if f.transact == nil {
		f.t.Fatal("unexpected TransactWriteItems")
	}
	return f.transact(in)
}

func canceled(codes ...string) error {
	e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
	for _, c := range codes {
		e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
	}
	return e
}

// plain is an item or key as Go values, to compare and print.
func plain(t *testing.T, m map[string]types.AttributeValue) string {
	t.Helper()
	var v map[string]any
	if err := attributevalue.UnmarshalMap(m, &v); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(v)
}

var tokenShape = regexp.MustCompile(`^flt_[A-Za-z0-9_-]{43}$`)

// A malformed token is refused without a read: a guesser costs no
// DynamoDB capacity for it.
func TestLookupMalformedMakesNoRead(t *testing.T) {
	good := Prefix + strings.Repeat("A", 43)
	if !WellFormed(good) {
		t.Fatalf("%q should be well formed", good)
	}
	for _, tok := range []string{
		"",
		"flt_",
		strings.TrimPrefix(good, "flt_"),
		"flx_" + strings.Repeat("A", 43),
		good[:len(good)-1],
		good + "A",
		Prefix + strings.Repeat("A", 42) + "=",       // padding is not base64url raw
		Prefix + strings.Repeat("A", 42) + "+",       // standard alphabet
		Prefix + strings.Repeat("A", 42) + "B",       // non-zero trailing bits: not what an encoder makes
		"FLT_" + strings.Repeat("A", 43),             // prefix is case sensitive
		"Bearer " + Prefix + strings.Repeat("A", 36), // the header, not the token
	} {
		db := &fakeDB{t: t}
		s := &Store{DB: db, Table: "t"}
		if _, err := s.Lookup(context.Background(), tok); !errors.Is(err, ErrUnknown) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknown", tok, err)
		}
		if db.calls != 0 {
			t.Errorf("Lookup(%q) made %d calls", tok, db.calls)
		}
	}
}

// Create writes both items in one transaction, each conditional on not
// existing, checks the directory entry, stores the hash and never the
// token text, and returns a token that has the documented shape.
func TestCreateTransaction(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 42, 0, 0, time.UTC)
	var got *dynamodb.TransactWriteItemsInput
	db := &fakeDB{t: t, transact: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		got = in
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}}
	s := &Store{DB: db, Table: "flagline", Now: func() time.Time { return at }}
	token, info, err := s.Create(context.Background(), "it-polpost")
	if err != nil {
		t.Fatal(err)
	}
	if !tokenShape.MatchString(token) || !WellFormed(token) {
		t.Errorf("token %q lacks the shape flt_ + base64url(32 bytes)", token)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(info.ID) || info.ContactPoint != "it-polpost" || !info.CreatedAt.Equal(at) || info.Revoked() {
		t.Errorf("info %+v", info)
	}
	if db.calls != 1 || len(got.TransactItems) != 3 {
		t.Fatalf("%d calls, transaction %+v", db.calls, got)
	}
	tok, ref, check := got.TransactItems[0].Put, got.TransactItems[1].Put, got.TransactItems[2].ConditionCheck
	if tok == nil || ref == nil || check == nil {
		t.Fatalf("transaction items: %+v", got.TransactItems)
	}
	var ti tokenItem
	var ri refItem
	if err := attributevalue.UnmarshalMap(tok.Item, &ti); err != nil {
		t.Fatal(err)
	}
	if err := attributevalue.UnmarshalMap(ref.Item, &ri); err != nil {
		t.Fatal(err)
	}
	hash := Hash(token)
	if want := (tokenItem{PK: "TOKEN#" + hash, SK: "TOKEN", Type: "api_token", TokenID: info.ID, ContactPoint: "it-polpost", CreatedAt: at}); fmt.Sprint(ti) != fmt.Sprint(want) {
		t.Errorf("token item %+v, want %+v", ti, want)
	}
	if want := (refItem{PK: "CONTACT#it-polpost", SK: "TOKEN#" + info.ID, Type: "api_token_ref", TokenID: info.ID, ContactPoint: "it-polpost", TokenHash: hash, CreatedAt: at}); fmt.Sprint(ri) != fmt.Sprint(want) {
		t.Errorf("ref item %+v, want %+v", ri, want)
	}
	for _, p := range []*types.Put{tok, ref} {
		if aws.ToString(p.ConditionExpression) != "attribute_not_exists(pk)" {
			t.Errorf("put %v condition %q", p.Item["pk"], aws.ToString(p.ConditionExpression))
		}
		if strings.Contains(plain(t, p.Item), token[len(Prefix):]) {
			t.Errorf("item %v holds the token text", p.Item["pk"])
		}
	}
	if plain(t, check.Key) != plain(t, key("CONTACT#it-polpost", "CONTACT")) || aws.ToString(check.ConditionExpression) != "attribute_exists(pk)" {
		t.Errorf("directory check %+v", check)
	}
	if _, _, err := s.Create(context.Background(), "it-polpost"); err != nil {
		t.Fatal(err)
	}
	var again tokenItem
	if err := attributevalue.UnmarshalMap(got.TransactItems[0].Put.Item, &again); err != nil {
		t.Fatal(err)
	}
	if again.PK == ti.PK || again.TokenID == ti.TokenID {
		t.Errorf("two tokens share a hash or an id: %s %s", again.PK, again.TokenID)
	}
}

// Which condition failed decides the answer.
func TestCreateConditionFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		errs   []error
		want   error
		writes int
	}{
		{"no directory entry", []error{canceled("None", "None", "ConditionalCheckFailed")}, ErrNoContactPoint, 1},
		{"id taken, then free", []error{canceled("None", "ConditionalCheckFailed", "None"), nil}, nil, 2},
		{"id always taken", []error{canceled("None", "ConditionalCheckFailed", "None"), canceled("None", "ConditionalCheckFailed", "None"), canceled("None", "ConditionalCheckFailed", "None")}, errIDTaken, 3},
		{"throttled", []error{canceled("None", "TransactionConflict", "None")}, &types.TransactionCanceledException{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			db := &fakeDB{t: t, transact: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				err := tc.errs[n]
				n++
				return &dynamodb.TransactWriteItemsOutput{}, err
			}}
			token, _, err := (&Store{DB: db, Table: "t"}).Create(context.Background(), "it-polpost")
			var target *types.TransactionCanceledException
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("err %v", err)
			case tc.want == nil:
			case errors.As(tc.want, &target):
				if !errors.As(err, &target) {
					t.Errorf("err %v, want the transaction error", err)
				}
			case !errors.Is(err, tc.want):
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if (err == nil) != (token != "") {
				t.Errorf("token %q with err %v", token, err)
			}
			if n != tc.writes {
				t.Errorf("%d writes, want %d", n, tc.writes)
			}
		})
	}
	if _, _, err := (&Store{DB: &fakeDB{t: t}, Table: "t"}).Create(context.Background(), ""); !errors.Is(err, ErrNoContactPoint) {
		t.Errorf("empty contact point: %v", err)
	}
}

func refOut(t *testing.T, r *refItem) *dynamodb.GetItemOutput {
	t.Helper()
	if r == nil {
		return &dynamodb.GetItemOutput{}
	}
	m, err := attributevalue.MarshalMap(r)
	if err != nil {
		t.Fatal(err)
	}
	return &dynamodb.GetItemOutput{Item: m}
}

// Revoke: unknown id → ErrNotFound with no write; already revoked → no
// error and no write; active → one transaction updating both items on the
// condition that they exist and are not revoked.
func TestRevoke(t *testing.T) {
	revoked := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	active := &refItem{PK: "CONTACT#it", SK: "TOKEN#0123456789ab", Type: TypeRef, TokenID: "0123456789ab", ContactPoint: "it", TokenHash: strings.Repeat("ab", 32)}
	gone := *active
	gone.RevokedAt = &revoked

	db := &fakeDB{t: t, get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return refOut(t, nil), nil }}
	if err := (&Store{DB: db, Table: "t"}).Revoke(context.Background(), "it", "0123456789ab"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}

	db = &fakeDB{t: t, get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return refOut(t, &gone), nil }}
	if err := (&Store{DB: db, Table: "t"}).Revoke(context.Background(), "it", "0123456789ab"); err != nil || db.calls != 1 {
		t.Errorf("already revoked: %v after %d calls", err, db.calls)
	}

	var tx *dynamodb.TransactWriteItemsInput
	var read *dynamodb.GetItemInput
	db = &fakeDB{t: t,
		get: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			read = in
			return refOut(t, active), nil
		},
		transact: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			tx = in
			return &dynamodb.TransactWriteItemsOutput{}, nil
		}}
	if err := (&Store{DB: db, Table: "t"}).Revoke(context.Background(), "it", "0123456789ab"); err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(read.ConsistentRead) {
		t.Error("revoke read the token eventually consistent")
	}
	if len(tx.TransactItems) != 2 {
		t.Fatalf("transaction %+v", tx.TransactItems)
	}
	keys := []string{plain(t, tokenKey(active.TokenHash)), plain(t, refKey("it", "0123456789ab"))}
	for i, it := range tx.TransactItems {
		u := it.Update
		if u == nil || plain(t, u.Key) != keys[i] || aws.ToString(u.ConditionExpression) != "attribute_exists(pk) AND attribute_not_exists(revoked_at)" ||
			aws.ToString(u.UpdateExpression) != "SET revoked_at = :at" {
			t.Errorf("update %d: %+v", i, u)
		}
	}

	// Lost a race to a concurrent revoke: the condition fails, the token
	// is revoked all the same.
	reads := 0
	db = &fakeDB{t: t,
		get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			reads++
			if reads == 1 {
				return refOut(t, active), nil
			}
			return refOut(t, &gone), nil
		},
		transact: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, canceled("ConditionalCheckFailed", "ConditionalCheckFailed")
		}}
	if err := (&Store{DB: db, Table: "t"}).Revoke(context.Background(), "it", "0123456789ab"); err != nil {
		t.Errorf("concurrent revoke: %v", err)
	}
}

// A revoked or missing token is ErrUnknown; an active one names its
// contact point; the read is strongly consistent.
func TestLookup(t *testing.T) {
	token := Prefix + strings.Repeat("A", 43)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	item := func(revoked bool) *dynamodb.GetItemOutput {
		it := tokenItem{PK: "TOKEN#" + Hash(token), SK: "TOKEN", Type: TypeToken, TokenID: "0123456789ab", ContactPoint: "it", CreatedAt: created}
		if revoked {
			it.RevokedAt = &created
		}
		m, err := attributevalue.MarshalMap(it)
		if err != nil {
			t.Fatal(err)
		}
		return &dynamodb.GetItemOutput{Item: m}
	}
	for _, tc := range []struct {
		name string
		out  *dynamodb.GetItemOutput
		want error
	}{
		{"active", item(false), nil},
		{"revoked", item(true), ErrUnknown},
		{"missing", &dynamodb.GetItemOutput{}, ErrUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{t: t, get: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
				if !aws.ToBool(in.ConsistentRead) || plain(t, in.Key) != plain(t, tokenKey(Hash(token))) {
					t.Errorf("read %+v", in)
				}
				return tc.out, nil
			}}
			info, err := (&Store{DB: db, Table: "t"}).Lookup(context.Background(), token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && (info.ContactPoint != "it" || info.ID != "0123456789ab" || !info.CreatedAt.Equal(created)) {
				t.Errorf("info %+v", info)
			}
		})
	}
}
