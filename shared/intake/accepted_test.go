package intake

import (
	"encoding/json"
	"testing"

	"github.com/flagline/flagline/shared/reportstore"
)

// The 202 answer is built without reflection; its bytes are those
// encoding/json gives for the receipt, whatever the receipt holds.
func TestAcceptedBodyIsEncodingJSON(t *testing.T) {
	receipts := []reportstore.Receipt{
		{ReportID: "r_demo_msg1", CaseID: "c_0f3a", CanonicalURL: "https://t.me/s/channel/42"},
		{ReportID: "r_demo_msg2", CaseID: "c_1", CanonicalURL: "https://example.org/p?a=1&b=<2>", Duplicate: true},
		{ReportID: "r_\"quoted\"\\", CaseID: "c_\x01\n\t", CanonicalURL: "https://example.org/\u2028\u2029/é"},
		{ReportID: "r_\xff\xfe", CaseID: "", CanonicalURL: ""},
	}
	// One character needing care at a time, in each field.
	for _, c := range []string{`"`, `\`, "<", ">", "&", "\x01", "\n", "\x7f", "é", "\u2028", "\xff"} {
		receipts = append(receipts,
			reportstore.Receipt{ReportID: "r_" + c, CaseID: "c_1", CanonicalURL: "https://t.me/s/x/1"},
			reportstore.Receipt{ReportID: "r_1", CaseID: "c_" + c, CanonicalURL: "https://t.me/s/x/1"},
			reportstore.Receipt{ReportID: "r_1", CaseID: "c_1", CanonicalURL: "https://t.me/s/" + c})
	}
	for _, r := range receipts {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := accepted(r)
		if got.StatusCode != 202 || got.Body != string(want) {
			t.Errorf("accepted(%+v) = %d %s, want 202 %s", r, got.StatusCode, got.Body, want)
		}
		if got.Headers["Content-Type"] != "application/json" {
			t.Errorf("headers %v", got.Headers)
		}
	}
}
