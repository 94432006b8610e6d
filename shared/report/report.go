// Package report decodes and validates the body of a webhook report: the
// notice a reporting form sends about one piece of online content.
//
// The body carries what Article 16(2) of the Digital Services Act asks of a
// notice (why the content is thought illegal, its exact URL, the notifier's
// name and email, a good-faith statement) plus what Flagline needs to route
// it (category, the Member States concerned). Decoding is strict: an unknown
// field is an error that names the field, so a form developer learns of a typo
// at once instead of losing data silently; so are a field sent twice, a name
// that differs from a field's only by case, and null for any field. Nothing
// in a body is silently reinterpreted.
package report

import (
	"bytes"
	"encoding/json"

	"errors"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"io"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flagline/flagline/shared/canon"
)

// Limits on field sizes, in characters.
const (
	MaxExplanation = 5000
	MaxName        = 200
	MaxEmail       = 254
	MaxPlatform    = 100
	MaxLanguage    = 35
	MaxCountries   = 32
)

// Category says what the reported content offers.
type Category string

// The categories a report may carry.
const (
	SmugglingOffer  Category = "smuggling_offer"
	ForgedDocuments Category = "forged_documents"
	Transport       Category = "transport"
	Accommodation   Category = "accommodation"
	Recruitment     Category = "recruitment"
	ThreatToLife    Category = "threat_to_life"
	Other           Category = "other"
)

// Categories lists every valid category, in the order the docs show them.
var Categories = []Category{SmugglingOffer, ForgedDocuments, Transport, Accommodation, Recruitment, ThreatToLife, Other}

// Valid reports whether c is one of Categories.
func (c Category) Valid() bool { return slices.Contains(Categories, c) }

// EU is the pseudo-country that addresses the EU-level coordinator.
const EU = "EU"

// memberStates are the ISO 3166-1 alpha-2 codes of the EU and EEA states.
var memberStates = map[string]bool{
	"AT": true, "BE": true, "BG": true, "HR": true, "CY": true, "CZ": true, "DK": true,
	"EE": true, "FI": true, "FR": true, "DE": true, "GR": true, "HU": true, "IE": true,
	"IT": true, "LV": true, "LT": true, "LU": true, "MT": true, "NL": true, "PL": true,
	"PT": true, "RO": true, "SK": true, "SI": true, "ES": true, "SE": true,
	"IS": true, "LI": true, "NO": true,
	EU: true,
}

// IsCountry reports whether code is an EU/EEA member state code or EU.
func IsCountry(code string) bool { return memberStates[code] }

// Notifier is the person or body that sent the notice (DSA Art. 16(2)(c)).
// It is personal data: Flagline keeps it only on the report item, which expires.
type Notifier struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Evidence points at a preserved copy of the content.
type Evidence struct {
	SHA256     string `json:"sha256,omitempty"`
	ArchiveURL string `json:"archive_url,omitempty"`
}

// Body is the JSON body of a report, exactly as the contract defines it.
type Body struct {
	URL         string    `json:"url"`
	Category    Category  `json:"category"`
	Explanation string    `json:"explanation"`
	Notifier    *Notifier `json:"notifier"`
	GoodFaith   *bool     `json:"good_faith"`
	Countries   []string  `json:"countries,omitempty"`
	Platform    string    `json:"platform,omitempty"`
	Language    string    `json:"language,omitempty"`
	ObservedAt  string    `json:"observed_at,omitempty"`
	Evidence    *Evidence `json:"evidence,omitempty"`
}

// Report is a decoded, validated report with the fields Flagline derives.
type Report struct {
	// Body is the report as sent.
	Body Body
	// Link is the canonical form of Body.URL and the case it belongs to.
	Link canon.URL
	// Countries is Body.Countries upper-cased, de-duplicated and sorted.
	Countries []string
	// Platform is Body.Platform when given, else the one derived from the URL.
	Platform string
	// ObservedAt is the parsed Body.ObservedAt, zero when absent.
	ObservedAt time.Time
}

// FieldError is one invalid field. Code is machine-readable.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// InvalidError lists every invalid field of a body that decoded as JSON.
type InvalidError struct{ Fields []FieldError }

func (e *InvalidError) Error() string {
	if len(e.Fields) == 1 {
		f := e.Fields[0]
		return fmt.Sprintf("%s: %s", f.Field, f.Message)
	}
	return fmt.Sprintf("%d fields are invalid", len(e.Fields))
}

// ErrSyntax marks a body that is not one JSON object.
var ErrSyntax = errors.New("body is not a JSON object")

// Decode parses and validates body. now is the time the report was received;
// it bounds observed_at. A malformed body gives an error wrapping ErrSyntax; a
// body with wrong or invalid fields gives an *InvalidError.
func Decode(body []byte, now time.Time) (*Report, error) {
	// decodePlain takes only valid UTF-8 (v2 refuses any other, in strings
	// and out), so the body is checked only on the way to the strict path.
	if d := decodePlain(body); d != nil {
		return d.validate(now)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: the body is not valid UTF-8", ErrSyntax)
	}
	b, err := decodeStrict(body)
	if err != nil {
		return nil, err
	}
	return Validate(b, now)
}

// decodeStrict decodes body as one JSON object with no unknown, repeated
// or null field (checkMembers), then with encoding/json, which names the
// field of a wrong JSON type.
func decodeStrict(body []byte) (Body, error) {
	if err := checkMembers(body); err != nil {
		return Body{}, err
	}
	var b Body
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Body{}, decodeError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Body{}, fmt.Errorf("%w: unexpected data after the object", ErrSyntax)
	}
	return b, nil
}

// decoded is a Report with room for what its Body points to, so that a
// typical report is decoded and validated with one allocation of its own
// (encoding/json still allocates each string it decodes).
type decoded struct {
	Report
	notifier  Notifier
	evidence  Evidence
	goodFaith bool
	countries [4]string // Body.Countries, when there are at most 4
	canon     [4]string // Report.Countries, likewise
}

// decodePlain decodes a plain body, the kind every well-behaved sender sends:
// one JSON object whose keys (and those of notifier and evidence) are exactly
// field names, each at most once, with no null. It returns nil for anything
// else, and for anything the decoder refuses; Decode then uses decodeStrict
// (an encoding/json Decoder with DisallowUnknownFields), so that every
// refusal and its message come from that one path.
//
// Plain bodies are decoded with github.com/go-json-experiment/json (the
// encoding/json v2 prototype): about half the time and a third of the
// allocations of encoding/json for the same struct, which is what brings the
// intake's hot path near its floor (BenchmarkCore). For a plain body the
// outcome is the same (FuzzDecodePlainMatchesStrict). v2 itself refuses
// what checkMembers makes the strict path refuse, but for null: with
// plainOptions it refuses a name that is not a field (it matches names
// case-sensitively, after unescaping them, as checkMembers does), a repeated
// name, invalid UTF-8 and lone surrogates, and any of these sends the body to
// decodeStrict. Null it reads as the zero value, so a body with "null" in
// it anywhere is read by scanPlain first (decodeScanned); a body without
// (nearly every body) has no null, and v2's answer is enough.
func decodePlain(body []byte) *decoded {
	if bytes.Contains(body, null) {
		return decodeScanned(body)
	}
	d := new(decoded)
	b := &d.Body
	// The decoder fills what a pointer or slice already points to, so b
	// points at d's own storage where it can; a field the body lacks must
	// still come out nil. notifier and good_faith are required: a body
	// that leaves them empty or false is refused by validation, and only
	// then does scanPlain say whether the body had them. evidence is
	// optional and stays nil unless the body has it (then the decoder
	// allocates it). countries is optional too: the decoder writes a
	// slice from its start ([] gives an empty slice), so a mark that no
	// decoded string can equal, left in place, shows the body has none.
	b.Notifier, b.GoodFaith = &d.notifier, &d.goodFaith
	d.countries[0] = noCountries
	b.Countries = d.countries[:1]
	if jsonv2.Unmarshal(body, b, plainOptions) != nil {
		return nil
	}
	if len(b.Countries) == 1 && b.Countries[0] == noCountries {
		b.Countries = nil
	}
	if *b.Notifier == (Notifier{}) || !*b.GoodFaith {
		seen, ok := scanPlain(body)
		if !ok {
			return nil
		}
		if seen&(1<<fieldNotifier) == 0 {
			b.Notifier = nil
		}
		if seen&(1<<fieldGoodFaith) == 0 {
			b.GoodFaith = nil
		}
	}
	return d
}

// noCountries marks a countries slice the decoder has not written to. It is
// not UTF-8, and v2 decodes only valid UTF-8 strings (escapes included), so
// no country a body sends can equal it.
const noCountries = "\xff"

// null is the JSON literal null.
var null = []byte("null")

// plainOptions are v2's options for plain bodies. Made once: building
// options on every call costs time on the hot path.
var plainOptions = jsonv2.RejectUnknownMembers(true)

// decodeScanned is decodePlain for a body that may have a null: scanPlain
// rules it out first (and names with escapes, which it does not read).
func decodeScanned(body []byte) *decoded {
	seen, ok := scanPlain(body)
	if !ok {
		return nil
	}
	d := new(decoded)
	b := &d.Body
	// Point b at d's own storage where the body has the field; the decoder
	// fills what a pointer or slice already points to. A field that is
	// absent stays nil; scanPlain has refused null.
	if seen&(1<<fieldNotifier) != 0 {
		b.Notifier = &d.notifier
	}
	if seen&(1<<fieldEvidence) != 0 {
		b.Evidence = &d.evidence
	}
	if seen&(1<<fieldGoodFaith) != 0 {
		b.GoodFaith = &d.goodFaith
	}
	if seen&(1<<fieldCountries) != 0 {
		b.Countries = d.countries[:0]
	}
	if jsonv2.Unmarshal(body, b, plainOptions) != nil {
		return nil
	}
	return d
}

// validate validates a decodePlain result in place.
func (d *decoded) validate(now time.Time) (*Report, error) {
	if err := d.Report.validate(now, d.canon[:0]); err != nil {
		return nil, err
	}
	return &d.Report, nil
}

func decodeError(body []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("%w: the body must be a JSON object", ErrSyntax)
		}
		return &InvalidError{Fields: []FieldError{{
			Field: field, Code: "invalid_type",
			Message: fmt.Sprintf("%s must be a JSON %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value),
		}}}
	default:
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("%w: invalid JSON at byte %d", ErrSyntax, syn.Offset)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the body is empty or cut short", ErrSyntax)
		}
		return fmt.Errorf("%w: %v", ErrSyntax, strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean"
	default:
		return goKind
	}
}

// Validate checks every field of b and derives the rest of the Report.
func Validate(b Body, now time.Time) (*Report, error) {
	r := &Report{Body: b}
	if err := r.validate(now, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// validate checks r.Body and sets the fields derived from it. It appends the
// normalised countries to cs, which may have room for them.
func (r *Report) validate(now time.Time, cs []string) error {
	var errs []FieldError
	bad := func(field, code, msg string) { errs = append(errs, FieldError{field, code, msg}) }
	b := &r.Body

	if b.URL == "" {
		bad("url", "required", "url is required")
	} else if link, err := canon.Parse(b.URL); err != nil {
		var ce *canon.Error
		if errors.As(err, &ce) {
			bad("url", ce.Code, ce.Message)
		} else {
			bad("url", "url_invalid", "url is not a valid URL")
		}
	} else {
		r.Link = link
	}

	switch {
	case b.Category == "":
		bad("category", "required", "category is required")
	case !b.Category.Valid():
		bad("category", "invalid_value", "category must be one of smuggling_offer, forged_documents, transport, accommodation, recruitment, threat_to_life, other")
	}

	checkText(bad, "explanation", b.Explanation, true, MaxExplanation)

	if b.Notifier == nil {
		bad("notifier", "required", "notifier {name, email} is required (DSA Art. 16(2)(c))")
	} else {
		checkText(bad, "notifier.name", b.Notifier.Name, true, MaxName)
		switch {
		case b.Notifier.Email == "":
			bad("notifier.email", "required", "notifier.email is required")
		case len(b.Notifier.Email) > MaxEmail || !validEmail(b.Notifier.Email):
			bad("notifier.email", "invalid_email", "notifier.email must be a plain email address such as name@example.org")
		}
	}

	switch {
	case b.GoodFaith == nil:
		bad("good_faith", "required", "good_faith is required (DSA Art. 16(2)(d))")
	case !*b.GoodFaith:
		bad("good_faith", "must_be_true", "good_faith must be true: the notifier states the notice is accurate and complete")
	}

	if len(b.Countries) > MaxCountries {
		bad("countries", "too_many", fmt.Sprintf("countries may list at most %d codes", MaxCountries))
	} else if len(b.Countries) > 0 {
		if cap(cs) < len(b.Countries) {
			cs = make([]string, 0, len(b.Countries))
		}
		for i, c := range b.Countries {
			code, ok := countryCode(c)
			if !ok {
				bad(fmt.Sprintf("countries[%d]", i), "invalid_country", "countries must be ISO 3166-1 alpha-2 codes of EU/EEA states, or EU")
				continue
			}
			if !slices.Contains(cs, code) {
				cs = append(cs, code)
			}
		}
		slices.Sort(cs)
		r.Countries = cs
	}

	if b.Platform != "" {
		checkText(bad, "platform", b.Platform, false, MaxPlatform)
		r.Platform = strings.ToLower(b.Platform)
	} else {
		r.Platform = r.Link.Platform
	}

	if b.Language != "" && !validLanguage(b.Language) {
		bad("language", "invalid_language", "language must be a BCP 47 tag such as it or pt-BR")
	}

	if b.ObservedAt != "" {
		t, err := time.Parse(time.RFC3339, b.ObservedAt)
		switch {
		case err != nil:
			bad("observed_at", "invalid_time", "observed_at must be an RFC 3339 time such as 2026-05-01T12:00:00Z")
		case t.After(now.Add(5 * time.Minute)):
			bad("observed_at", "invalid_time", "observed_at is in the future")
		default:
			r.ObservedAt = t.UTC()
		}
	}

	if e := b.Evidence; e != nil {
		if e.SHA256 != "" && !isHex(e.SHA256, 64) {
			bad("evidence.sha256", "invalid_sha256", "evidence.sha256 must be 64 hexadecimal characters")
		}
		if e.ArchiveURL != "" && !validArchiveURL(e.ArchiveURL) {
			bad("evidence.archive_url", "invalid_url", "evidence.archive_url must be an http or https URL of at most 2048 characters")
		}
	}

	if errs != nil {
		return &InvalidError{Fields: errs}
	}
	return nil
}

// countryCode upper-cases c and maps EL, the EU's own code for Greece, to GR.
// ok says whether the result is a member state code or EU. Codes are two
// ASCII letters: Unicode case mapping would read "ıt" (dotless i) as IT and
// "ſe" (long s) as SE.
func countryCode(c string) (code string, ok bool) {
	if len(c) != 2 || !asciiLetter(c[0]) || !asciiLetter(c[1]) {
		return "", false
	}
	// Without allocating the upper-cased string.
	code, ok = countryCodes[string([]byte{upperASCII(c[0]), upperASCII(c[1])})]
	return code, ok
}

func asciiLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// countryCodes maps each upper-case two-letter spelling countryCode accepts
// to the code it stands for.
var countryCodes = func() map[string]string {
	m := map[string]string{"EL": "GR"}
	for code := range memberStates {
		m[code] = code
	}
	return m
}()

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func checkText(bad func(field, code, msg string), field, s string, required bool, max int) {
	if ascii, blank, control := scanASCII(s); ascii {
		// The same checks in the same order, from one pass over s.
		switch {
		case blank:
			if required {
				bad(field, "required", field+" is required")
			}
		case len(s) > max:
			bad(field, "too_long", fmt.Sprintf("%s may be at most %d characters", field, max))
		case control:
			bad(field, "control_characters", field+" must not contain control characters other than newlines and tabs")
		}
		return
	}
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

// scanASCII reports whether s is all ASCII and, if so, whether it is only
// white space (as strings.TrimSpace reads it) and whether hasControl(s).
func scanASCII(s string) (ascii, blank, control bool) {
	blank = true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return false, false, false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c == '\v' || c == '\f':
			control = true
		case c < 0x20 || c == 0x7f:
			control = true
			blank = false
		default:
			blank = false
		}
	}
	return true, blank, control
}

func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

func validEmail(s string) bool {
	if plainAddress(s) {
		return true
	}
	if strings.ContainsAny(s, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

// plainAddress reports whether s is an everyday address that net/mail
// accepts as it is: local@domain where both parts are ASCII dot-atoms
// (RFC 5322 atext and single inner dots) and the domain has a dot. It allocates
// nothing; validEmail leaves every other form to net/mail.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	return dotAtom(local) && dotAtom(domain) && strings.IndexByte(domain, '.') >= 0
}

// dotAtom reports whether s is a non-empty RFC 5322 dot-atom of ASCII atext.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case c < '!' || c > '~':
			return false
		case c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' ||
			c == ':' || c == ';' || c == '@' || c == '\\' || c == ',' || c == '"': // RFC 5322 specials
			return false
		}
	}
	return true
}

func validLanguage(s string) bool {
	if len(s) > MaxLanguage {
		return false
	}
	for i, rest := 0, s; ; i++ {
		part, tail, more := strings.Cut(rest, "-")
		if len(part) == 0 || len(part) > 8 || (i == 0 && (len(part) < 2 || len(part) > 3)) {
			return false
		}
		for _, c := range part {
			alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !alpha && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
		if !more {
			return true
		}
		rest = tail
	}
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func validArchiveURL(s string) bool {
	if len(s) > 2048 || hasControl(s) {
		return false
	}
	if plainHTTPURL(s) {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// plainHTTPURL reports whether s is an http or https URL that url.Parse
// takes without looking further: "http://" or "https://", a host of ASCII
// letters, digits, dots and hyphens, and after it no '%' (whose escapes
// url.Parse checks) and no control character. It saves url.Parse's work and
// allocation on the intake's hot path; validArchiveURL leaves every other
// form to url.Parse (TestValidArchiveURLMatchesURLParse checks they agree).
func plainHTTPURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '%' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
