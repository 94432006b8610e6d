//go:build integration

package runtimetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/runtimetest"
)

// One moto_server and one set of stand-in resources per test binary. The
// tests share the table and run one after another (no t.Parallel): each
// checks what an invocation changed in the whole table.
var (
	root  string
	moto  *motoserver.Server
	stack *runtimetest.Stack
	db    *dynamodb.Client
	table string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtimetest:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	defer runtimetest.RemoveBuilds()
	var err error
	if root, err = runtimetest.Root(); err != nil {
		return 0, err
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return 0, err
	}
	bin, err := motoserver.Binary(root)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if moto, err = motoserver.Start(ctx, bin, nil); err != nil {
		return 0, err
	}
	defer moto.Stop()
	cfg := runtimetest.AWSConfig(moto.URL)
	if stack, err = runtimetest.NewStack(ctx, tpl, cfg, tpl.Functions()...); err != nil {
		return 0, err
	}
	db = dynamodb.NewFromConfig(cfg)
	if table = stack.Locals.Refs["Table"]; table == "" {
		return 0, fmt.Errorf("no function refers to the table; resources made: %v", stack.Created)
	}
	return m.Run(), nil
}

// eventFile is one sample event: events/<name>, or, while events/ has
// none for its function, a draft in testdata/.
type eventFile struct {
	name, path string
	draft      bool
}

// eventFiles are the sample events of the function in functions/<dir>.
func eventFiles(t *testing.T, dir string) []eventFile {
	t.Helper()
	var out []eventFile
	for _, loc := range []struct {
		dir   string
		draft bool
	}{{filepath.Join(root, "events"), false}, {"testdata", true}} {
		paths, err := filepath.Glob(filepath.Join(loc.dir, dir+"-*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			out = append(out, eventFile{name: filepath.Base(p), path: p, draft: loc.draft})
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// decodeStrict decodes a sample event, refusing unknown fields: a misspelt
// key would silently be dropped.
func decodeStrict(t *testing.T, path string, out any) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

// snapshot is the whole table, item by item, in a canonical text form.
type snapshot map[string]string

func itemKey(item map[string]types.AttributeValue) string {
	return str(item["pk"]) + " | " + str(item["sk"])
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	out := snapshot{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, item := range page.Items {
			b, err := json.Marshal(canonical(&types.AttributeValueMemberM{Value: item}))
			if err != nil {
				t.Fatal(err)
			}
			out[itemKey(item)] = string(b)
		}
	}
	return out
}

// canonical turns an attribute value into plain values, sets sorted.
func canonical(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": slices.Sorted(slices.Values(v.Value))}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": slices.Sorted(slices.Values(v.Value))}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = canonical(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberM:
		m := make(map[string]any, len(v.Value))
		for k, e := range v.Value {
			m[k] = canonical(e)
		}
		return map[string]any{"M": m}
	}
	return fmt.Sprintf("%T", v)
}

// diff lists the keys of items added, removed and changed from a to b.
type change struct{ added, removed, changed []string }

func (c change) empty() bool { return len(c.added)+len(c.removed)+len(c.changed) == 0 }

func (c change) String() string {
	return fmt.Sprintf("added %q, removed %q, changed %q", c.added, c.removed, c.changed)
}

func diff(a, b snapshot) change {
	var c change
	for k, v := range b {
		old, ok := a[k]
		switch {
		case !ok:
			c.added = append(c.added, k)
		case old != v:
			c.changed = append(c.changed, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			c.removed = append(c.removed, k)
		}
	}
	slices.Sort(c.added)
	slices.Sort(c.removed)
	slices.Sort(c.changed)
	return c
}

// getItem reads one item consistently; nil when absent.
func getItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("get %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// deletePartition removes every item under pk: a clean slate for the
// items a test is about, whatever ran before it.
func deletePartition(t *testing.T, pk string) {
	t.Helper()
	ctx := context.Background()
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("query %s: %v", pk, err)
	}
	for _, item := range out.Items {
		if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key(str(item["pk"]), str(item["sk"]))}); err != nil {
			t.Fatalf("delete %s: %v", itemKey(item), err)
		}
	}
}

func putItem(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatalf("put %s: %v", itemKey(item), err)
	}
}

// invoke sends payload and fails t on an invoke error or a function error.
func invoke(t *testing.T, fn *runtimetest.Emulator, payload []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, fnErr, err := fn.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if fnErr != "" {
		t.Fatalf("function error %s: %s", fnErr, resp)
	}
	return resp
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notIn fails t if out contains any of secrets: function logs must carry
// no secret, body or personal data.
func notIn(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the function's output contains %q", s)
		}
	}
}
