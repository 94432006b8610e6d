package contacts

import (
	"encoding/json"
	"testing"

	"github.com/flagline/flagline/shared/casestore"
)

func TestFilterPolicy(t *testing.T) {
	tests := []struct {
		name     string
		cp       ContactPoint
		protocol Protocol
		want     string
	}{
		{"email", ContactPoint{ID: "it-polpost", Countries: []string{"IT"}, SMSMinSeverity: casestore.High}, Email, `{"contact_point":["it-polpost"]}`},
		// Countries do not appear: the alert function picks the recipients.
		{"https", ContactPoint{ID: "fr-ocriest", Countries: []string{"FR", "IT"}}, HTTPS, `{"contact_point":["fr-ocriest"]}`},
		{"sqs", ContactPoint{ID: "eu-coordinator", Countries: []string{"EU"}}, SQS, `{"contact_point":["eu-coordinator"]}`},
		{"sms default threshold", ContactPoint{ID: "it-polpost", Countries: []string{"IT"}, SMSMinSeverity: DefaultSMSMinSeverity}, SMS,
			`{"contact_point":["it-polpost"],"severity":["high","critical"]}`},
		{"sms from low", ContactPoint{ID: "gr-police", Countries: []string{"GR"}, SMSMinSeverity: casestore.Low}, SMS,
			`{"contact_point":["gr-police"],"severity":["low","medium","high","critical"]}`},
		{"sms critical only", ContactPoint{ID: "eu-coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.Critical}, SMS,
			`{"contact_point":["eu-coordinator"],"severity":["critical"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FilterPolicy(tc.cp, tc.protocol); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFilterPolicyWithinSNSLimits(t *testing.T) {
	// SNS allows at most 150 combinations of values in a policy: the
	// largest the directory can ask for is one contact point at every
	// severity, whatever its countries.
	cp := ContactPoint{ID: "eu-coordinator", Countries: Countries, SMSMinSeverity: casestore.Low}
	var policy map[string][]string
	if err := json.Unmarshal([]byte(FilterPolicy(cp, SMS)), &policy); err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, values := range policy {
		n *= len(values)
	}
	if n > 150 || n != len(casestore.Severities) {
		t.Errorf("%d combinations", n)
	}
}

func TestRedrivePolicy(t *testing.T) {
	if got := RedrivePolicy(""); got != "" {
		t.Errorf("no DLQ: %q", got)
	}
	if got, want := RedrivePolicy("arn:aws:sqs:eu-west-1:123456789012:dlq"), `{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:dlq"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestSameFilterPolicy(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"identical", `{"country":["IT"]}`, `{"country":["IT"]}`, true},
		{"spacing", `{"country":["IT"]}`, "{ \"country\" : [ \"IT\" ]\n}", true},
		{"key order", `{"country":["IT"],"severity":["high"]}`, `{"severity":["high"],"country":["IT"]}`, true},
		{"value order", `{"country":["FR","IT"]}`, `{"country":["IT","FR"]}`, true},
		{"repeated value", `{"country":["IT","IT"]}`, `{"country":["IT"]}`, true},
		{"number spelling", `{"level":[1]}`, `{"level":[1.0]}`, true},
		{"escapes", `{"country":["\u0049T"]}`, `{"country":["IT"]}`, true},
		{"both empty", "", "", true},
		{"empty and {}", "", "{}", true},
		{"different value", `{"country":["IT"]}`, `{"country":["FR"]}`, false},
		{"extra value", `{"country":["IT"]}`, `{"country":["IT","EU"]}`, false},
		{"extra key", `{"country":["IT"]}`, `{"country":["IT"],"severity":["high"]}`, false},
		{"none and some", "", `{"country":["IT"]}`, false},
		{"string and number", `{"level":["1"]}`, `{"level":[1]}`, false},
		{"operator order matters", `{"level":[{"numeric":[">",1,"<",5]}]}`, `{"level":[{"numeric":["<",5,">",1]}]}`, false},
		{"operators in any order", `{"c":[{"prefix":"I"},"FR"]}`, `{"c":["FR",{"prefix":"I"}]}`, true},
		{"nested (body scope)", `{"a":{"b":["x","y"]}}`, `{"a":{"b":["y","x"]}}`, true},
		{"$or alternatives in any order", `{"$or":[{"a":["1"]},{"b":["2"]}]}`, `{"$or":[{"b":["2"]},{"a":["1"]}]}`, true},
		{"not JSON equals itself only", `{"country":`, `{"country":`, true},
		{"not JSON", `{"country":`, `{"country":["IT"]}`, false},
		{"trailing data", `{"country":["IT"]} {}`, `{"country":["IT"]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameFilterPolicy(tc.a, tc.b); got != tc.same {
				t.Errorf("SameFilterPolicy(%s, %s) = %v", tc.a, tc.b, got)
			}
			if got := SameFilterPolicy(tc.b, tc.a); got != tc.same {
				t.Errorf("not symmetric")
			}
		})
	}
}

func TestSameJSON(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"key order and spacing", `{"deadLetterTargetArn":"q","x":1}`, `{ "x": 1, "deadLetterTargetArn": "q" }`, true},
		{"arrays keep order", `{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{"empty", "", "", true},
		{"none and some", "", `{"deadLetterTargetArn":"q"}`, false},
		{"different", `{"deadLetterTargetArn":"q1"}`, `{"deadLetterTargetArn":"q2"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameJSON(tc.a, tc.b); got != tc.same {
				t.Errorf("SameJSON(%s, %s) = %v", tc.a, tc.b, got)
			}
		})
	}
}
