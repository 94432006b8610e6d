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
	AttrCountry      = "country"       // String.Array of ISO codes and/or EU (informative)
	AttrSeverity     = "severity"      // String: low, medium, high, critical
)

// ScopeMessageAttributes is the filter policy scope of every subscription.
const ScopeMessageAttributes = "MessageAttributes"

// FilterPolicy is the filter policy of one endpoint of cp: the alerts
// addressed to cp (its contact_point attribute) and, for SMS, only those at
// or above its SMS threshold. Which countries cp answers for is the alert
// function's business (it reads the directory), so a change of countries
// changes no subscription.
func FilterPolicy(cp ContactPoint, p Protocol) string {
	policy := map[string][]string{AttrContactPoint: {cp.ID}}
	if p == SMS {
		policy[AttrSeverity] = casestore.AtLeast(cp.SMSMinSeverity)
	}
	return compactJSON(policy)
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
		panic(err) // maps of strings always encode
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
