package reportstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/report"
)

// The functions below are Item, ReportID and NotifierHash as they were
// before they shared allocations: the item must not change.

func oldReportID(source, deliveryID string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + deliveryID))
	return "rep_" + b32.EncodeToString(sum[:10])
}

// oldNotifierHash is the keyed pseudonym written plainly: a fresh HMAC of
// the lower-cased email (at most MaxEmailBytes of it).
func oldNotifierHash(key []byte, email string) string {
	var buf [MaxEmailBytes]byte
	n := copy(buf[:], email)
	for i := range n {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(buf[:n])
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// testKey is the notifier key of the item tests.
var testKey = []byte("flagline-item-test-key-32-bytes!")

func oldItem(s *Store, d Delivery, r *report.Report, bodySum [sha256.Size]byte) map[string]types.AttributeValue {
	retention := s.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	b := &r.Body
	item := map[string]types.AttributeValue{}
	put := func(name, value string) {
		if value != "" {
			item[name] = &types.AttributeValueMemberS{Value: value}
		}
	}
	put(AttrPK, Key(d.Source, d.ID))
	put(AttrSK, SortKey)
	put(AttrType, TypeReport)
	put("report_id", oldReportID(d.Source, d.ID))
	put("source", d.Source)
	put("delivery_id", d.ID)
	put("case_id", r.Link.CaseID)
	h := fnv.New32a()
	h.Write([]byte(Key(d.Source, d.ID)))
	put(AttrCaseShard, r.Link.CaseID+"#"+strconv.Itoa(int(h.Sum32()%CaseShards)))
	put("url", b.URL)
	put("canonical_url", r.Link.Canonical)
	put("platform", r.Link.Platform)
	put("notifier_platform", b.Platform)
	put("category", string(b.Category))
	put("explanation", b.Explanation)
	put("notifier_name", b.Notifier.Name)
	put("notifier_email", b.Notifier.Email)
	put("notifier_hash", oldNotifierHash(testKey, b.Notifier.Email))
	put("language", b.Language)
	if !r.ObservedAt.IsZero() {
		put("observed_at", r.ObservedAt.Format(time.RFC3339))
	}
	if e := b.Evidence; e != nil {
		put("evidence_sha256", e.SHA256)
		put("evidence_archive_url", e.ArchiveURL)
	}
	put("body_sha256", hex.EncodeToString(bodySum[:]))
	put("received_at", d.ReceivedAt.UTC().Format(time.RFC3339Nano))
	if len(r.Countries) > 0 {
		item["countries"] = &types.AttributeValueMemberSS{Value: r.Countries}
	}
	item["good_faith"] = &types.AttributeValueMemberBOOL{Value: true}
	item["expires_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.ReceivedAt.Add(retention).Unix(), 10)}
	return item
}

func randString(r *rand.Rand, n int) string {
	const alphabet = "abcXYZ019_-.@#\x00é€"
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestItemUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	yes := true
	for i := range 2000 {
		body := []byte(randString(r, r.IntN(100)))
		d := Delivery{
			Source:     randString(r, 1+r.IntN(63)),
			ID:         randString(r, 1+r.IntN(300)), // longer than Verify lets through, too
			Body:       body,
			ReceivedAt: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*(r.IntN(25)-12))),
		}
		rep := &report.Report{
			Body: report.Body{
				URL:         randString(r, r.IntN(3)),
				Category:    report.Category(randString(r, r.IntN(3))),
				Explanation: randString(r, r.IntN(50)),
				Notifier:    &report.Notifier{Name: randString(r, r.IntN(3)), Email: randString(r, r.IntN(1100))},
				GoodFaith:   &yes,
				Language:    randString(r, r.IntN(3)),
				Platform:    randString(r, r.IntN(3)),
			},
			Platform: randString(r, r.IntN(3)),
		}
		rep.Link.Canonical, rep.Link.CaseID = randString(r, r.IntN(3)), randString(r, r.IntN(3))
		rep.Link.Platform = randString(r, r.IntN(3))
		if r.IntN(2) == 0 {
			rep.Body.Evidence = &report.Evidence{SHA256: randString(r, r.IntN(3)), ArchiveURL: randString(r, r.IntN(3))}
		}
		if r.IntN(2) == 0 {
			rep.Countries = []string{"IT", "MT"}[:r.IntN(3)]
		}
		if r.IntN(2) == 0 {
			rep.ObservedAt = time.Unix(r.Int64N(4e9), 0).UTC()
		}
		s := &Store{Table: "t", Retention: time.Duration(r.IntN(3)) * 24 * time.Hour, NotifierKey: mustKey(t, testKey)}
		sum := sha256.Sum256(body)
		got, want := s.Item(d, rep, sum), oldItem(s, d, rep, sum)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: item differs:\ngot:  %v\nwant: %v", i, dump(got), dump(want))
		}
		if got, want := ReportID(d.Source, d.ID), oldReportID(d.Source, d.ID); got != want {
			t.Fatalf("ReportID = %q, want %q", got, want)
		}
		if got, want := mustKey(t, testKey).NotifierHash(rep.Body.Notifier.Email), oldNotifierHash(testKey, rep.Body.Notifier.Email); got != want {
			t.Fatalf("NotifierHash = %q, want %q", got, want)
		}
	}
}

func dump(item map[string]types.AttributeValue) string {
	var b strings.Builder
	for k, v := range item {
		b.WriteString(k + "=")
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			b.WriteString(strconv.Quote(v.Value))
		case *types.AttributeValueMemberN:
			b.WriteString(v.Value)
		case *types.AttributeValueMemberSS:
			b.WriteString(strings.Join(v.Value, ","))
		case *types.AttributeValueMemberBOOL:
			b.WriteString(strconv.FormatBool(v.Value))
		}
		b.WriteString(" ")
	}
	return b.String()
}
