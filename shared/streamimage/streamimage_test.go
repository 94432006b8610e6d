package streamimage_test

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/flagline/flagline/shared/streamimage"
)

type item struct {
	S    string            `dynamodbav:"s"`
	N    int               `dynamodbav:"n"`
	B    []byte            `dynamodbav:"b"`
	Bool bool              `dynamodbav:"bool"`
	SS   []string          `dynamodbav:"ss,stringset"`
	NS   []int             `dynamodbav:"ns,numberset"`
	L    []any             `dynamodbav:"l"`
	M    map[string]string `dynamodbav:"m"`
	Null *string           `dynamodbav:"null,nullempty"`
}

func TestRoundTrip(t *testing.T) {
	in := item{S: "x", N: 42, B: []byte{1, 2}, Bool: true, SS: []string{"a", "b"}, NS: []int{1, 2}, L: []any{"y", 3.0}, M: map[string]string{"k": "v"}}
	av, err := attributevalue.MarshalMap(in)
	if err != nil {
		t.Fatal(err)
	}
	var out item
	if err := streamimage.Unmarshal(streamimage.FromSDK(av), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the item:\n in  %#v\n out %#v", in, out)
	}
}
