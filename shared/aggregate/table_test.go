package aggregate

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ItemSize is an item's size as DynamoDB counts it against the 400 KB item
// limit: attribute names plus values, with the overheads listed on
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
// (numbers: one byte per two significant digits plus one; lists and maps: 3
// bytes plus one per element).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	panic(fmt.Sprintf("unknown attribute value %T", v))
}

func numberSize(s string) int {
	digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(s), "0")
	return (len(digits)+1)/2 + 1
}

// table is an in-memory stand-in for the table: BatchGetItem and the
// UpdateItem expressions aggregation builds (SET a = v, SET a =
// if_not_exists(a, v), REMOVE a; conditions attribute_not_exists(pk) and
// version = v), so unit tests can feed the handler thousands of batches and
// read back the items it wrote.
type table struct {
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue
}

var _ DB = (*table)(nil)

func newTable() *table { return &table{items: map[string]map[string]types.AttributeValue{}} }

func (t *table) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for name, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			if item, ok := t.items[k["pk"].(*types.AttributeValueMemberS).Value]; ok {
				out.Responses[name] = append(out.Responses[name], item)
			}
		}
	}
	return out, nil
}

func (t *table) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pk := in.Key["pk"].(*types.AttributeValueMemberS).Value
	old, exists := t.items[pk]
	name := func(ref string) string { return in.ExpressionAttributeNames[strings.TrimSpace(ref)] }
	value := func(ref string) types.AttributeValue { return in.ExpressionAttributeValues[strings.TrimSpace(ref)] }
	cond := *in.ConditionExpression
	ok := false
	switch {
	case strings.HasPrefix(cond, "attribute_not_exists"):
		ok = !exists
	default:
		l, r, _ := strings.Cut(cond, "=")
		cur, have := old[name(l)]
		ok = have && cur.(*types.AttributeValueMemberN).Value == value(r).(*types.AttributeValueMemberN).Value
	}
	if !ok {
		return nil, &types.ConditionalCheckFailedException{Message: new(string), Item: old}
	}
	item := make(map[string]types.AttributeValue, len(old)+len(in.Key))
	for k, v := range old {
		item[k] = v
	}
	for k, v := range in.Key {
		item[k] = v
	}
	for _, clause := range strings.Split(strings.TrimSpace(*in.UpdateExpression), "\n") {
		verb, rest, _ := strings.Cut(clause, " ")
		for _, action := range splitTop(rest) {
			switch verb {
			case "REMOVE":
				delete(item, name(action))
			case "SET":
				l, r, _ := strings.Cut(action, "=")
				r = strings.TrimSpace(r)
				if args, ok := strings.CutPrefix(r, "if_not_exists("); ok {
					a, v, _ := strings.Cut(strings.TrimSuffix(args, ")"), ",")
					if cur, have := item[name(a)]; have {
						item[name(l)] = cur
						continue
					}
					r = v
				}
				item[name(l)] = value(r)
			default:
				return nil, fmt.Errorf("table: unsupported clause %q", clause)
			}
		}
	}
	if size := ItemSize(item); size > 400*1024 {
		return nil, fmt.Errorf("ValidationException: Item size has exceeded the maximum allowed size (%d bytes)", size)
	}
	t.items[pk] = item
	return &dynamodb.UpdateItemOutput{}, nil
}

// splitTop splits a comma-separated action list, ignoring commas inside
// parentheses.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
