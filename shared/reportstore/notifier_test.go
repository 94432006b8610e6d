package reportstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/report"
)

func mustKey(t testing.TB, key []byte) NotifierKey {
	t.Helper()
	k, err := ParseNotifierKey(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNotifierHashIsKeyed(t *testing.T) {
	a := mustKey(t, []byte(strings.Repeat("a", 32)))
	b := mustKey(t, []byte(strings.Repeat("b", 32)))
	const email = "Desk@Monitor.example.org"
	got := a.NotifierHash(email)
	if len(got) != 16 {
		t.Fatalf("pseudonym %q is not 16 hex characters", got)
	}
	if again := a.NotifierHash("desk@monitor.example.org"); again != got {
		t.Errorf("same address, other case: %q, want %q", again, got)
	}
	if other := a.NotifierHash("desk2@monitor.example.org"); other == got {
		t.Error("two addresses share a pseudonym")
	}
	if underB := b.NotifierHash(email); underB == got {
		t.Error("another key gives the same pseudonym")
	}
	// Anyone can compute the unkeyed hash from a list of addresses.
	sum := sha256.Sum256([]byte("desk@monitor.example.org"))
	if unkeyed := hex.EncodeToString(sum[:8]); got == unkeyed {
		t.Errorf("pseudonym %q is the unkeyed SHA-256 of the address", got)
	}
}

func TestParseNotifierKey(t *testing.T) {
	if _, err := ParseNotifierKey(NewNotifierKey()); err != nil {
		t.Fatalf("NewNotifierKey: %v", err)
	}
	if NewNotifierKey() == NewNotifierKey() {
		t.Fatal("NewNotifierKey repeats")
	}
	short := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 31)))
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 65)))
	for _, bad := range []string{"", "not base64!", short, long} {
		if _, err := ParseNotifierKey(bad); err == nil {
			t.Errorf("ParseNotifierKey(%q) accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error reveals the key: %v", err)
		}
	}
}

// Pseudonymising is on the intake's hot path: nothing is allocated.
func TestNotifierHashAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	k := mustKey(t, []byte(strings.Repeat("a", 32)))
	var buf [16]byte
	k.appendNotifierHash(buf[:0], "warm@pool.example") // warm the pool
	long := strings.Repeat("x", 2000)
	if n := testing.AllocsPerRun(100, func() {
		k.appendNotifierHash(buf[:0], "Desk@Monitor.example.org")
		k.appendNotifierHash(buf[:0], long)
	}); n != 0 {
		t.Fatalf("%v allocations per pseudonym", n)
	}
}

type putFunc func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)

func (f putFunc) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return f(ctx, in, opts...)
}

type failingKeys struct{ err error }

func (f failingKeys) NotifierKey(context.Context) (NotifierKey, error) { return NotifierKey{}, f.err }

// Without a notifier key nothing is stored, and the caller is told to try
// again later (ErrUnavailable: intake answers 503).
func TestPutRefusesWithoutNotifierKey(t *testing.T) {
	body := []byte(`{"url":"https://t.me/x/1","category":"smuggling_offer","explanation":"Boat offer.","notifier":{"name":"Desk","email":"desk@ngo.example"},"good_faith":true}`)
	r, err := report.Decode(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := Delivery{Source: "demo", ID: "msg_1", Body: body, ReceivedAt: time.Now()}
	puts := 0
	db := putFunc(func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
		puts++
		return &dynamodb.PutItemOutput{}, nil
	})
	for name, keys := range map[string]NotifierKeySource{
		"no key source":   nil,
		"zero key":        NotifierKey{},
		"key unavailable": failingKeys{errors.New("ParameterNotFound")},
	} {
		s := &Store{DB: db, Table: "t", NotifierKey: keys}
		if _, err := s.Put(context.Background(), d, r); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Put = %v, want ErrUnavailable", name, err)
		}
	}
	if puts != 0 {
		t.Fatalf("%d reports stored without a notifier key", puts)
	}
	key := mustKey(t, []byte(strings.Repeat("a", 32)))
	var hash string
	s := &Store{DB: putFunc(func(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
		if v, ok := in.Item["notifier_hash"].(*types.AttributeValueMemberS); ok {
			hash = v.Value
		}
		return &dynamodb.PutItemOutput{}, nil
	}), Table: "t", NotifierKey: key}
	if _, err := s.Put(context.Background(), d, r); err != nil {
		t.Fatal(err)
	}
	if want := key.NotifierHash("desk@ngo.example"); hash != want {
		t.Fatalf("stored notifier_hash %q, want %q", hash, want)
	}
}
