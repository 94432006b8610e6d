// Package reportstore writes report items to the Flagline table.
//
// A report is stored with exactly one call and no read: a PutItem conditional
// on the key not existing. The key is the source and the sender's delivery id
// (webhook-id), so a retried delivery fails the condition and DynamoDB hands
// back the stored item (ReturnValuesOnConditionCheckFailure=ALL_OLD), from
// which the retry is answered. Report keys spread over as many partitions as
// there are deliveries, so a viral URL makes no hot key at intake.
package reportstore

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/awserr"
	"github.com/flagline/flagline/shared/report"
)

// Table key and item attribute names shared with the other functions.
const (
	AttrPK   = "pk"
	AttrSK   = "sk"
	AttrType = "type"

	// TypeReport is the value of AttrType on report items; stream consumers
	// select report inserts by it.
	TypeReport = "report"
	// SortKey is the sort key of every report item.
	SortKey = "REPORT"
)

// DefaultRetention is how long a report item (and the notifier's personal
// data on it) is kept before DynamoDB's TTL removes it.
const DefaultRetention = 180 * 24 * time.Hour

// Errors callers branch on.
var (
	// ErrIDReused: the delivery id was already used for a different body.
	ErrIDReused = errors.New("delivery id already used for a different report")
	// ErrUnavailable: DynamoDB could not take the write now; try again later.
	ErrUnavailable = errors.New("report store unavailable")
)

// Putter is the DynamoDB call the store makes.
type Putter interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ Putter = (*dynamodb.Client)(nil)

// Store writes report items to Table.
type Store struct {
	DB    Putter
	Table string
	// Retention sets expires_at; zero means DefaultRetention.
	Retention time.Duration
	// NotifierKey keys the notifier pseudonym (notifier_hash). Put stores
	// nothing without one: a report without a pseudonym could not be
	// counted, and an unkeyed one could be reversed.
	NotifierKey NotifierKeySource
}

// Delivery is one received webhook: who sent it, under which delivery id,
// the exact bytes and when it arrived.
type Delivery struct {
	Source     string
	ID         string
	Body       []byte
	ReceivedAt time.Time
}

// Receipt is what the sender is told about a stored report.
type Receipt struct {
	ReportID     string `json:"report_id"`
	CaseID       string `json:"case_id"`
	CanonicalURL string `json:"canonical_url"`
	Duplicate    bool   `json:"duplicate"`
}

// Key returns the partition key of a report item.
func Key(source, deliveryID string) string { return "REPORT#" + source + "#" + deliveryID }

// AttrCaseShard is the hash key of the table's index of a case's reports:
// "<case_id>#<n>", n = FNV-1a 32 of the report item's key mod CaseShards.
// All reports of a viral URL under case_id alone would go to one index
// partition, and DynamoDB throttles the table's writes when an index cannot
// keep up
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html),
// so intake would refuse exactly that URL's reports; spread over CaseShards
// keys, they take CaseShards partitions' throughput. A reader of a case's
// reports queries every CaseShardKey(caseID, 0..CaseShards-1).
const (
	AttrCaseShard = "case_shard"
	CaseShards    = 32
)

// CaseShardKey is the value of AttrCaseShard for shard n of a case.
func CaseShardKey(caseID string, n int) string { return caseID + caseShardSuffix[n] }

// caseShardSuffix is "#0" … "#31", so that the item appends, never formats.
var caseShardSuffix = func() (s [CaseShards]string) {
	for n := range s {
		s[n] = "#" + strconv.Itoa(n)
	}
	return s
}()

// caseShardOf is the shard of the report item with partition key pk.
func caseShardOf(pk []byte) int {
	h := fnv.New32a()
	h.Write(pk)
	return int(h.Sum32() % CaseShards)
}

func appendKey(dst []byte, source, deliveryID string) []byte {
	dst = append(dst, "REPORT#"...)
	dst = append(dst, source...)
	dst = append(dst, '#')
	return append(dst, deliveryID...)
}

// ReportID is a stable public id for a delivery: the same source and delivery
// id always give the same report id.
func ReportID(source, deliveryID string) string {
	var buf [reportIDLen]byte
	return string(appendReportID(buf[:0], source, deliveryID))
}

// reportIDLen is the length of a report id: "rep_" and 16 base32 characters.
const reportIDLen = 4 + 16

// appendReportID appends "rep_" and the base32 of the first 10 bytes of
// SHA-256("<source>\x00<delivery id>").
func appendReportID(dst []byte, source, deliveryID string) []byte {
	var in [256]byte
	sum := sha256.Sum256(append(append(append(in[:0], source...), 0), deliveryID...))
	var out [16]byte
	b32.Encode(out[:], sum[:10])
	return append(append(dst, "rep_"...), out[:]...)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Put stores r as received in d. A repeat of a stored delivery with the same
// body gives the stored receipt with Duplicate set; with another body it gives
// ErrIDReused. Throttling, server faults and timeouts give ErrUnavailable,
// and so does a notifier key that cannot be had (ErrNoNotifierKey, or the
// key source's error).
func (s *Store) Put(ctx context.Context, d Delivery, r *report.Report) (Receipt, error) {
	if s.NotifierKey == nil {
		return Receipt{}, fmt.Errorf("%w: %w", ErrUnavailable, ErrNoNotifierKey)
	}
	key, err := s.NotifierKey.NotifierKey(ctx)
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: notifier key: %w", ErrUnavailable, err)
	}
	sum := sha256.Sum256(d.Body)
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(s.Table),
		Item:                                s.item(d, r, sum, key),
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	_, err = s.DB.PutItem(ctx, in)
	if err == nil {
		return Receipt{
			ReportID:     ReportID(d.Source, d.ID),
			CaseID:       r.Link.CaseID,
			CanonicalURL: r.Link.Canonical,
		}, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return duplicate(ccf.Item, sum)
	}
	return Receipt{}, classify(fmt.Errorf("put report %s: %w", ReportID(d.Source, d.ID), err))
}

func duplicate(old map[string]types.AttributeValue, sum [sha256.Size]byte) (Receipt, error) {
	str := func(name string) string {
		if v, ok := old[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	if str("body_sha256") != hex.EncodeToString(sum[:]) {
		return Receipt{}, ErrIDReused
	}
	return Receipt{
		ReportID:     str("report_id"),
		CaseID:       str("case_id"),
		CanonicalURL: str("canonical_url"),
		Duplicate:    true,
	}, nil
}

// itemValues holds every attribute value of one item, so that they take one
// allocation: Item runs once per report on the intake's hot path.
type itemValues struct {
	s         [itemStrings]types.AttributeValueMemberS
	countries types.AttributeValueMemberSS
	goodFaith types.AttributeValueMemberBOOL
	expiresAt types.AttributeValueMemberN
}

// itemStrings is the number of string attributes Item may set.
const itemStrings = 23

// Item builds the report item. The attribute values share one allocation and
// the strings Item derives (key, ids, hashes, times) share another. The
// notifier pseudonym is keyed with the store's NotifierKey when that is a
// fixed NotifierKey, and left out otherwise (Put resolves any source).
func (s *Store) Item(d Delivery, r *report.Report, bodySum [sha256.Size]byte) map[string]types.AttributeValue {
	key, _ := s.NotifierKey.(NotifierKey)
	return s.item(d, r, bodySum, key)
}

func (s *Store) item(d Delivery, r *report.Report, bodySum [sha256.Size]byte, key NotifierKey) map[string]types.AttributeValue {
	retention := s.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	b := &r.Body

	// The derived strings, written one after the other into one buffer and
	// then cut out of one string.
	var buf [512]byte
	derived := buf[:0]
	var ends [8]int
	derived = appendKey(derived, d.Source, d.ID)
	ends[0] = len(derived)
	derived = appendReportID(derived, d.Source, d.ID)
	ends[1] = len(derived)
	if !key.IsZero() {
		derived = key.appendNotifierHash(derived, b.Notifier.Email)
	}
	ends[2] = len(derived)
	if !r.ObservedAt.IsZero() {
		derived = r.ObservedAt.AppendFormat(derived, time.RFC3339)
	}
	ends[3] = len(derived)
	derived = hex.AppendEncode(derived, bodySum[:])
	ends[4] = len(derived)
	derived = d.ReceivedAt.UTC().AppendFormat(derived, time.RFC3339Nano)
	ends[5] = len(derived)
	derived = strconv.AppendInt(derived, d.ReceivedAt.Add(retention).Unix(), 10)
	ends[6] = len(derived)
	derived = append(append(derived, r.Link.CaseID...), caseShardSuffix[caseShardOf(derived[:ends[0]])]...)
	ends[7] = len(derived)
	all := string(derived)
	part := func(i int) string {
		if i == 0 {
			return all[:ends[0]]
		}
		return all[ends[i-1]:ends[i]]
	}

	v := new(itemValues)
	strs := v.s[:0]
	item := make(map[string]types.AttributeValue, 25)
	put := func(name, value string) {
		if value == "" {
			return
		}
		strs = append(strs, types.AttributeValueMemberS{Value: value})
		item[name] = &strs[len(strs)-1]
	}
	put(AttrPK, part(0))
	put(AttrSK, SortKey)
	put(AttrType, TypeReport)
	put("report_id", part(1))
	put("source", d.Source)
	put("delivery_id", d.ID)
	put("case_id", r.Link.CaseID)
	put(AttrCaseShard, part(7))
	put("url", b.URL)
	put("canonical_url", r.Link.Canonical)
	// platform is derived from the URL's host; the notifier's own text, if
	// any, stays on the report item as notifier_platform and is never shown
	// to contact points (cases and alerts take the URL's).
	put("platform", r.Link.Platform)
	put("notifier_platform", b.Platform)
	put("category", string(b.Category))
	put("explanation", b.Explanation)
	put("notifier_name", b.Notifier.Name)
	put("notifier_email", b.Notifier.Email)
	put("notifier_hash", part(2))
	put("language", b.Language)
	put("observed_at", part(3)) // empty, so left out, when not given
	if e := b.Evidence; e != nil {
		put("evidence_sha256", e.SHA256)
		put("evidence_archive_url", e.ArchiveURL)
	}
	put("body_sha256", part(4))
	put("received_at", part(5))
	if len(r.Countries) > 0 {
		v.countries.Value = r.Countries
		item["countries"] = &v.countries
	}
	v.goodFaith.Value = true
	item["good_faith"] = &v.goodFaith
	v.expiresAt.Value = part(6)
	item["expires_at"] = &v.expiresAt
	return item
}

func classify(err error) error {
	if awserr.Retryable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
