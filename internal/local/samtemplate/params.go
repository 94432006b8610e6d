package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
)

// ErrInvalidParameter: a parameter value that CloudFormation would refuse
// before creating anything (a name the template does not declare, or a
// value outside the parameter's constraints).
var ErrInvalidParameter = errors.New("invalid parameter value")

// ParameterSpec is a parameter's declaration: its type, default and the
// constraints CloudFormation checks a value against
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html).
type ParameterSpec struct {
	Name string
	// Type is String, Number, List<Number> or CommaDelimitedList (the
	// types that can be checked without an AWS account).
	Type                  string
	Default               string
	HasDefault            bool
	NoEcho                bool
	AllowedValues         []string
	AllowedPattern        string
	MinLength, MaxLength  *int
	MinValue, MaxValue    *float64
	ConstraintDescription string
}

// ParameterNames lists the template's parameters, sorted.
func (t *Template) ParameterNames() []string {
	entries, _ := mapping(child(t.root, "Parameters"))
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, keyOf(e))
	}
	slices.Sort(out)
	return out
}

// DeclaredParameter reads the declaration of parameter name.
func (t *Template) DeclaredParameter(name string) (*ParameterSpec, error) {
	n := child(t.root, "Parameters", name)
	if n == nil {
		return nil, fmt.Errorf("%w: the template declares no parameter %s (its parameters: %s)",
			ErrInvalidParameter, name, strings.Join(t.ParameterNames(), ", "))
	}
	p := &ParameterSpec{Name: name}
	var errs []error
	str := func(key string) (string, bool) {
		v := child(n, key)
		if v == nil {
			return "", false
		}
		s, ok := scalar(v)
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %s: %s is not a scalar", name, key))
		}
		return s, ok
	}
	p.Type, _ = str("Type")
	p.Default, p.HasDefault = str("Default")
	if s, ok := str("NoEcho"); ok {
		p.NoEcho = strings.EqualFold(s, "true")
	}
	p.AllowedPattern, _ = str("AllowedPattern")
	p.ConstraintDescription, _ = str("ConstraintDescription")
	if v := child(n, "AllowedValues"); v != nil {
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %s: AllowedValues is not a list", name))
		} else {
			for _, item := range seq.Values {
				s, ok := scalar(item)
				if !ok {
					errs = append(errs, fmt.Errorf("parameter %s: AllowedValues holds a non-scalar", name))
				}
				p.AllowedValues = append(p.AllowedValues, s)
			}
		}
	}
	for _, c := range []struct {
		key string
		to  **int
	}{{"MinLength", &p.MinLength}, {"MaxLength", &p.MaxLength}} {
		if s, ok := str(c.key); ok {
			v, err := strconv.Atoi(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %s: %s %q is not an integer", name, c.key, s))
				continue
			}
			*c.to = &v
		}
	}
	for _, c := range []struct {
		key string
		to  **float64
	}{{"MinValue", &p.MinValue}, {"MaxValue", &p.MaxValue}} {
		if s, ok := str(c.key); ok {
			v, ok := number(s)
			if !ok {
				errs = append(errs, fmt.Errorf("parameter %s: %s %q is not a number", name, c.key, s))
				continue
			}
			*c.to = &v
		}
	}
	if p.Type == "" {
		errs = append(errs, fmt.Errorf("parameter %s has no Type", name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckParameters checks values (name → value, as `sam deploy
// --parameter-overrides Name=Value` gives them) the way CloudFormation does
// before it creates anything: every name must be a declared parameter and
// every value must meet its parameter's type and constraints. The error
// lists every problem; each wraps ErrInvalidParameter.
func (t *Template) CheckParameters(values map[string]string) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(values)) {
		p, err := t.DeclaredParameter(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, p.Check(values[name]))
	}
	return errors.Join(errs...)
}

// Shown is value as it may be printed or put in an error: masked for a
// NoEcho parameter, as CloudFormation masks it.
func (p *ParameterSpec) Shown(value string) string {
	if p.NoEcho {
		return "****"
	}
	return strconv.Quote(value)
}

// Check checks one value against the parameter's type and constraints
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):
//   - Number: an integer or float, within MinValue and MaxValue;
//   - List<Number>: comma-separated numbers;
//   - CommaDelimitedList: comma-separated strings, each member space
//     trimmed; AllowedPattern and AllowedValues apply to each member;
//   - String: AllowedPattern matches the entire value; MinLength and
//     MaxLength bound its number of characters;
//   - AllowedValues: the value (each member, for a list) is one of them.
//
// Other types (AWS-specific and SSM parameter types) name things in an
// AWS account, which CloudFormation looks up; locally that cannot be
// checked, so they are refused.
func (p *ParameterSpec) Check(value string) error {
	var errs []error
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if p.ConstraintDescription != "" {
			msg += " (" + p.ConstraintDescription + ")"
		}
		errs = append(errs, fmt.Errorf("%w: parameter %s = %s: %s", ErrInvalidParameter, p.Name, p.Shown(value), msg))
	}
	members := []string{value}
	switch p.Type {
	case "String":
		n := utf8.RuneCountInString(value)
		if p.MinLength != nil && n < *p.MinLength {
			fail("%d characters, fewer than MinLength %d", n, *p.MinLength)
		}
		if p.MaxLength != nil && n > *p.MaxLength {
			fail("%d characters, more than MaxLength %d", n, *p.MaxLength)
		}
	case "Number":
		v, ok := number(value)
		if !ok {
			fail("not a number")
			break
		}
		if p.MinValue != nil && v < *p.MinValue {
			fail("less than MinValue %s", strconv.FormatFloat(*p.MinValue, 'g', -1, 64))
		}
		if p.MaxValue != nil && v > *p.MaxValue {
			fail("more than MaxValue %s", strconv.FormatFloat(*p.MaxValue, 'g', -1, 64))
		}
	case "List<Number>", "CommaDelimitedList":
		// One more member than there are commas, each space trimmed.
		members = strings.Split(value, ",")
		for i := range members {
			members[i] = strings.TrimSpace(members[i])
			if p.Type == "List<Number>" {
				if _, ok := number(members[i]); !ok {
					fail("member %d %q is not a number", i+1, members[i])
				}
			}
		}
	default:
		fail("type %s names resources in an AWS account and cannot be checked locally", p.Type)
		return errors.Join(errs...)
	}
	if p.AllowedPattern != "" && (p.Type == "String" || p.Type == "CommaDelimitedList") {
		// The pattern must match the whole value (each whole member).
		re, err := regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
		if err != nil {
			fail("AllowedPattern %q cannot be used locally: %v", p.AllowedPattern, err)
		} else {
			for _, m := range members {
				if !re.MatchString(m) {
					if len(members) == 1 && p.Type == "String" {
						fail("does not match AllowedPattern %s", p.AllowedPattern)
					} else {
						fail("member %q does not match AllowedPattern %s", m, p.AllowedPattern)
					}
				}
			}
		}
	}
	if p.AllowedValues != nil {
		for _, m := range members {
			if !slices.Contains(p.AllowedValues, m) {
				what := "not"
				if p.Type == "List<Number>" || p.Type == "CommaDelimitedList" {
					what = fmt.Sprintf("member %q is not", m)
				}
				fail("%s one of AllowedValues [%s]", what, strings.Join(p.AllowedValues, ", "))
			}
		}
	}
	return errors.Join(errs...)
}

// numberPattern is an integer or a decimal float, optionally with an
// exponent: no hex, no underscores, no Inf or NaN, which strconv would
// also accept.
var numberPattern = regexp.MustCompile(`^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)

func number(s string) (float64, bool) {
	if !numberPattern.MatchString(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
