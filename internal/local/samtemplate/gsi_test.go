package samtemplate

import (
	"testing"

	"github.com/flagline/flagline/shared/reportstore"
)

// shardedAttributes are the attributes written as "<key>#<n>" over several
// values for one logical key (reportstore.AttrCaseShard: a case's reports
// over reportstore.CaseShards values).
var shardedAttributes = map[string]bool{reportstore.AttrCaseShard: true}

// A global secondary index whose hash key is one value per case takes all of
// a viral URL's writes in one index partition, and DynamoDB throttles the
// table's writes when an index cannot keep up
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html):
// every GSI hash key of the table must be a sharded attribute.
func TestTableIndexesHaveShardedHashKeys(t *testing.T) {
	tpl, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.GlobalSecondaryIndexes) == 0 {
		t.Fatal("Table has no global secondary index")
	}
	for _, g := range spec.GlobalSecondaryIndexes {
		for _, k := range g.KeySchema {
			if k.KeyType == "HASH" && !shardedAttributes[k.AttributeName] {
				t.Errorf("index %s: hash key %s is not a sharded attribute (one of %v)", g.IndexName, k.AttributeName, shardedAttributes)
			}
		}
	}
}
