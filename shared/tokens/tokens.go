// Package tokens issues, checks and revokes the bearer tokens contact
// points use on the case API. A token is shown once, when it is created;
// the table keeps only its SHA-256, so reading the table gives nobody a
// token that works.
//
// Each token is two items, written and revoked together in one
// TransactWriteItems:
//
//   - pk TOKEN#<hex sha256(token)>, sk TOKEN, type api_token: what a
//     request's token is looked up by (one GetItem);
//   - pk CONTACT#<contact point>, sk TOKEN#<token id>, type api_token_ref:
//     what a contact point's tokens are listed and revoked by (one Query),
//     beside its directory entry.
//
// A revoked token keeps both items with revoked_at set, so the list shows
// it and Lookup refuses it.
package tokens

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/contacts"
)

// Token text: Prefix, then the unpadded base64url of secretBytes random
// bytes. The prefix lets secret scanners and people recognise a Flagline
// token.
const (
	Prefix      = "flt_"
	secretBytes = 32
	// Length is the length of every token's text.
	Length = len(Prefix) + (secretBytes*8+5)/6
)

// Item types and keys.
const (
	TypeToken = "api_token"
	TypeRef   = "api_token_ref"

	tokenKeyPrefix = "TOKEN#"
	tokenSortKey   = "TOKEN"
	refSortPrefix  = "TOKEN#"
	idBytes        = 6 // a token id is 12 lowercase hex digits
)

var (
	// ErrUnknown: the token is malformed, was never issued, or is revoked.
	// Callers answer all three alike (401), so as not to tell a guesser
	// which.
	ErrUnknown = errors.New("unknown or revoked token")
	// ErrNotFound: the contact point has no token with that id.
	ErrNotFound = errors.New("no such token")
	// ErrNoContactPoint: the contact point is not in the stored directory
	// (flagline contacts apply stores it), so no token is issued for it.
	ErrNoContactPoint = errors.New("contact point is not in the stored contact directory")
)

// DB is the part of the DynamoDB client the store uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store reads and writes tokens in the table.
type Store struct {
	DB    DB
	Table string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Info is what is known of a token; never its text nor its hash.
type Info struct {
	ID           string
	ContactPoint string
	CreatedAt    time.Time
	// RevokedAt is zero while the token is active.
	RevokedAt time.Time
}

// Revoked reports whether the token was revoked.
func (i Info) Revoked() bool { return !i.RevokedAt.IsZero() }

// tokenItem is the item a token is looked up by.
type tokenItem struct {
	PK           string     `dynamodbav:"pk"`
	SK           string     `dynamodbav:"sk"`
	Type         string     `dynamodbav:"type"`
	TokenID      string     `dynamodbav:"token_id"`
	ContactPoint string     `dynamodbav:"contact_point"`
	CreatedAt    time.Time  `dynamodbav:"created_at"`
	RevokedAt    *time.Time `dynamodbav:"revoked_at,omitempty"`
}

// refItem is the item a contact point's tokens are listed by.
type refItem struct {
	PK           string     `dynamodbav:"pk"`
	SK           string     `dynamodbav:"sk"`
	Type         string     `dynamodbav:"type"`
	TokenID      string     `dynamodbav:"token_id"`
	ContactPoint string     `dynamodbav:"contact_point"`
	TokenHash    string     `dynamodbav:"token_hash"`
	CreatedAt    time.Time  `dynamodbav:"created_at"`
	RevokedAt    *time.Time `dynamodbav:"revoked_at,omitempty"`
}

func (r refItem) info() Info {
	i := Info{ID: r.TokenID, ContactPoint: r.ContactPoint, CreatedAt: r.CreatedAt}
	if r.RevokedAt != nil {
		i.RevokedAt = *r.RevokedAt
	}
	return i
}

// Hash is the hex SHA-256 of a token's text, the only form the table holds.
// A token carries 256 random bits, so a plain hash (no salt, no slow KDF)
// is enough: there is nothing to guess.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether token has the shape of a token this package
// issues: Prefix and the base64url of 32 bytes.
func WellFormed(token string) bool {
	if len(token) != Length || !strings.HasPrefix(token, Prefix) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token[len(Prefix):])
	return err == nil && len(b) == secretBytes
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func tokenKey(hash string) map[string]types.AttributeValue {
	return key(tokenKeyPrefix+hash, tokenSortKey)
}

func refKey(contactPoint, id string) map[string]types.AttributeValue {
	return key(contacts.Key(contactPoint), refSortPrefix+id)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// createAttempts bounds retries when a fresh token id is already taken by
// the contact point (48 random bits: in practice never).
const createAttempts = 3

// Create issues a token for contactPoint and returns its text, which is
// never available again. It fails with ErrNoContactPoint when the contact
// point has no entry in the stored directory: the check is part of the
// same transaction, so a token cannot be issued for a contact point being
// removed at that moment.
func (s *Store) Create(ctx context.Context, contactPoint string) (string, Info, error) {
	if contactPoint == "" {
		return "", Info{}, fmt.Errorf("create token: %w", ErrNoContactPoint)
	}
	for attempt := 1; ; attempt++ {
		token, info, err := s.create(ctx, contactPoint)
		if errors.Is(err, errIDTaken) && attempt < createAttempts {
			continue
		}
		return token, info, err
	}
}

var errIDTaken = errors.New("token id already taken")

func (s *Store) create(ctx context.Context, contactPoint string) (string, Info, error) {
	secret := make([]byte, secretBytes)
	id := make([]byte, idBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", Info{}, fmt.Errorf("create token: %w", err)
	}
	if _, err := rand.Read(id); err != nil {
		return "", Info{}, fmt.Errorf("create token: %w", err)
	}
	token := Prefix + base64.RawURLEncoding.EncodeToString(secret)
	info := Info{ID: hex.EncodeToString(id), ContactPoint: contactPoint, CreatedAt: s.now()}
	hash := Hash(token)

	tok, err := attributevalue.MarshalMap(tokenItem{
		PK: tokenKeyPrefix + hash, SK: tokenSortKey, Type: TypeToken,
		TokenID: info.ID, ContactPoint: contactPoint, CreatedAt: info.CreatedAt,
	})
	if err != nil {
		return "", Info{}, fmt.Errorf("encode token: %w", err)
	}
	ref, err := attributevalue.MarshalMap(refItem{
		PK: contacts.Key(contactPoint), SK: refSortPrefix + info.ID, Type: TypeRef,
		TokenID: info.ID, ContactPoint: contactPoint, TokenHash: hash, CreatedAt: info.CreatedAt,
	})
	if err != nil {
		return "", Info{}, fmt.Errorf("encode token: %w", err)
	}
	// Both items or neither; neither overwrites an existing item; and the
	// contact point's directory entry must exist. TransactWriteItems is
	// all-or-nothing and reports, per action, which condition failed
	// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.Table), Item: tok, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: aws.String(s.Table), Item: ref, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{ConditionCheck: &types.ConditionCheck{
			TableName:           aws.String(s.Table),
			Key:                 key(contacts.Key(contactPoint), contacts.SortKey),
			ConditionExpression: aws.String("attribute_exists(pk)"),
		}},
	}})
	if err != nil {
		switch failed := failedConditions(err); {
		case len(failed) == 0:
			return "", Info{}, fmt.Errorf("store token for %s: %w", contactPoint, err)
		case failed[2]:
			return "", Info{}, fmt.Errorf("create token for %s: %w", contactPoint, ErrNoContactPoint)
		case failed[1]:
			return "", Info{}, errIDTaken
		default:
			// The hash of 256 fresh random bits is already stored: the
			// random source is broken. Never hand out that token.
			return "", Info{}, fmt.Errorf("create token for %s: a token with this hash already exists", contactPoint)
		}
	}
	return token, info, nil
}

// failedConditions returns, by position in the transaction, the actions
// whose condition failed; none when err is not a transaction cancelled by
// a condition.
func failedConditions(err error) map[int]bool {
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return nil
	}
	failed := map[int]bool{}
	for i, r := range canceled.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			failed[i] = true
		}
	}
	return failed
}

// Lookup returns the token's Info, or ErrUnknown when it is malformed (no
// read is made), was never issued, or is revoked. The read is strongly
// consistent, so a token revoked a moment ago is refused at once
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
func (s *Store) Lookup(ctx context.Context, token string) (Info, error) {
	if !WellFormed(token) {
		return Info{}, ErrUnknown
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            tokenKey(Hash(token)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Info{}, fmt.Errorf("look up token: %w", err)
	}
	if out.Item == nil {
		return Info{}, ErrUnknown
	}
	var it tokenItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Info{}, fmt.Errorf("decode token item: %w", err)
	}
	if it.Type != TypeToken || it.ContactPoint == "" || it.RevokedAt != nil {
		return Info{}, ErrUnknown
	}
	return Info{ID: it.TokenID, ContactPoint: it.ContactPoint, CreatedAt: it.CreatedAt}, nil
}

// List returns every token of contactPoint, revoked ones included, oldest
// first.
func (s *Store) List(ctx context.Context, contactPoint string) ([]Info, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.Table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: contacts.Key(contactPoint)},
			":prefix": &types.AttributeValueMemberS{Value: refSortPrefix},
		},
		ConsistentRead: aws.Bool(true),
	}
	var out []Info
	p := dynamodb.NewQueryPaginator(s.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tokens of %s: %w", contactPoint, err)
		}
		for _, item := range page.Items {
			var r refItem
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return nil, fmt.Errorf("decode token of %s: %w", contactPoint, err)
			}
			if r.Type == TypeRef {
				out = append(out, r.info())
			}
		}
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Revoke revokes contactPoint's token tokenID at once: Lookup refuses it
// from now on. Revoking a revoked token changes nothing and is no error.
// ErrNotFound when the contact point has no such token.
func (s *Store) Revoke(ctx context.Context, contactPoint, tokenID string) error {
	ref, err := s.ref(ctx, contactPoint, tokenID)
	if err != nil {
		return err
	}
	if ref.RevokedAt != nil {
		return nil
	}
	at, err := attributevalue.Marshal(s.now())
	if err != nil {
		return fmt.Errorf("encode revoked_at: %w", err)
	}
	update := func(k map[string]types.AttributeValue) *types.Update {
		return &types.Update{
			TableName:                 aws.String(s.Table),
			Key:                       k,
			UpdateExpression:          aws.String("SET revoked_at = :at"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(revoked_at)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": at},
		}
	}
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: update(tokenKey(ref.TokenHash))},
		{Update: update(refKey(contactPoint, tokenID))},
	}})
	if err == nil {
		return nil
	}
	if len(failedConditions(err)) == 0 {
		return fmt.Errorf("revoke token %s of %s: %w", tokenID, contactPoint, err)
	}
	// A condition failed: most likely a concurrent revoke won. Read again
	// and say how things now stand.
	now, rerr := s.ref(ctx, contactPoint, tokenID)
	switch {
	case rerr != nil:
		return rerr
	case now.RevokedAt != nil:
		return nil
	}
	return fmt.Errorf("revoke token %s of %s: %w", tokenID, contactPoint, err)
}

// ref reads a token's listing item (strongly consistent).
func (s *Store) ref(ctx context.Context, contactPoint, tokenID string) (*refItem, error) {
	if contactPoint == "" || tokenID == "" {
		return nil, ErrNotFound
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            refKey(contactPoint, tokenID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read token %s of %s: %w", tokenID, contactPoint, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("token %s of %s: %w", tokenID, contactPoint, ErrNotFound)
	}
	var r refItem
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decode token %s of %s: %w", tokenID, contactPoint, err)
	}
	if r.Type != TypeRef || r.TokenHash == "" {
		return nil, fmt.Errorf("token %s of %s: %w", tokenID, contactPoint, ErrNotFound)
	}
	return &r, nil
}
