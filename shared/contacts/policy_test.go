package contacts

import (
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
		{"email", ContactPoint{ID: "it-polpost", Countries: []string{"IT"}, SMSMinSeverity: casestore.High}, Email, `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}`},
		// Countries appear only for messages without contact_point, as an
		// alert function from before per-desk alerts sends them.
		{"https", ContactPoint{ID: "fr-ocriest", Countries: []string{"FR", "IT"}}, HTTPS, `{"$or":[{"contact_point":["fr-ocriest"]},{"contact_point":[{"exists":false}],"country":["FR","IT"]}]}`},
		{"sqs", ContactPoint{ID: "eu-coordinator", Countries: []string{"EU"}}, SQS, `{"$or":[{"contact_point":["eu-coordinator"]},{"contact_point":[{"exists":false}],"country":["EU"]}]}`},
		{"sms default threshold", ContactPoint{ID: "it-polpost", Countries: []string{"IT"}, SMSMinSeverity: DefaultSMSMinSeverity}, SMS,
			`{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}],"severity":["high","critical"]}`},
		{"sms from low", ContactPoint{ID: "gr-police", Countries: []string{"GR"}, SMSMinSeverity: casestore.Low}, SMS,
			`{"$or":[{"contact_point":["gr-police"]},{"contact_point":[{"exists":false}],"country":["GR"]}],"severity":["low","medium","high","critical"]}`},
		{"sms critical only", ContactPoint{ID: "eu-coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.Critical}, SMS,
			`{"$or":[{"contact_point":["eu-coordinator"]},{"contact_point":[{"exists":false}],"country":["EU"]}],"severity":["critical"]}`},
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
	// SNS allows at most 150 combinations of values in a policy. The
	// largest the directory can ask for is a contact point for every
	// country with SMS from low: within the limit whether "$or" counts as
	// the product of every list or as the sum of its alternatives.
	cp := ContactPoint{ID: "eu-coordinator", Countries: Countries, SMSMinSeverity: casestore.Low}
	product, expanded, err := FilterPolicyCombinations(FilterPolicy(cp, SMS))
	if err != nil {
		t.Fatal(err)
	}
	sev := len(casestore.Severities)
	if product != sev*len(Countries) || expanded != sev*(1+len(Countries)) {
		t.Errorf("counted %d and %d combinations", product, expanded)
	}
	if product > MaxFilterPolicyCombinations || expanded > MaxFilterPolicyCombinations {
		t.Errorf("%d and %d combinations: SNS refuses more than %d", product, expanded, MaxFilterPolicyCombinations)
	}
}

func TestFilterPolicyCombinations(t *testing.T) {
	tests := []struct {
		policy            string
		product, expanded int
	}{
		{`{"a":["1","2","3"],"b":["1"],"c":["1","2"]}`, 6, 6},
		{`{"s":["x"],"$or":[{"m":["1","2"]},{"n":["1","2"]}]}`, 4, 4},
		{`{"s":["x","y"],"$or":[{"m":["1"]},{"n":["1","2","3"],"o":["1"]}]}`, 6, 8},
		{`{"$or":[{"c":["it"],"s":["h","c"]},{"c":[{"exists":false}],"k":["IT","MT"],"s":["h","c"]}]}`, 8, 6},
	}
	for _, tc := range tests {
		product, expanded, err := FilterPolicyCombinations(tc.policy)
		if err != nil || product != tc.product || expanded != tc.expanded {
			t.Errorf("%s: %d, %d, %v; want %d, %d", tc.policy, product, expanded, err, tc.product, tc.expanded)
		}
	}
	if _, _, err := FilterPolicyCombinations(`{"a":`); err == nil {
		t.Error("not JSON: no error")
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
		{"transitional policy, as SNS may give it back", `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}],"severity":["high","critical"]}`,
			`{"severity":["critical","high"],"$or":[{"country":["MT","IT"],"contact_point":[{"exists":false}]},{"contact_point":["it-polpost"]}]}`, true},
		{"transitional policy, another country", `{"$or":[{"contact_point":["it"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}`,
			`{"$or":[{"contact_point":["it"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}]}`, false},
		{"transitional policy and the plain one", `{"$or":[{"contact_point":["it"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}`,
			`{"contact_point":["it"]}`, false},
		{"exists false and exists true", `{"$or":[{"a":["1"]},{"a":[{"exists":false}]}]}`, `{"$or":[{"a":["1"]},{"a":[{"exists":true}]}]}`, false},
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
