package reportstore

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/report"
)

// The notifier's free-text platform never becomes the item's platform: that
// one comes from the URL, as cases and alerts read it.
func TestPlatformComesFromTheURL(t *testing.T) {
	const claimed = "call +39 333 000 1111 and ask for the boat"
	body := []byte(`{"url":"https://m.facebook.com/groups/123/posts/456/","category":"smuggling_offer","explanation":"Boat offer.",` +
		`"notifier":{"name":"Desk","email":"desk@ngo.example"},"good_faith":true,"platform":"` + claimed + `"}`)
	r, err := report.Decode(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{Table: "t"}
	item := s.Item(Delivery{Source: "demo", ID: "msg_1", Body: body, ReceivedAt: time.Now()}, r, sha256.Sum256(body))
	str := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	if got := str("platform"); got != "facebook.com" {
		t.Errorf("platform = %q, want facebook.com (from the URL)", got)
	}
	if got := str("notifier_platform"); got != claimed {
		t.Errorf("notifier_platform = %q, want the notifier's text as sent", got)
	}
}
