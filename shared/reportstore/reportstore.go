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

// ReportID is a stable public id for a delivery: the same source and delivery
// id always give the same report id.
func ReportID(source, deliveryID string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + deliveryID))
	return "rep_" + b32.EncodeToString(sum[:10])
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Put stores r as received in d. A repeat of a stored delivery with the same
// body gives the stored receipt with Duplicate set; with another body it gives
// ErrIDReused. Throttling, server faults and timeouts give ErrUnavailable.
func (s *Store) Put(ctx context.Context, d Delivery, r *report.Report) (Receipt, error) {
	sum := sha256.Sum256(d.Body)
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(s.Table),
		Item:                                s.Item(d, r, sum),
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	_, err := s.DB.PutItem(ctx, in)
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

// Item builds the report item. All string attributes share one allocation:
// this runs once per report on the intake's hot path.
func (s *Store) Item(d Delivery, r *report.Report, bodySum [sha256.Size]byte) map[string]types.AttributeValue {
	retention := s.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	b := &r.Body
	strs := make([]types.AttributeValueMemberS, 0, 24)
	item := make(map[string]types.AttributeValue, 24)
	put := func(name, value string) {
		if value == "" {
			return
		}
		strs = append(strs, types.AttributeValueMemberS{Value: value})
		item[name] = &strs[len(strs)-1]
	}
	put(AttrPK, Key(d.Source, d.ID))
	put(AttrSK, SortKey)
	put(AttrType, TypeReport)
	put("report_id", ReportID(d.Source, d.ID))
	put("source", d.Source)
	put("delivery_id", d.ID)
	put("case_id", r.Link.CaseID)
	put("url", b.URL)
	put("canonical_url", r.Link.Canonical)
	put("platform", r.Platform)
	put("category", string(b.Category))
	put("explanation", b.Explanation)
	put("notifier_name", b.Notifier.Name)
	put("notifier_email", b.Notifier.Email)
	put("notifier_hash", NotifierHash(b.Notifier.Email))
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

// NotifierHash pseudonymises a notifier's email so cases can count distinct
// notifiers without holding personal data: a truncated SHA-256 of the
// lower-cased address.
func NotifierHash(email string) string {
	var buf [MaxEmailBytes]byte
	n := copy(buf[:], email)
	for i := range n {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	sum := sha256.Sum256(buf[:n])
	return hex.EncodeToString(sum[:8])
}

// MaxEmailBytes bounds what NotifierHash reads; longer input is refused by validation.
const MaxEmailBytes = 4 * report.MaxEmail

func classify(err error) error {
	if awserr.Retryable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
