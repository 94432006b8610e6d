package samtemplate

import (
	"fmt"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/reportstore"
)

// shardedAttributes are the attributes written as "<key>#<n>" over several
// values for one logical key (reportstore.AttrCaseShard: a case's reports
// over reportstore.CaseShards values; deadline.AttrDueShard: the due cases
// over deadline.Shards values "DUE#<n>" from a hash of the case id, so
// that a bulk import of cases falling due together spreads over index
// partitions, and a case's clock is written once per alert or action,
// never once per report).
var shardedAttributes = map[string]bool{reportstore.AttrCaseShard: true, deadline.AttrDueShard: true}

// perCountryAttributes are GSI hash keys with one value per listing country
// (caseindex.AttrListPK = "LIST#<country>", about 30 values), each written
// once per case image and never once per report: aggregation writes a case
// item at most once per stream batch (60 s tumbling window per shard), case
// actions are clicks by people, and the alert function projects each image
// once. A viral URL is one case, so its reports add no index writes at all.
// The bound: a listing item is one write unit (under 1 KB), and one index
// partition takes 1,000 WCU/s
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html),
// so one country's partition throttles only when more than 1,000 of its
// cases change within the same second, far beyond what desks can act on.
var perCountryAttributes = map[string]bool{caseindex.AttrListPK: true}

// hashKeyProblems names the indexes of spec whose hash key is neither
// sharded nor per country.
func hashKeyProblems(spec *TableSpec) []string {
	var out []string
	for _, g := range spec.GlobalSecondaryIndexes {
		for _, k := range g.KeySchema {
			if k.KeyType == "HASH" && !shardedAttributes[k.AttributeName] && !perCountryAttributes[k.AttributeName] {
				out = append(out, fmt.Sprintf("index %s: hash key %s is neither sharded (%v) nor per country (%v)",
					g.IndexName, k.AttributeName, shardedAttributes, perCountryAttributes))
			}
		}
	}
	return out
}

// A global secondary index whose hash key is one value per case takes all of
// a viral URL's writes in one index partition, and DynamoDB throttles the
// table's writes when an index cannot keep up
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html):
// every GSI hash key of the table must be a sharded attribute, or one whose
// writes are per case image and not per report (perCountryAttributes).
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
	for _, p := range hashKeyProblems(spec) {
		t.Error(p)
	}
}

// The rule refuses an index keyed per case, as case_id or the case's pk
// would be: each report of a viral URL would write the same index partition.
func TestPerCaseHashKeyIsRefused(t *testing.T) {
	for _, attr := range []string{"case_id", "pk"} {
		var spec TableSpec
		doc := `
GlobalSecondaryIndexes:
  - IndexName: ByCase
    KeySchema:
      - {AttributeName: ` + attr + `, KeyType: HASH}
      - {AttributeName: received_at, KeyType: RANGE}
    Projection: {ProjectionType: KEYS_ONLY}
`
		if err := yaml.Unmarshal([]byte(doc), &spec); err != nil {
			t.Fatal(err)
		}
		if got := hashKeyProblems(&spec); len(got) != 1 {
			t.Errorf("index keyed by %s: problems %q, want one", attr, got)
		}
	}
}
