package contacts

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/flagline/flagline/shared/casestore"
)

// Message attribute names the filter policies match on; the alert function
// sets them on every message. The alert function resolves the recipients
// itself (the contact points whose countries the case concerns) and sends
// one message per recipient, so a policy matches its own contact point.
const (
	AttrContactPoint = "contact_point" // String: the recipient's id
	AttrCountry      = "country"       // String.Array of ISO codes and/or EU (matched only on messages without contact_point)
	AttrSeverity     = "severity"      // String: low, medium, high, critical
)

// ScopeMessageAttributes is the filter policy scope of every subscription.
const ScopeMessageAttributes = "MessageAttributes"

// FilterPolicy is the filter policy of one endpoint of cp: the alerts
// addressed to cp (its contact_point attribute) and, for SMS, only those at
// or above its SMS threshold. Which countries cp answers for is the alert
// function's business (it reads the directory); here they serve only the
// messages without contact_point, below.
//
// The policy also accepts what an alert function from before per-desk
// alerts sent: a message without contact_point, about one of cp's
// countries (the policy of that version). So `flagline contacts apply`
// can run before the new function is deployed with no gap (the old
// function's messages still arrive) and no duplicates (a per-desk copy
// carries contact_point, so only its own desk takes it, although it also
// carries country). Once the new function runs, no message lacks
// contact_point and the second branch never matches again.
//
// The severity rule stays outside "$or": the same messages match as with
// it repeated in both branches, and the policy stays small whatever the
// way SNS counts combinations under "$or" (see FilterPolicyCombinations).
// https://docs.aws.amazon.com/sns/latest/dg/and-or-logic.html ("$or")
// https://docs.aws.amazon.com/sns/latest/dg/attribute-key-matching.html
// ("exists": false matches a message that has other attributes but not
// this one; every alert has country and severity).
func FilterPolicy(cp ContactPoint, p Protocol) string {
	policy := map[string]any{
		"$or": []map[string]any{
			{AttrContactPoint: []string{cp.ID}},
			{AttrContactPoint: []any{map[string]bool{"exists": false}}, AttrCountry: cp.Countries},
		},
	}
	if p == SMS {
		policy[AttrSeverity] = casestore.AtLeast(cp.SMSMinSeverity)
	}
	return compactJSON(policy)
}

// MaxFilterPolicyCombinations is the most combinations of values SNS
// accepts in a filter policy.
// https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html
const MaxFilterPolicyCombinations = 150

// FilterPolicyCombinations counts the combinations of values in a policy
// made of rule lists and "$or" alternatives, two ways: as the product of
// the lengths of every rule list in the document (the constraints page's
// rule read literally), and with each "$or" counted as the sum of its
// alternatives' combinations (how an "$or" policy expands into plain
// ones). A policy within the limit both ways is within it whichever SNS
// applies.
func FilterPolicyCombinations(policy string) (product, expanded int, err error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(policy), &v); err != nil {
		return 0, 0, err
	}
	return combinations(v, false), combinations(v, true), nil
}

func combinations(obj map[string]any, expand bool) int {
	n := 1
	for k, v := range obj {
		list, _ := v.([]any)
		if k != "$or" {
			n *= len(list)
			continue
		}
		sum, prod := 0, 1
		for _, alt := range list {
			m, _ := alt.(map[string]any)
			c := combinations(m, expand)
			sum += c
			prod *= c
		}
		if expand {
			n *= sum
		} else {
			n *= prod
		}
	}
	return n
}

// RedrivePolicy is the subscription's RedrivePolicy for a dead-letter
// queue ARN, or "" for none.
func RedrivePolicy(dlqARN string) string {
	if dlqARN == "" {
		return ""
	}
	return compactJSON(map[string]string{"deadLetterTargetArn": dlqARN})
}

func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // maps, slices and strings always encode
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// SameFilterPolicy reports whether two filter policies accept the same
// messages as far as their JSON says: key order, spacing, number spelling
// and the order (or repetition) of the values in a rule list do not matter.
// Order inside an operator ({"numeric": [">", 0, "<", 5]}) does. "" and
// "{}" are both no policy. A document that is not JSON equals only itself.
func SameFilterPolicy(a, b string) bool {
	return sameJSON(a, b, true)
}

// SameJSON reports whether two JSON documents are equal as values; "" and
// "{}" are both empty.
func SameJSON(a, b string) bool {
	return sameJSON(a, b, false)
}

func sameJSON(a, b string, policy bool) bool {
	ca, okA := canonicalJSON(a, policy)
	cb, okB := canonicalJSON(b, policy)
	if !okA || !okB {
		return a == b
	}
	return ca == cb
}

// canonicalJSON re-encodes a document so that equal values give equal text.
func canonicalJSON(doc string, policy bool) (string, bool) {
	if len(bytes.TrimSpace([]byte(doc))) == 0 {
		return "{}", true
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", false
	}
	level := plain
	if policy {
		level = policyObject
	}
	return canonical(v, level), true
}

// Where a value sits in a filter policy decides whether order matters.
type position int

const (
	plain        position = iota // order matters (or not a policy at all)
	policyObject                 // attribute names (or nested properties, or $or) → rules
	ruleList                     // alternatives: order and repetition do not matter
	orList                       // "$or": alternatives that are policy objects
)

func canonical(v any, at position) string {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b bytes.Buffer
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			next := plain
			if at == policyObject {
				switch _, isList := v[k].([]any); {
				case k == "$or":
					next = orList
				case isList:
					next = ruleList
				default:
					next = policyObject // nested property (MessageBody scope)
				}
			}
			b.WriteString(canonical(v[k], next))
		}
		b.WriteByte('}')
		return b.String()
	case []any:
		elems := make([]string, len(v))
		for i, e := range v {
			switch at {
			case orList:
				elems[i] = canonical(e, policyObject)
			default:
				// Operators inside a rule list keep their order.
				elems[i] = canonical(e, plain)
			}
		}
		if at == ruleList || at == orList {
			slices.Sort(elems)
			elems = slices.Compact(elems)
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range elems {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(e)
		}
		b.WriteByte(']')
		return b.String()
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return string(v)
	case string:
		return strconv.Quote(v)
	default: // bool, nil
		s, _ := json.Marshal(v)
		return string(s)
	}
}
