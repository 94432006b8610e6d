package reportstore

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/report"
)

// The reports of one viral URL spread over the index's case shards, so no
// one index partition takes them all; each value is one a reader of the
// case queries.
func TestReportsOfOneCaseSpreadOverCaseShards(t *testing.T) {
	r, err := report.Decode([]byte(`{"url":"https://t.me/boats_now/812","category":"smuggling_offer","explanation":"Crossings.","notifier":{"name":"N","email":"n@ngo.example"},"good_faith":true}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	queried := map[string]bool{}
	for n := range CaseShards {
		queried[CaseShardKey(r.Link.CaseID, n)] = true
	}
	s := &Store{Table: "t", NotifierKey: mustKey(t, testKey)}
	seen := map[string]int{}
	for i := range 1000 {
		d := Delivery{Source: "ngo", ID: fmt.Sprintf("msg_%d", i), Body: []byte("{}"), ReceivedAt: time.Now()}
		v, ok := s.Item(d, r, sha256.Sum256(d.Body))[AttrCaseShard].(*types.AttributeValueMemberS)
		if !ok || !strings.HasPrefix(v.Value, r.Link.CaseID+"#") || !queried[v.Value] {
			t.Fatalf("delivery %d: case_shard %v is not one of the case's %d shard keys", i, v, CaseShards)
		}
		seen[v.Value]++
	}
	if len(seen) < 16 {
		t.Errorf("1,000 deliveries of one case use %d case shards, want at least 16: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n > 1000/CaseShards*2 {
			t.Errorf("shard %s takes %d of 1,000 reports", k, n)
		}
	}
}
