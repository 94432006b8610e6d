package report

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkTextByPasses is checkText as it was: one pass over s per check.
func checkTextByPasses(bad func(field, code, msg string), field, s string, required bool, max int) {
	switch {
	case strings.TrimSpace(s) == "":
		if required {
			bad(field, "required", field+" is required")
		}
	case !utf8.ValidString(s):
		bad(field, "invalid_text", field+" must be valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		bad(field, "too_long", fmt.Sprintf("%s may be at most %d characters", field, max))
	case hasControl(s):
		bad(field, "control_characters", field+" must not contain control characters other than newlines and tabs")
	}
}

// checkText reads ASCII text in one pass; what it says about any text must
// be what the separate checks say.
func TestCheckTextMatchesSeparateChecks(t *testing.T) {
	inputs := []string{"", " ", "\t\n\v\f\r ", "a", " a ", "\x00", "a\x7f", "\v", "\va", "a\fb", "é", " \u00a0 ", "\u0085", "\xff", "abcdef", "abcdefg"}
	r := rand.New(rand.NewPCG(19, 20))
	alpha := []string{" ", "\t", "\n", "\v", "\f", "\r", "\x00", "\x1f", "\x7f", "a", "Z", "é", "\u0085", "\u00a0", "\u2028", "\xff"}
	for range 100000 {
		var b strings.Builder
		for range r.IntN(9) {
			b.WriteString(alpha[r.IntN(len(alpha))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		for _, required := range []bool{true, false} {
			var got, want []FieldError
			checkText(func(f, c, m string) { got = append(got, FieldError{f, c, m}) }, "x", s, required, 6)
			checkTextByPasses(func(f, c, m string) { want = append(want, FieldError{f, c, m}) }, "x", s, required, 6)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("checkText(%q, required=%v) = %v, want %v", s, required, got, want)
			}
		}
	}
}
