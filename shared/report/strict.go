package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// checkMembers refuses, in document order, what encoding/json would
// silently reinterpret instead of refusing, before decodeStrict lets it
// decode the body:
//
//   - a body that is not one JSON object (null included);
//   - a member name that appears twice in one object, at any depth
//     (encoding/json keeps the last; RFC 8259 §4 leaves the meaning to the
//     parser, RFC 7493 §2.3 (I-JSON) forbids it);
//   - in the report, notifier and evidence objects, any name that is not
//     exactly a field name (encoding/json matches names case-insensitively,
//     with Unicode folding: "URL" and "ſha256" would be taken as url and
//     sha256);
//   - null for a field or a countries entry: no field of a report may be
//     null (encoding/json leaves the field empty, as if it were absent);
//   - a \u escape that is a lone surrogate (encoding/json turns it into
//     U+FFFD; RFC 7493 §2.1 forbids it), and any other syntax error.
//
// The token reader is jsontext, the encoding/json v2 prototype's, which
// refuses duplicate names and lone surrogates by default.
func checkMembers(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	if err != nil {
		return syntaxError(err)
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("%w: the body must be a JSON object", ErrSyntax)
	}
	stack := []container{{names: bodyFields[:]}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		tok, err := dec.ReadToken()
		if err != nil {
			var syn *jsontext.SyntacticError
			if errors.As(err, &syn) && errors.Is(err, jsontext.ErrDuplicateName) {
				field := top.child(syn.JSONPointer.LastToken())
				return invalid(field, "duplicate_field", field+" appears more than once; send each field once")
			}
			return syntaxError(err)
		}
		k := tok.Kind()
		if k == '}' || k == ']' {
			stack = stack[:len(stack)-1]
			continue
		}
		if !top.array && !top.inValue {
			// A member name.
			top.name, top.inValue = tok.String(), true
			if top.names != nil && !slices.Contains(top.names, top.name) {
				return unknownField(top.child(top.name), top.name, top.names)
			}
			continue
		}
		path := top.next()
		if k == 'n' && top.names != nil || k == 'n' && top.array && top.path == "countries" {
			return invalid(path, "invalid_type", fmt.Sprintf("%s must be a JSON %s, not null", path, fieldKind(path, top.array)))
		}
		switch k {
		case '{':
			stack = append(stack, container{path: path, names: nestedFields(top, path)})
		case '[':
			stack = append(stack, container{path: path, array: true})
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return fmt.Errorf("%w: unexpected data after the object", ErrSyntax)
	}
	return nil
}

// container is an object or array being read by checkMembers.
type container struct {
	path    string   // of the container itself: "" for the body
	names   []string // the field names the object may have; nil: not checked
	array   bool
	name    string // object: the last member name
	inValue bool   // object: a name has been read, its value comes next
	index   int    // array: index of the next element
}

// child is the path of the member called name.
func (c *container) child(name string) string {
	if name == "" {
		name = `""` // an empty key: name it so the refusal still points somewhere
	}
	if c.path == "" {
		return name
	}
	return c.path + "." + name
}

// next returns the path of the value about to be read and moves past it.
func (c *container) next() string {
	if c.array {
		c.index++
		return fmt.Sprintf("%s[%d]", c.path, c.index-1)
	}
	c.inValue = false
	return c.child(c.name)
}

// nestedFields are the names an object at path may have: checked for
// notifier and evidence, not inside values of the wrong type (decodeStrict
// refuses those by their type).
func nestedFields(parent *container, path string) []string {
	if parent.path != "" || parent.array {
		return nil
	}
	switch path {
	case "notifier":
		return notifierFields[:]
	case "evidence":
		return evidenceFields[:]
	}
	return nil
}

// fieldKind is the JSON type of the field at path.
func fieldKind(path string, inArray bool) string {
	switch {
	case inArray:
		return "string"
	case path == "notifier" || path == "evidence":
		return "object"
	case path == "good_faith":
		return "boolean"
	case path == "countries":
		return "array"
	}
	return "string"
}

func invalid(field, code, msg string) error {
	return &InvalidError{Fields: []FieldError{{Field: field, Code: code, Message: msg}}}
}

// unknownField refuses a name that is not a field, pointing out a field it
// differs from only by case.
func unknownField(field, name string, names []string) error {
	msg := field + " is not a field of a report"
	for _, n := range names {
		if strings.EqualFold(n, name) {
			msg += fmt.Sprintf(" (field names are case-sensitive: did you mean %s?)", n)
			break
		}
	}
	return invalid(field, "unknown_field", msg)
}

// syntaxError describes a jsontext error as one of ErrSyntax, naming the
// field for the one error a form developer cannot see by looking at the
// characters: a lone surrogate escape.
func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the body is empty or cut short", ErrSyntax)
	}
	var syn *jsontext.SyntacticError
	if !errors.As(err, &syn) {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if strings.Contains(syn.Err.Error(), "surrogate") {
		where := "a string"
		if syn.JSONPointer != "" {
			where = "the value of " + pointerPath(syn.JSONPointer)
		}
		return fmt.Errorf("%w: invalid JSON at byte %d: %s has a \\u escape that is a lone UTF-16 surrogate, which is not a character", ErrSyntax, syn.ByteOffset, where)
	}
	return fmt.Errorf("%w: invalid JSON at byte %d", ErrSyntax, syn.ByteOffset)
}

// pointerPath writes a JSON Pointer the way field errors name fields:
// "/notifier/name" is notifier.name, "/countries/1" is countries[1].
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	prev := ""
	for tok := range p.Tokens() {
		switch {
		case prev == "countries" && b.Len() == len("countries"):
			fmt.Fprintf(&b, "[%s]", tok)
		case b.Len() > 0:
			b.WriteString("." + tok)
		default:
			b.WriteString(tok)
		}
		prev = tok
	}
	if b.Len() == 0 {
		return "the body"
	}
	return b.String()
}
