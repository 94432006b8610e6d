// Package silences keeps the silences of contact points: while a desk is
// silenced (on holiday, a shift with nobody on duty), the alerts it would
// get go to the EU coordinator instead, and when the silence ends the desk
// gets one digest of what it missed.
//
// Each silence is one item beside its contact point's directory entry,
// pk CONTACT#<cp>, sk SILENCE#<silence_id>, type "silence". The silences
// not yet caught up (active, or ended and awaiting their digest) are listed
// by one index item, pk SILENCES, sk INDEX, whose version moves on with
// every change, so readers need one GetItem and one BatchGetItem, never a
// Scan, and two writers cannot interleave (the same optimistic concurrency
// as the contact directory's index).
package silences

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/ddbbatch"
)

// Item types and keys.
const (
	TypeSilence = "silence"
	TypeIndex   = "silence_index"

	IndexKey     = "SILENCES"
	IndexSortKey = "INDEX"
	sortPrefix   = "SILENCE#"
)

// Limits of a silence.
const (
	// MaxDuration is the longest silence: a desk silenced for longer should
	// leave the directory instead.
	MaxDuration = 90 * 24 * time.Hour
	// MaxReason is the longest reason, in characters.
	MaxReason = 500
	// getAttempts bounds the BatchGetItem calls reading 100 silences: the
	// first and the retries of what DynamoDB left unprocessed.
	getAttempts = 9
	// indexAttempts bounds the retries of a write that lost the race for
	// the index to another writer.
	indexAttempts = 12
	idBytes       = 6 // a silence id is 12 lowercase hex digits
)

var (
	// ErrNotFound: the contact point has no silence with that id.
	ErrNotFound = errors.New("no such silence")
	// ErrInvalid: the silence asked for is malformed (until not in the
	// future or more than MaxDuration ahead, no reason, …).
	ErrInvalid = errors.New("invalid silence")
	// ErrCoordinator: the contact point is an EU coordinator, which is where
	// a silenced desk's alerts go; it cannot be silenced itself.
	ErrCoordinator = errors.New("the EU coordinator cannot be silenced")
	// ErrNoContactPoint: the contact point is not in the stored directory.
	ErrNoContactPoint = errors.New("contact point is not in the stored contact directory")
	// ErrConflict: the index kept changing under the write (many writers
	// at once); trying again later succeeds.
	ErrConflict = errors.New("the silence index kept changing; try again")
)

// Silence is one silence of a contact point.
type Silence struct {
	ID, ContactPoint, Reason, CreatedBy string
	From, Until                         time.Time
	// ExpiredAt is set when the silence was ended early (Expire).
	ExpiredAt time.Time
	// CaughtUpAt is set when the desk's catch-up digest was sent.
	CaughtUpAt time.Time
}

// ActiveAt reports whether the silence holds at t: From <= t < Until and
// not expired at or before t.
func (s Silence) ActiveAt(t time.Time) bool {
	return !t.Before(s.From) && t.Before(s.EndedAt())
}

// EndedAt is when the silence ends (or ended): Until, or ExpiredAt when it
// was expired before that.
func (s Silence) EndedAt() time.Time {
	if !s.ExpiredAt.IsZero() && s.ExpiredAt.Before(s.Until) {
		return s.ExpiredAt
	}
	return s.Until
}

// DB is the part of the DynamoDB client the store uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store reads and writes silences in the table.
type Store struct {
	DB    DB
	Table string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// silenceItem is a silence's item. Times are RFC 3339 in UTC, whole
// seconds, so that they compare as strings.
type silenceItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Type         string `dynamodbav:"type"`
	SilenceID    string `dynamodbav:"silence_id"`
	ContactPoint string `dynamodbav:"contact_point"`
	From         string `dynamodbav:"from"`
	Until        string `dynamodbav:"until"`
	Reason       string `dynamodbav:"reason"`
	CreatedBy    string `dynamodbav:"created_by"`
	ExpiredAt    string `dynamodbav:"expired_at,omitempty"`
	CaughtUpAt   string `dynamodbav:"caught_up_at,omitempty"`
}

// indexItem lists "<cp>#<silence_id>" of the silences not yet caught up.
// ids is a list, not a set, because a set cannot be empty.
type indexItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	Type      string   `dynamodbav:"type"`
	IDs       []string `dynamodbav:"ids"`
	Version   int64    `dynamodbav:"version"`
	UpdatedAt string   `dynamodbav:"updated_at"`
}

func stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func parseStamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

func (it silenceItem) silence() (Silence, error) {
	s := Silence{ID: it.SilenceID, ContactPoint: it.ContactPoint, Reason: it.Reason, CreatedBy: it.CreatedBy}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&s.From, it.From}, {&s.Until, it.Until}, {&s.ExpiredAt, it.ExpiredAt}, {&s.CaughtUpAt, it.CaughtUpAt}} {
		t, err := parseStamp(f.src)
		if err != nil {
			return Silence{}, fmt.Errorf("decode silence %s of %s: %w", it.SilenceID, it.ContactPoint, err)
		}
		*f.dst = t
	}
	return s, nil
}

func itemOf(s Silence) silenceItem {
	it := silenceItem{
		PK: contacts.Key(s.ContactPoint), SK: sortPrefix + s.ID, Type: TypeSilence,
		SilenceID: s.ID, ContactPoint: s.ContactPoint, From: stamp(s.From), Until: stamp(s.Until),
		Reason: s.Reason, CreatedBy: s.CreatedBy,
	}
	if !s.ExpiredAt.IsZero() {
		it.ExpiredAt = stamp(s.ExpiredAt)
	}
	if !s.CaughtUpAt.IsZero() {
		it.CaughtUpAt = stamp(s.CaughtUpAt)
	}
	return it
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func silenceKey(contactPoint, id string) map[string]types.AttributeValue {
	return key(contacts.Key(contactPoint), sortPrefix+id)
}

func indexID(contactPoint, id string) string { return contactPoint + "#" + id }

// Add silences contactPoint from now until until, for reason, on behalf of
// createdBy. The contact point must be in the stored directory and must not
// be a coordinator (checked in the same transaction that writes the
// silence, so a directory change at that moment cannot slip between);
// until must be in the future and at most MaxDuration ahead.
func (s *Store) Add(ctx context.Context, contactPoint string, until time.Time, reason, createdBy string) (Silence, error) {
	now := s.now()
	reason = strings.TrimSpace(reason)
	switch {
	case contactPoint == "":
		return Silence{}, fmt.Errorf("%w: a contact point is required", ErrInvalid)
	case !until.After(now):
		return Silence{}, fmt.Errorf("%w: until %s is not in the future", ErrInvalid, stamp(until))
	case until.Sub(now) > MaxDuration:
		return Silence{}, fmt.Errorf("%w: until %s is more than %d days ahead", ErrInvalid, stamp(until), int(MaxDuration.Hours()/24))
	case reason == "":
		return Silence{}, fmt.Errorf("%w: a reason is required", ErrInvalid)
	case utf8.RuneCountInString(reason) > MaxReason || !utf8.ValidString(reason):
		return Silence{}, fmt.Errorf("%w: the reason is at most %d characters of UTF-8", ErrInvalid, MaxReason)
	}
	id := make([]byte, idBytes)
	if _, err := rand.Read(id); err != nil {
		return Silence{}, fmt.Errorf("add silence: %w", err)
	}
	sil := Silence{
		ID: hex.EncodeToString(id), ContactPoint: contactPoint, Reason: reason, CreatedBy: createdBy,
		From: now, Until: until.UTC().Truncate(time.Second),
	}
	item, err := attributevalue.MarshalMap(itemOf(sil))
	if err != nil {
		return Silence{}, fmt.Errorf("encode silence: %w", err)
	}
	err = s.withIndex(ctx, func(ids []string) ([]string, []types.TransactWriteItem) {
		return append(ids, indexID(contactPoint, sil.ID)), []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(s.Table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			// The directory entry exists and its countries (a string set)
			// do not contain the coordinator's code. contains() works on
			// sets
			// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html).
			{ConditionCheck: &types.ConditionCheck{
				TableName:                 aws.String(s.Table),
				Key:                       key(contacts.Key(contactPoint), contacts.SortKey),
				ConditionExpression:       aws.String("attribute_exists(pk) AND NOT contains(countries, :eu)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":eu": &types.AttributeValueMemberS{Value: contacts.Coordinator}},
			}},
		}
	}, func(reasons []types.CancellationReason) error {
		if len(reasons) < 2 || aws.ToString(reasons[1].Code) != "ConditionalCheckFailed" {
			return nil
		}
		// Which half of the condition failed: read the entry.
		out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(s.Table),
			Key:            key(contacts.Key(contactPoint), contacts.SortKey),
			ConsistentRead: aws.Bool(true),
		})
		switch {
		case err != nil:
			return fmt.Errorf("read directory entry %s: %w", contactPoint, err)
		case out.Item == nil:
			return fmt.Errorf("silence %s: %w", contactPoint, ErrNoContactPoint)
		}
		return fmt.Errorf("silence %s: %w", contactPoint, ErrCoordinator)
	})
	if err != nil {
		return Silence{}, err
	}
	return sil, nil
}

// withIndex runs one transaction that rewrites the index (the ids that
// change gives from the ids it lists) and makes the writes it gives, on the
// condition that the index is still the version read. When another writer
// moved the index on first, it reads it again and retries. refused turns a
// cancelled transaction's reasons (index last) into the caller's error, or
// nil when it has none to give.
func (s *Store) withIndex(ctx context.Context, change func(ids []string) ([]string, []types.TransactWriteItem), refused func([]types.CancellationReason) error) error {
	for attempt := 1; ; attempt++ {
		idx, err := s.readIndex(ctx)
		if err != nil {
			return err
		}
		ids, items := change(slices.Clone(idx.IDs))
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if ids == nil {
			ids = []string{}
		}
		next, err := attributevalue.MarshalMap(indexItem{
			PK: IndexKey, SK: IndexSortKey, Type: TypeIndex, IDs: ids, Version: idx.Version + 1, UpdatedAt: stamp(s.now()),
		})
		if err != nil {
			return fmt.Errorf("encode silence index: %w", err)
		}
		put := &types.Put{TableName: aws.String(s.Table), Item: next}
		if idx.Version == 0 {
			put.ConditionExpression = aws.String("attribute_not_exists(pk)")
		} else {
			put.ConditionExpression = aws.String("#version = :version")
			put.ExpressionAttributeNames = map[string]string{"#version": "version"}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{
				":version": &types.AttributeValueMemberN{Value: fmt.Sprint(idx.Version)},
			}
		}
		items = append(items, types.TransactWriteItem{Put: put})
		_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		// A cancelled transaction says, per action and in order, which
		// condition failed
		// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return fmt.Errorf("write silences to %s: %w", s.Table, err)
		}
		reasons := canceled.CancellationReasons
		if e := refused(reasons); e != nil {
			return e
		}
		indexLost := len(reasons) == len(items) && aws.ToString(reasons[len(items)-1].Code) == "ConditionalCheckFailed"
		// TransactionConflict: another transaction held one of the items.
		conflict := slices.ContainsFunc(reasons, func(r types.CancellationReason) bool {
			return aws.ToString(r.Code) == "TransactionConflict"
		})
		if !indexLost && !conflict {
			return fmt.Errorf("write silences to %s: %w", s.Table, err)
		}
		if attempt >= indexAttempts {
			return fmt.Errorf("write silences to %s: %w", s.Table, ErrConflict)
		}
		// Back off with jitter so that racing writers spread out.
		var b [1]byte
		_, _ = rand.Read(b[:])
		wait := time.Duration(10+int(b[0])%40) * time.Millisecond * time.Duration(min(attempt, 5))
		if err := ddbbatch.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// readIndex reads the index (strongly consistent: a write that just
// succeeded is seen). Version 0 means there is none yet.
func (s *Store) readIndex(ctx context.Context) (indexItem, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            key(IndexKey, IndexSortKey),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return indexItem{}, fmt.Errorf("read silence index from %s: %w", s.Table, err)
	}
	var idx indexItem
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &idx); err != nil {
			return indexItem{}, fmt.Errorf("decode silence index: %w", err)
		}
	}
	return idx, nil
}

// List returns contactPoint's silences in the index (active, or ended and
// awaiting their digest), or every one when contactPoint is "", sorted by
// From.
func (s *Store) List(ctx context.Context, contactPoint string) ([]Silence, error) {
	all, err := s.Pending(ctx)
	if err != nil || contactPoint == "" {
		return all, err
	}
	return slices.DeleteFunc(all, func(x Silence) bool { return x.ContactPoint != contactPoint }), nil
}

// Pending returns every silence the index lists, sorted by From: one
// GetItem and one BatchGetItem per hundred silences.
func (s *Store) Pending(ctx context.Context) ([]Silence, error) {
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	out := []Silence{}
	for chunk := range slices.Chunk(idx.IDs, ddbbatch.MaxGetKeys) {
		keys := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, ref := range chunk {
			cp, id, ok := strings.Cut(ref, "#")
			if !ok {
				return nil, fmt.Errorf("silence index lists %q, not <contact point>#<silence id>", ref)
			}
			keys = append(keys, silenceKey(cp, id))
		}
		req := map[string]types.KeysAndAttributes{s.Table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		err := ddbbatch.Get(ctx, s.DB, req, getAttempts, func(_ string, item map[string]types.AttributeValue) error {
			var it silenceItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return fmt.Errorf("decode silence %v: %w", item["sk"], err)
			}
			sil, err := it.silence()
			if err != nil {
				return err
			}
			out = append(out, sil)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read silences from %s: %w", s.Table, err)
		}
	}
	slices.SortFunc(out, func(a, b Silence) int {
		return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.ContactPoint, b.ContactPoint), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// get reads one silence; ErrNotFound when there is none.
func (s *Store) get(ctx context.Context, contactPoint, id string) (Silence, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            silenceKey(contactPoint, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Silence{}, fmt.Errorf("read silence %s of %s: %w", id, contactPoint, err)
	}
	if out.Item == nil {
		return Silence{}, fmt.Errorf("silence %s of %s: %w", id, contactPoint, ErrNotFound)
	}
	var it silenceItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Silence{}, fmt.Errorf("decode silence %s of %s: %w", id, contactPoint, err)
	}
	return it.silence()
}

// Expire ends contactPoint's silence id now and returns it. Expiring a
// silence that has already ended (expired, or past its until) changes
// nothing and returns it as it is. ErrNotFound when there is none. The
// silence stays in the index until its digest is sent.
func (s *Store) Expire(ctx context.Context, contactPoint, id string) (Silence, error) {
	sil, err := s.get(ctx, contactPoint, id)
	if err != nil {
		return Silence{}, err
	}
	now := s.now()
	if !sil.EndedAt().After(now) {
		return sil, nil
	}
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
		Update: &types.Update{
			TableName:                 aws.String(s.Table),
			Key:                       silenceKey(contactPoint, id),
			UpdateExpression:          aws.String("SET expired_at = :now"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(expired_at)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: stamp(now)}},
		},
	}}})
	var canceled *types.TransactionCanceledException
	switch {
	case errors.As(err, &canceled):
		// Expired by someone else meanwhile: answer as it now stands.
		return s.get(ctx, contactPoint, id)
	case err != nil:
		return Silence{}, fmt.Errorf("expire silence %s of %s: %w", id, contactPoint, err)
	}
	sil.ExpiredAt = now
	return sil, nil
}

// MarkCaughtUp records that sil's catch-up digest was sent (caught_up_at)
// and drops it from the index, in one transaction. A silence that has not
// ended yet is refused (ErrInvalid); one already caught up changes nothing.
func (s *Store) MarkCaughtUp(ctx context.Context, sil Silence) error {
	now := s.now()
	if sil.EndedAt().After(now) {
		return fmt.Errorf("%w: silence %s of %s has not ended yet", ErrInvalid, sil.ID, sil.ContactPoint)
	}
	ref := indexID(sil.ContactPoint, sil.ID)
	var already bool
	err := s.withIndex(ctx, func(ids []string) ([]string, []types.TransactWriteItem) {
		return slices.DeleteFunc(ids, func(x string) bool { return x == ref }), []types.TransactWriteItem{{
			Update: &types.Update{
				TableName:                 aws.String(s.Table),
				Key:                       silenceKey(sil.ContactPoint, sil.ID),
				UpdateExpression:          aws.String("SET caught_up_at = :now"),
				ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(caught_up_at)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: stamp(now)}},
			},
		}}
	}, func(reasons []types.CancellationReason) error {
		if len(reasons) < 2 || aws.ToString(reasons[0].Code) != "ConditionalCheckFailed" {
			return nil
		}
		if _, err := s.get(ctx, sil.ContactPoint, sil.ID); err != nil {
			return fmt.Errorf("mark silence caught up: %w", err)
		}
		already = true
		return errAlready
	})
	if already {
		return nil
	}
	return err
}

var errAlready = errors.New("already caught up")
