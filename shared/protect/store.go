package protect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The stored list is one item, pk = Key, sk = SortKey: the aggregate
// function reads it with one GetItem, and its role may read nothing else
// of the partition (template.yaml, dynamodb:LeadingKeys).
const (
	Key      = "PROTECT"
	SortKey  = "LIST"
	TypeList = "protect_list"
)

// Getter is the part of the DynamoDB client that reads the stored list.
type Getter interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// TableAPI reads and writes the stored list.
type TableAPI interface {
	Getter
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// listItem is the stored list.
type listItem struct {
	PK        string    `dynamodbav:"pk"`
	SK        string    `dynamodbav:"sk"`
	Type      string    `dynamodbav:"type"`
	Rules     []Rule    `dynamodbav:"rules"`
	Version   int64     `dynamodbav:"version"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

func itemKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: Key},
		"sk": &types.AttributeValueMemberS{Value: SortKey},
	}
}

// Stored is the list in the table: its rules and version (0 when none
// was applied).
type Stored struct {
	Rules     []Rule
	Version   int64
	UpdatedAt time.Time
}

// Read reads the stored list. consistent asks for a strongly consistent
// read (apply, which writes on the version it read; Table, which decides
// the protection of new cases).
func Read(ctx context.Context, db Getter, table string, consistent bool) (*Stored, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            itemKey(),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return nil, fmt.Errorf("read humanitarian list from %s: %w", table, err)
	}
	if out.Item == nil {
		return &Stored{}, nil
	}
	var it listItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, fmt.Errorf("decode humanitarian list: %w", err)
	}
	return &Stored{Rules: it.Rules, Version: it.Version, UpdatedAt: it.UpdatedAt}, nil
}

// Table loads the stored list as a Matcher, for the aggregate function.
type Table struct {
	DB    Getter
	Table string
}

// Matcher reads the stored list (one GetItem) and indexes it.
func (t *Table) Matcher(ctx context.Context) (*Matcher, error) {
	// Strongly consistent: the answer to an eventually consistent read "may
	// not reflect the results of a recently completed write operation", so
	// a list applied a second ago could miss the next case, which this
	// function protects at creation only (an apply marks only the cases
	// that exist when it scans)
	// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
	s, err := Read(ctx, t.DB, t.Table, true)
	if err != nil {
		return nil, err
	}
	return NewMatcher(s.Rules), nil
}

// ErrConcurrentApply is another apply that wrote the list between this
// apply's read and its write.
var ErrConcurrentApply = errors.New("the stored list changed while applying; run apply again")

// Plan is what apply changes.
type Plan struct {
	Added, Removed []string
	Unchanged      int
	// Version is the stored version the plan was made on.
	Version int64
}

// Empty reports whether applying changes nothing.
func (p *Plan) Empty() bool { return len(p.Added) == 0 && len(p.Removed) == 0 }

// Print writes the plan, one line per entry added or removed.
func (p *Plan) Print(w io.Writer) {
	for _, n := range p.Added {
		fmt.Fprintf(w, "+ %s\n", n)
	}
	for _, n := range p.Removed {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintf(w, "%d to add, %d to remove, %d unchanged.\n", len(p.Added), len(p.Removed), p.Unchanged)
}

// Diff is the plan that turns stored into l.
func Diff(stored *Stored, l *List) *Plan {
	have, want := Names(stored.Rules), Names(l.Rules)
	p := &Plan{Version: stored.Version}
	for _, n := range want {
		if _, found := slices.BinarySearch(have, n); found {
			p.Unchanged++
		} else {
			p.Added = append(p.Added, n)
		}
	}
	for _, n := range have {
		if _, found := slices.BinarySearch(want, n); !found {
			p.Removed = append(p.Removed, n)
		}
	}
	return p
}

// Apply makes the stored list l: it reads the stored one, prints the plan
// to out and, unless dryRun or nothing changes, writes l with one PutItem on
// the condition that the version read is still the stored one.
func Apply(ctx context.Context, db TableAPI, table string, l *List, dryRun bool, now time.Time, out io.Writer) (*Plan, error) {
	stored, err := Read(ctx, db, table, true)
	if err != nil {
		return nil, err
	}
	p := Diff(stored, l)
	p.Print(out)
	if dryRun || p.Empty() {
		return p, nil
	}
	item, err := attributevalue.MarshalMap(listItem{
		PK: Key, SK: SortKey, Type: TypeList, Rules: l.Rules, Version: stored.Version + 1, UpdatedAt: now.UTC(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode humanitarian list: %w", err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}
	if stored.Version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":v": &types.AttributeValueMemberN{Value: fmt.Sprint(stored.Version)},
		}
	}
	if _, err := db.PutItem(ctx, in); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil, ErrConcurrentApply
		}
		return nil, fmt.Errorf("write humanitarian list to %s: %w", table, err)
	}
	fmt.Fprintf(out, "Applied: version %d, %d entries.\n", stored.Version+1, len(l.Rules))
	return p, nil
}
