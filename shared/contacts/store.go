package contacts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/ddbbatch"
)

// Directory entries in the table. Each contact point is one item,
// pk = Key(id), sk = SortKey, type = TypeContactPoint, so the case API can
// read one with a GetItem.
//
// The set of entries is listed by one index item (pk = IndexKey,
// sk = IndexSortKey): the table holds every report and case as well, and
// finding the entries without an index would mean scanning all of it, whose
// cost grows with the table and not with the directory. Apply rewrites the
// index in the same transaction as the entries it adds or removes, on the
// condition that its version is still the one the plan read, so two applies
// cannot interleave and the index never lists an entry that is not there.
const (
	SortKey          = "CONTACT"
	TypeContactPoint = "contact_point"

	IndexKey       = "DIRECTORY"
	IndexSortKey   = "CONTACTS"
	TypeIndex      = "contact_directory"
	keyPrefix      = "CONTACT#"
	maxTransaction = 100 // items in one TransactWriteItems
	getAttempts    = 9   // BatchGetItem calls reading 100 entries: the first and retries of the unprocessed
)

// Key returns the partition key of a contact point's entry.
func Key(id string) string { return keyPrefix + id }

// TableReader is the part of the DynamoDB client that reads the directory.
type TableReader interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// TableAPI is the part of the DynamoDB client that reads and writes the
// directory.
type TableAPI interface {
	TableReader
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// entryItem is a contact point's item.
type entryItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Type string `dynamodbav:"type"`
	ContactPoint
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

// indexItem lists the ids of the stored entries. ids is a list, not a set,
// because a set cannot be empty.
type indexItem struct {
	PK        string    `dynamodbav:"pk"`
	SK        string    `dynamodbav:"sk"`
	Type      string    `dynamodbav:"type"`
	IDs       []string  `dynamodbav:"ids"`
	Version   int64     `dynamodbav:"version"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

// storedDirectory is what the table holds.
type storedDirectory struct {
	// version of the index item; 0 when there is none.
	version int64
	// indexed are the ids the index lists.
	indexed []string
	// entries are the entries found, by id.
	entries map[string]ContactPoint
}

// StoredContactPoints returns the directory entries in the table, sorted by
// id.
func StoredContactPoints(ctx context.Context, db TableReader, table string) ([]ContactPoint, error) {
	s, err := readStored(ctx, db, table, nil)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(s.entries))
	slices.SortFunc(out, func(a, b ContactPoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// readStored reads the index and the entries it lists, plus those of also
// (the ids the file declares: an entry written without its index, by hand
// say, is then still compared rather than blindly overwritten).
func readStored(ctx context.Context, db TableReader, table string, also []string) (*storedDirectory, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            key(IndexKey, IndexSortKey),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read directory index from %s: %w", table, err)
	}
	s := &storedDirectory{entries: map[string]ContactPoint{}}
	if out.Item != nil {
		var idx indexItem
		if err := attributevalue.UnmarshalMap(out.Item, &idx); err != nil {
			return nil, fmt.Errorf("decode directory index: %w", err)
		}
		s.version, s.indexed = idx.Version, idx.IDs
	}

	ids := slices.Concat(s.indexed, also)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for chunk := range slices.Chunk(ids, ddbbatch.MaxGetKeys) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, id := range chunk {
			keys[i] = key(Key(id), SortKey)
		}
		req := map[string]types.KeysAndAttributes{table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		err := ddbbatch.Get(ctx, db, req, getAttempts, func(_ string, item map[string]types.AttributeValue) error {
			var e entryItem
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return fmt.Errorf("decode directory entry %v: %w", item["pk"], err)
			}
			s.entries[e.ID] = e.ContactPoint
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read directory entries from %s: %w", table, err)
		}
	}
	return s, nil
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// EntryChange is one line of the plan for the directory table.
type EntryChange struct {
	Action Action
	ID     string
	// Want is the entry to store (Create, Update, Unchanged).
	Want ContactPoint
	// Have is the stored entry (Update, Unchanged, Delete).
	Have ContactPoint
	// Changed names the fields an update changes.
	Changed []string
	Done    bool
}

// DiffEntries plans the directory table: which entries to add, change and
// remove so that stored becomes desired.
func DiffEntries(stored map[string]ContactPoint, desired []ContactPoint) []EntryChange {
	var changes []EntryChange
	wanted := map[string]bool{}
	for _, w := range desired {
		wanted[w.ID] = true
		h, ok := stored[w.ID]
		switch changed := entryDifferences(h, w); {
		case !ok:
			changes = append(changes, EntryChange{Action: Create, ID: w.ID, Want: w})
		case len(changed) > 0:
			changes = append(changes, EntryChange{Action: Update, ID: w.ID, Want: w, Have: h, Changed: changed})
		default:
			changes = append(changes, EntryChange{Action: Unchanged, ID: w.ID, Want: w, Have: h})
		}
	}
	for id, h := range stored {
		if !wanted[id] {
			changes = append(changes, EntryChange{Action: Delete, ID: id, Have: h})
		}
	}
	slices.SortFunc(changes, func(a, b EntryChange) int { return cmp.Compare(a.ID, b.ID) })
	return changes
}

func entryDifferences(have, want ContactPoint) []string {
	var changed []string
	if have.Name != want.Name {
		changed = append(changed, "name")
	}
	h, w := slices.Clone(have.Countries), slices.Clone(want.Countries)
	slices.Sort(h)
	slices.Sort(w)
	if !slices.Equal(h, w) {
		changed = append(changed, "countries")
	}
	if have.SMSMinSeverity != want.SMSMinSeverity {
		changed = append(changed, "sms_min_severity")
	}
	if !slices.Equal(have.Endpoints, want.Endpoints) {
		changed = append(changed, "endpoints")
	}
	if have.GroupWait != want.GroupWait {
		changed = append(changed, "group_wait")
	}
	if have.GroupInterval != want.GroupInterval {
		changed = append(changed, "group_interval")
	}
	return changed
}

// ErrConflict means the directory table changed between reading it for the
// plan and writing it: another apply, most likely.
var ErrConflict = errors.New("the directory table changed since the plan was made (is another apply running?); plan and apply again")

// writeEntries makes the plan's entry changes and rewrites the index, in
// transactions of at most 100 items, each also moving the index on by one
// version. The last one leaves the index listing exactly the file's ids.
func writeEntries(ctx context.Context, db TableAPI, table string, p *Plan, now time.Time) error {
	var todo []*EntryChange
	for i := range p.Entries {
		if c := &p.Entries[i]; c.Action == Create || c.Action == Update || c.Action == Delete {
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 && !p.rewriteIndex {
		return nil
	}
	listed := map[string]bool{}
	for _, id := range p.stored.indexed {
		listed[id] = true
	}
	version := p.stored.version
	chunks := slices.Collect(slices.Chunk(todo, maxTransaction-1))
	if len(chunks) == 0 {
		chunks = [][]*EntryChange{nil} // the index alone
	}
	for n, chunk := range chunks {
		var items []types.TransactWriteItem
		for _, c := range chunk {
			if c.Action == Delete {
				delete(listed, c.ID)
				items = append(items, types.TransactWriteItem{Delete: &types.Delete{
					TableName: aws.String(table),
					Key:       key(Key(c.ID), SortKey),
				}})
				continue
			}
			listed[c.ID] = true
			item, err := attributevalue.MarshalMap(entryItem{
				PK: Key(c.ID), SK: SortKey, Type: TypeContactPoint,
				ContactPoint: c.Want, UpdatedAt: now.UTC(),
			})
			if err != nil {
				return fmt.Errorf("encode directory entry %s: %w", c.ID, err)
			}
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: item}})
		}
		ids := slices.Sorted(maps.Keys(listed))
		if n == len(chunks)-1 {
			ids = p.desiredIDs() // drops ids listed without an entry
		}
		index, err := attributevalue.MarshalMap(indexItem{
			PK: IndexKey, SK: IndexSortKey, Type: TypeIndex,
			IDs: ids, Version: version + 1, UpdatedAt: now.UTC(),
		})
		if err != nil {
			return fmt.Errorf("encode directory index: %w", err)
		}
		put := &types.Put{TableName: aws.String(table), Item: index}
		if version == 0 {
			put.ConditionExpression = aws.String("attribute_not_exists(pk)")
		} else {
			put.ConditionExpression = aws.String("#version = :version")
			put.ExpressionAttributeNames = map[string]string{"#version": "version"}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{
				":version": &types.AttributeValueMemberN{Value: fmt.Sprint(version)},
			}
		}
		items = append(items, types.TransactWriteItem{Put: put})

		if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			var canceled *types.TransactionCanceledException
			if errors.As(err, &canceled) {
				reasons := canceled.CancellationReasons
				if len(reasons) == len(items) && aws.ToString(reasons[len(items)-1].Code) == "ConditionalCheckFailed" {
					return fmt.Errorf("write directory entries to %s: %w", table, ErrConflict)
				}
			}
			return fmt.Errorf("write directory entries to %s: %w", table, err)
		}
		version++
		for _, c := range chunk {
			c.Done = true
		}
	}
	return nil
}
