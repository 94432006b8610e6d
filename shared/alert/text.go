package alert

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// asciiFold maps letters that compatibility decomposition leaves alone.
var asciiFold = map[rune]string{
	'ß': "ss", 'ẞ': "SS", 'æ': "ae", 'Æ': "AE", 'œ': "oe", 'Œ': "OE",
	'ø': "o", 'Ø': "O", 'đ': "d", 'Đ': "D", 'ł': "l", 'Ł': "L",
	'þ': "th", 'Þ': "Th", 'ð': "d", 'Ð': "D", 'ı': "i", 'ħ': "h", 'Ħ': "H",
	'‘': "'", '’': "'", '‚': "'", '“': "\"", '”': "\"", '„': "\"",
	'«': "\"", '»': "\"", '–': "-", '—': "-", '‐': "-", '−': "-",
}

// ASCII transliterates s to printable ASCII on one line: accents are
// removed (é → e), a few letters are spelled out (ß → ss), "…" becomes
// "...", control characters and line breaks become spaces, runs of spaces
// collapse, and whatever has no ASCII form is dropped.
func ASCII(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	put := func(r rune) {
		if r == ' ' {
			space = b.Len() > 0
			return
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	for _, r := range norm.NFKD.String(s) {
		switch {
		case r >= 0x21 && r <= 0x7e:
			put(r)
		case r == ' ' || unicode.IsSpace(r) || unicode.IsControl(r):
			put(' ')
		case unicode.Is(unicode.Mn, r):
		default:
			for _, f := range asciiFold[r] {
				put(f)
			}
		}
	}
	return b.String()
}

// oneLine replaces control characters, line breaks and bidirectional
// overrides (which could make a quoted text display as something else) with
// spaces and collapses runs of spaces, keeping every other character.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
	}), " ")
}

// truncate shortens s to at most n runes, ending it with tail when cut.
func truncate(s string, n int, tail string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n - utf8.RuneCountInString(tail)
	if keep <= 0 {
		return string([]rune(tail)[:max(n, 0)])
	}
	return strings.TrimRight(string([]rune(s)[:keep]), " ") + tail
}

// truncateBytes shortens s to at most n bytes, cutting at a rune boundary
// and ending it with tail when cut.
func truncateBytes(s string, n int, tail string) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(tail)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + tail
}
