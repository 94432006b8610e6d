package webhook_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/webhook"
)

// rotation is a source with an old and a new secret, listed "new old" as
// an operator writes them during a rotation, with HMACs counted.
type rotation struct {
	newer, older string
	src          *webhook.SourceSecrets
	hmacs        interface{ Swap(int64) int64 }
}

func newRotation(t *testing.T) rotation {
	r := rotation{newer: webhook.NewSecret(), older: webhook.NewSecret()}
	r.hmacs = webhook.CountHMACs(t)
	src, err := webhook.ParseSources(`{"ngo":["` + r.newer + `","` + r.older + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	r.src = src["ngo"]
	return r
}

// verify checks one delivery and returns the number of HMACs it took. The
// delivery is signed (with a secret of its own, also counted) before the
// count starts.
func (r rotation) verify(t *testing.T, src *webhook.SourceSecrets, h webhook.Headers, body string) (int64, error) {
	t.Helper()
	r.hmacs.Swap(0)
	err := src.Verify([]byte(body), h)
	return r.hmacs.Swap(0), err
}

// A sender still on the second secret of a rotation costs two HMACs on its
// first delivery and one on each after; when it moves to the first secret,
// one delivery costs two again and the rest one.
func TestSourceSecretsTryLastVerifiedFirst(t *testing.T) {
	r := newRotation(t)
	body := `{"url":"https://t.me/x/1"}`
	steps := []struct {
		secret string
		want   int64
	}{
		{r.older, 2}, {r.older, 1}, {r.older, 1}, {r.older, 1},
		{r.newer, 2}, {r.newer, 1}, {r.newer, 1},
	}
	for i, st := range steps {
		h := signed(t, st.secret, "msg_"+strconv.Itoa(i), time.Now(), body)
		n, err := r.verify(t, r.src, h, body)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if n != st.want {
			t.Errorf("delivery %d took %d HMACs, want %d", i, n, st.want)
		}
	}
}

// A forged delivery is checked against every secret, wherever the hint
// points, and refused; so is one signed by a secret the source does not
// hold, or a valid signature over other bytes. The hint saves work only
// on a match.
func TestSourceSecretsHintNeverAcceptsAWrongSignature(t *testing.T) {
	r := newRotation(t)
	body := `{"url":"https://t.me/x/1"}`
	at := time.Now()
	warm := signed(t, r.older, "msg_warm", at, body)
	if _, err := r.verify(t, r.src, warm, body); err != nil {
		t.Fatal(err) // the hint now points at the old (second) secret
	}
	good := signed(t, r.older, "msg_1", at, body)
	cases := []struct {
		name string
		h    webhook.Headers
		body string
	}{
		{"forged signature", webhook.Headers{ID: "msg_1", Timestamp: good.Timestamp, Signature: "v1,bm90IGEgc2lnbmF0dXJlIG9mIHRoaXMgZGVsaXZlcnkgYXQgYWxsIQ=="}, body},
		{"secret of no source", signed(t, webhook.NewSecret(), "msg_1", at, body), body},
		{"body changed after signing", good, body + " "},
		{"id changed after signing", webhook.Headers{ID: "msg_2", Timestamp: good.Timestamp, Signature: good.Signature}, body},
		{"signature of the last delivery replayed", webhook.Headers{ID: "msg_1", Timestamp: warm.Timestamp, Signature: warm.Signature}, body},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := r.verify(t, r.src, tc.h, tc.body)
			if !errors.Is(err, webhook.ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
			if n != 2 {
				t.Errorf("refused after %d HMACs, want 2 (every secret)", n)
			}
		})
	}
	// The hint still points at the old secret and still helps it.
	if n, err := r.verify(t, r.src, good, body); err != nil || n != 1 {
		t.Fatalf("after the refusals: %d HMACs, %v; want 1, nil", n, err)
	}
	// It is the source's own: another source holding only the new secret
	// refuses what the old one signed, and pays one HMAC for it.
	other, err := webhook.ParseSources(`{"other":["` + r.newer + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.verify(t, other["other"], good, body); !errors.Is(err, webhook.ErrSignature) || n != 1 {
		t.Fatalf("other source: %d HMACs, %v; want 1, ErrSignature", n, err)
	}
}

// Deliveries signed with either secret, and forged ones, arrive at once
// (the local HTTP stack serves them concurrently): each gets the answer
// Verify over the same list gives, whatever the hint does meanwhile.
func TestSourceSecretsConcurrent(t *testing.T) {
	newer, older := webhook.NewSecret(), webhook.NewSecret()
	src, err := webhook.ParseSources(`{"ngo":["` + newer + `","` + older + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"url":"https://t.me/x/1"}`
	at := time.Now()
	byNewer, byOlder := signed(t, newer, "msg_1", at, body), signed(t, older, "msg_1", at, body)
	forged := signed(t, webhook.NewSecret(), "msg_1", at, body)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				var h webhook.Headers
				var want error
				switch (g + i) % 3 {
				case 0:
					h = byNewer
				case 1:
					h = byOlder
				default:
					h, want = forged, webhook.ErrSignature
				}
				if err := src["ngo"].Verify([]byte(body), h); !errors.Is(err, want) {
					errs <- "Verify = " + errString(err) + ", want " + errString(want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// A refresh that changes a source's secrets starts the hint again from the
// new list's order: a hint left pointing past the end of a shorter list, or
// at whatever secret now has that position, must neither fail a good
// delivery nor accept a bad one.
func TestSSMStoreRefreshRestartsHint(t *testing.T) {
	hmacs := webhook.CountHMACs(t)
	newer, older, next := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()
	f := &fakeSSM{params: []webhook.Parameter{secure("/flagline/prod/sources/ngo", newer+" "+older)}}
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStore(f, c, nil)
	ctx := context.Background()
	body := `{"url":"https://t.me/x/1"}`
	deliver := func(secret, id string) (int64, error) {
		t.Helper()
		h := signed(t, secret, id, time.Now(), body)
		src, err := s.Secrets(ctx, "ngo")
		if err != nil {
			t.Fatal(err)
		}
		hmacs.Store(0)
		err = src.Verify([]byte(body), h)
		return hmacs.Load(), err
	}
	for i := range 2 {
		if _, err := deliver(older, "msg_"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := deliver(older, "msg_warm"); err != nil || n != 1 {
		t.Fatalf("before the refresh: %d HMACs, %v; want 1, nil", n, err)
	}

	// The rotation ends: the old secret is removed, one secret left.
	f.params = []webhook.Parameter{secure("/flagline/prod/sources/ngo", newer)}
	c.add(5 * time.Minute)
	if n, err := deliver(older, "msg_3"); !errors.Is(err, webhook.ErrSignature) || n != 1 {
		t.Fatalf("old secret after its removal: %d HMACs, %v; want 1, ErrSignature", n, err)
	}
	if n, err := deliver(newer, "msg_4"); err != nil || n != 1 {
		t.Fatalf("remaining secret: %d HMACs, %v; want 1, nil", n, err)
	}

	// The next rotation lists "next newer": the list is new, so the first
	// delivery signed with the still-current secret tries the listed order.
	f.params = []webhook.Parameter{secure("/flagline/prod/sources/ngo", next+","+newer)}
	c.add(5 * time.Minute)
	if n, err := deliver(newer, "msg_5"); err != nil || n != 2 {
		t.Fatalf("first delivery after the refresh: %d HMACs, %v; want 2, nil", n, err)
	}
	if n, err := deliver(newer, "msg_6"); err != nil || n != 1 {
		t.Fatalf("second delivery after the refresh: %d HMACs, %v; want 1, nil", n, err)
	}
	if n, err := deliver(next, "msg_7"); err != nil || n != 2 {
		t.Fatalf("sender moves to the next secret: %d HMACs, %v; want 2, nil", n, err)
	}
}

// raceEnabled is set under -race (race_test.go).
var raceEnabled bool

// Verifying a delivery of a source in a rotation allocates nothing, hint
// or not (the intake's hot path is allocation-free).
func TestSourceSecretsVerifyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop states")
	}
	newer, older := webhook.NewSecret(), webhook.NewSecret()
	src, err := webhook.ParseSources(`{"ngo":["` + newer + `","` + older + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(benchBody)
	byOlder := signed(t, older, "msg_1", time.Now(), benchBody)
	byNewer := signed(t, newer, "msg_1", time.Now(), benchBody)
	for _, h := range []webhook.Headers{byOlder, byNewer} {
		_ = src["ngo"].Verify(body, h) // warm the pools
	}
	i := 0
	if n := testing.AllocsPerRun(200, func() {
		h := byOlder
		if i++; i%50 == 0 {
			h = byNewer // the hint moves now and then
		}
		if err := src["ngo"].Verify(body, h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Verify allocates %.1f times a delivery, want 0", n)
	}
}
