package report

import "bytes"

// Field names of Body, Notifier and Evidence, exactly as their json tags spell
// them (TestPlainFieldsAreTheTags checks). Indexes of bodyFields are bits of
// scanPlain's result.
const (
	fieldURL = iota
	fieldCategory
	fieldExplanation
	fieldNotifier
	fieldGoodFaith
	fieldCountries
	fieldPlatform
	fieldLanguage
	fieldObservedAt
	fieldEvidence
)

var (
	bodyFields = [...]string{
		fieldURL:         "url",
		fieldCategory:    "category",
		fieldExplanation: "explanation",
		fieldNotifier:    "notifier",
		fieldGoodFaith:   "good_faith",
		fieldCountries:   "countries",
		fieldPlatform:    "platform",
		fieldLanguage:    "language",
		fieldObservedAt:  "observed_at",
		fieldEvidence:    "evidence",
	}
	notifierFields = [...]string{"name", "email"}
	evidenceFields = [...]string{"sha256", "archive_url"}
)

// scanPlain reports whether body is one JSON object, with nothing but white
// space around it, whose keys are field names of Body spelt exactly as in
// their tags, without escapes, each at most once, and likewise the keys of
// notifier and evidence when they are objects, and which has no null
// anywhere. seen has bit fieldX set when
// the object has key X.
//
// It answers for well-formed JSON only and checks no more of the syntax than
// it needs to find the keys: decodePlain passes the body to json.Unmarshal,
// which refuses what is malformed. A name missing from the lists above only
// makes bodies with it take the slower path; a name there that is not a
// field would let an unknown field through, hence the test.
func scanPlain(body []byte) (seen uint16, ok bool) {
	s := plainScanner{b: body}
	s.space()
	if !s.next('{') {
		return 0, false
	}
	seen, ok = s.object(bodyFields[:], true)
	s.space()
	return seen, ok && s.i == len(s.b)
}

type plainScanner struct {
	b []byte
	i int
}

func (s *plainScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *plainScanner) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads the rest of an object whose '{' has been read. Its keys must
// be among names, each at most once. When top is set, the values of notifier
// and evidence are read the same way if they are objects.
func (s *plainScanner) object(names []string, top bool) (seen uint16, ok bool) {
	s.space()
	if s.next('}') {
		return 0, true
	}
	for {
		s.space()
		n, ok := s.key(names)
		if !ok || seen&(1<<n) != 0 {
			return 0, false
		}
		seen |= 1 << n
		s.space()
		if !s.next(':') {
			return 0, false
		}
		s.space()
		var nested []string
		if top && n == fieldNotifier {
			nested = notifierFields[:]
		} else if top && n == fieldEvidence {
			nested = evidenceFields[:]
		}
		if nested != nil && s.next('{') {
			if _, ok := s.object(nested, false); !ok {
				return 0, false
			}
		} else if !s.skipValue() {
			return 0, false
		}
		s.space()
		if s.next('}') {
			return seen, true
		}
		if !s.next(',') {
			return 0, false
		}
	}
}

// key reads a string without escapes and returns its index in names.
func (s *plainScanner) key(names []string) (int, bool) {
	if !s.next('"') {
		return 0, false
	}
	end := bytes.IndexByte(s.b[s.i:], '"')
	if end < 0 {
		return 0, false
	}
	k := s.b[s.i : s.i+end]
	s.i += end + 1
	if bytes.IndexByte(k, '\\') >= 0 {
		return 0, false
	}
	for n, name := range names {
		if string(k) == name {
			return n, true
		}
	}
	return 0, false
}

// skipValue skips one value: a string, a literal or number (up to the next
// delimiter), or a whole array or object.
func (s *plainScanner) skipValue() bool {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			if !s.skipString() {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				s.i++
				return true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return true
			}
		case 'n':
			// null, which the strict path refuses for every field and
			// countries entry (outside a string, 'n' starts nothing else).
			return false
		}
		s.i++
	}
	return depth == 0
}

// skipString skips a string whose opening quote is at s.i.
func (s *plainScanner) skipString() bool {
	s.i++
	start := s.i
	for {
		end := bytes.IndexByte(s.b[s.i:], '"')
		if end < 0 {
			s.i = len(s.b)
			return false
		}
		s.i += end
		// The quote ends the string unless an odd number of backslashes
		// escape it.
		k := s.i
		for k > start && s.b[k-1] == '\\' {
			k--
		}
		s.i++
		if (s.i-1-k)%2 == 0 {
			return true
		}
	}
}
