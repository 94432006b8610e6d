package devstack

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// ParseFilters turns a FilterCriteria property into the record filter
// Lambda applies: a record passes when any pattern matches it. Only the
// simple form is supported (nested objects and lists of exact values), which
// is what Flagline's template uses; anything else is an error, not a filter
// that silently lets everything through.
func ParseFilters(fc map[string]any) (func(events.DynamoDBEventRecord) bool, error) {
	list, _ := fc["Filters"].([]any)
	var patterns []map[string]any
	for i, f := range list {
		m, _ := f.(map[string]any)
		raw, _ := m["Pattern"].(string)
		var p map[string]any
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, fmt.Errorf("filter %d: pattern is not a JSON object: %w", i, err)
		}
		if err := checkSimple(p); err != nil {
			return nil, fmt.Errorf("filter %d: %w", i, err)
		}
		patterns = append(patterns, p)
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	return func(r events.DynamoDBEventRecord) bool {
		raw, err := json.Marshal(r)
		if err != nil {
			return false
		}
		var doc map[string]any
		if json.Unmarshal(raw, &doc) != nil {
			return false
		}
		for _, p := range patterns {
			if match(p, doc) {
				return true
			}
		}
		return false
	}, nil
}

func checkSimple(p map[string]any) error {
	for k, v := range p {
		switch v := v.(type) {
		case map[string]any:
			if err := checkSimple(v); err != nil {
				return fmt.Errorf("%s.%w", k, err)
			}
		case []any:
			for _, e := range v {
				switch e.(type) {
				case string, float64, bool, nil:
				default:
					return fmt.Errorf("%s: only lists of exact values are supported locally, not %v", k, e)
				}
			}
		default:
			return fmt.Errorf("%s: a pattern value must be an object or a list", k)
		}
	}
	return nil
}

func match(p map[string]any, doc map[string]any) bool {
	for k, want := range p {
		got, ok := doc[k]
		switch want := want.(type) {
		case map[string]any:
			sub, isMap := got.(map[string]any)
			if !ok || !isMap || !match(want, sub) {
				return false
			}
		case []any:
			if !ok || !matchValue(want, got) {
				return false
			}
		}
	}
	return true
}

func matchValue(allowed []any, got any) bool {
	for _, a := range allowed {
		if fmt.Sprint(a) == fmt.Sprint(got) {
			return true
		}
	}
	return false
}

// ParseRate reads a schedule expression of the form rate(N unit).
func ParseRate(expr string) (time.Duration, error) {
	inner, ok := strings.CutPrefix(expr, "rate(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return 0, fmt.Errorf("schedule %q: only rate(N unit) expressions run locally", expr)
	}
	fields := strings.Fields(strings.TrimSuffix(inner, ")"))
	if len(fields) != 2 {
		return 0, fmt.Errorf("schedule %q: want rate(N unit)", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q: %q is not a positive number", expr, fields[0])
	}
	unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[fields[1]]
	if unit == 0 {
		return 0, fmt.Errorf("schedule %q: unit must be minutes, hours or days", expr)
	}
	return time.Duration(n) * unit, nil
}

func intProp(props map[string]any, name string, def int) int {
	switch v := props[name].(type) {
	case uint64:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func nested(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}
