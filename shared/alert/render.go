package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flagline/flagline/shared/casestore"
)

// Limits of the rendered texts.
const (
	// MaxSubject is the longest email subject: SNS wants it under 100
	// characters, plain ASCII, on one line.
	MaxSubject = 99
	// MaxEmailBytes caps the email body; explanations are shortened first.
	MaxEmailBytes = 8 << 10
	// maxURLBytes and maxPlatformRunes bound single fields of the body.
	maxURLBytes      = 2 << 10
	maxPlatformRunes = 100
	// maxExplanations is how many notifiers' explanations an email quotes.
	maxExplanations = 5
)

// ProtectedNotice is what every alert of a protected case says: its email,
// its SMS and its JSON payload's text (shared/protect).
const ProtectedNotice = "humanitarian source: do not request takedown"

// protectedHeadline is the email line that opens a protected case's
// notice, in every email that shows the case (alerts, reminders,
// escalations, digests).
const protectedHeadline = "PROTECTED - " + ProtectedNotice

// smsProtected is what an SMS about a case says right after "Flagline ":
// the notice for a protected case (first, so that no shorter form drops
// it), nothing otherwise.
func smsProtected(protected bool) string {
	if !protected {
		return ""
	}
	return ProtectedNotice + ". "
}

// protectedEmail is the notice an email about a protected case opens
// with; by names the allow-list entry (casestore.Case.ProtectedBy).
func protectedEmail(line func(format string, args ...any), by string) {
	line("%s.", protectedHeadline)
	line("This content matches the humanitarian allow-list (rescue hotlines, UN")
	line("agencies, Red Cross / Red Crescent, sea-rescue NGOs): %s.", oneLine(by))
	line("Only the EU coordinator may request its takedown, with a reason.")
	line("")
}

// Message is an alert rendered for each delivery protocol.
type Message struct {
	// Subject is the email subject (and the SNS Subject).
	Subject string
	// Email is the plain-text email body.
	Email string
	// SMS fits one SMS segment (see Segments).
	SMS string
	// Default is the JSON Payload for https, SQS and other subscribers.
	Default string
}

// Payload is the JSON message https and SQS subscribers receive (the
// "default" of the SNS message). Subject, Email and SMS are what an email or
// SMS recipient got, so a local inbox can show them.
type Payload struct {
	// AlertID is the recipient's copy's id (<alert id>-<contact point>).
	AlertID       string   `json:"alert_id"`
	ContactPoint  string   `json:"contact_point"`
	CaseID        string   `json:"case_id"`
	Level         int      `json:"level"`
	Kind          Kind     `json:"kind"`
	Severity      string   `json:"severity"`
	Countries     []string `json:"countries"`
	Categories    []string `json:"categories"`
	Platform      string   `json:"platform"`
	CanonicalURL  string   `json:"canonical_url"`
	ReportCount   int      `json:"report_count"`
	SourceCount   int      `json:"source_count"`
	NotifierCount int      `json:"notifier_count"`
	// SourceCountExact and NotifierCountExact are false once the case
	// counts them with a sketch (a large case): the counts are estimates.
	SourceCountExact   bool   `json:"source_count_exact"`
	NotifierCountExact bool   `json:"notifier_count_exact"`
	FirstSeen          string `json:"first_seen"`
	LastSeen           string `json:"last_seen"`
	Status             string `json:"status"`
	Lead               string `json:"lead"`
	LeadSince          string `json:"lead_since"`
	// SilencedFor is the silenced desk a rerouted copy is for (omitted
	// on a desk's own copy).
	SilencedFor string `json:"silenced_for,omitempty"`
	// Protected: the content is a known humanitarian source's; ProtectedBy
	// names the allow-list entry. Never request its takedown.
	Protected   bool   `json:"protected"`
	ProtectedBy string `json:"protected_by,omitempty"`
	Subject     string `json:"subject"`
	Email       string `json:"email"`
	SMS         string `json:"sms"`
}

// Render builds every text of one recipient's copy of an alert routed by
// Route: a.Recipient is whom it is for, a.Links its signed links (none
// leaves them out).
func Render(a *Alert) (Message, error) {
	m := Message{
		Subject: silencedSubject(a, Subject(a)),
		Email:   Email(a),
		SMS:     SMS(a),
	}
	b, err := marshal(newPayload(a, m))
	if err != nil {
		return Message{}, fmt.Errorf("render alert %s: %w", a.ID, err)
	}
	m.Default = string(b)
	return m, nil
}

// newPayload is the JSON payload of one recipient's copy of alert a whose
// texts are m: the same fields for every kind of alert about one case.
func newPayload(a *Alert, m Message) Payload {
	return Payload{
		AlertID:            a.RecipientID(),
		ContactPoint:       a.Recipient,
		CaseID:             a.Case.ID,
		Level:              a.Level,
		Kind:               a.Kind,
		Severity:           string(a.Severity),
		Countries:          nonNil(a.Countries),
		Categories:         nonNil(a.Categories()),
		Platform:           a.Case.Platform,
		CanonicalURL:       a.Case.CanonicalURL,
		ReportCount:        a.Case.Reports,
		SourceCount:        a.Case.Sources,
		NotifierCount:      a.Case.Notifiers,
		SourceCountExact:   a.Case.SourceCountExact,
		NotifierCountExact: a.Case.NotifierCountExact,
		FirstSeen:          rfc3339(a.Case.FirstSeen),
		LastSeen:           rfc3339(a.Case.LastSeen),
		Status:             a.Case.Status,
		Lead:               a.Case.Lead,
		LeadSince:          rfc3339(a.Case.LeadSince),
		SilencedFor:        a.SilencedFor,
		Protected:          a.Case.Protected,
		ProtectedBy:        a.Case.ProtectedBy,
		Subject:            m.Subject,
		Email:              m.Email,
		SMS:                m.SMS,
	}
}

// JSON is the SNS message for MessageStructure=json: one text per protocol,
// "default" for every protocol not named.
func (m Message) JSON() (string, error) {
	b, err := marshal(map[string]string{"default": m.Default, "email": m.Email, "sms": m.SMS})
	return string(b), err
}

// marshal is compact JSON without HTML escaping (no \u003c for "<").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Subject is the email subject: plain ASCII, one line, at most MaxSubject
// characters, e.g.
//
//	[Flagline] New case IT: smuggling_offer on facebook.com (3 reports)
//	[Flagline] Case IT,MT now 25 reports: smuggling_offer on facebook.com
//	[Flagline] CRITICAL threat to life IT,EU: new case on t.me (1 report)
//	[Flagline] Reopened: case IT reported again on t.me (4 reports)
//
// Long country lists become "AT,BE,BG+29", long platforms are cut, and what
// still does not fit is cut with "...".
func Subject(a *Alert) string {
	countries := asciiList(a.Countries)
	cats := a.Categories()
	category := ASCII(a.PrimaryCategory())
	if len(cats) > 1 {
		category += "+" + strconv.Itoa(len(cats)-1)
	}
	platform := ASCII(a.Case.Platform)
	switch {
	case platform != "":
	case strings.TrimSpace(a.Case.Platform) == "":
		platform = "unknown platform"
	default:
		platform = "non-Latin platform"
	}
	build := func(shown, platformMax int) string {
		c := listLabel(countries, shown)
		p := truncate(platform, platformMax, "...")
		switch {
		case a.Kind == KindReopened:
			return fmt.Sprintf("[Flagline] Reopened: case %s reported again on %s (%s)", c, p, plural(a.Case.Reports, "report"))
		case a.Kind == KindProtected:
			// The notice first: a long subject is cut at its end.
			return fmt.Sprintf("[Flagline] PROTECTED, %s: case %s on %s", ProtectedNotice, c, p)
		case a.Critical() && a.Kind == KindNew:
			return fmt.Sprintf("[Flagline] CRITICAL threat to life %s: new case on %s (%s)", c, p, plural(a.Case.Reports, "report"))
		case a.Critical():
			return fmt.Sprintf("[Flagline] CRITICAL threat to life %s: case now %s on %s", c, plural(a.Case.Reports, "report"), p)
		case a.Kind == KindNew:
			return fmt.Sprintf("[Flagline] New case %s: %s on %s (%s)", c, category, p, plural(a.Case.Reports, "report"))
		default:
			return fmt.Sprintf("[Flagline] Case %s now %s: %s on %s", c, plural(a.Case.Reports, "report"), category, p)
		}
	}
	var s string
	for _, step := range []struct{ shown, platform int }{
		{len(countries), maxPlatformRunes}, {6, 40}, {3, 30}, {2, 20}, {1, 16},
	} {
		if s = build(step.shown, step.platform); len(s) <= MaxSubject {
			return s
		}
	}
	return truncate(s, MaxSubject, "...")
}

// SMS is the alert as one SMS segment, with no personal data and no
// notifier text, e.g.
//
//	Flagline L2 HIGH IT: smuggling_offer facebook.com 25 reports case abcd1234efgh5678
//	Flagline L2 HIGH IT: smuggling_offer t.me 5 reports case abcd1234efgh5678 acknowledged lead it-polpost
//	Flagline REOPENED L1 LOW IT: smuggling_offer t.me 4 reports case abcd1234efgh5678 lead it-polpost
//
// The status is said when it is not open, and the lead when there is one.
// When the text does not fit (Segments), shorter forms are tried in turn:
// the platform and the country list ("AT,BE+30") cut, then the platform
// dropped (a name outside the GSM alphabet makes the SMS UCS-2, 70
// characters; without it the SMS is GSM-7 again, 160), then the category
// and the count, then the lead and the status. Level, severity, a country
// and the case id always remain.
func SMS(a *Alert) string {
	full := smsParts{
		protected: a.Case.Protected,
		reopened:  a.Kind == KindReopened,
		status:    smsStatus(a.Case.Status),
		lead:      truncate(ASCII(a.Case.Lead), 32, ""),
		level:     a.Level,
		severity:  strings.ToUpper(ASCII(string(a.Severity))),
		countries: asciiList(a.Countries),
		category:  ASCII(a.PrimaryCategory()),
		platform:  oneLine(a.Case.Platform),
		reports:   plural(a.Case.Reports, "report"),
		caseID:    truncate(ASCII(a.Case.ID), 32, ""),
	}
	all := len(full.countries)
	var s string
	for _, f := range []struct {
		platform, shown   int
		category, reports bool
	}{
		{maxPlatformRunes, all, true, true},
		{24, all, true, true},
		{24, 12, true, true},
		{24, 4, true, true},
		{12, 4, true, true},
		{12, 2, true, true},
		{0, all, true, true},
		{0, 12, true, true},
		{0, 4, true, true},
		{0, 2, true, true},
		{0, 2, false, true},
		{0, 1, false, true},
		{0, 1, false, false},
		{-1, 1, false, false},
	} {
		p := full
		p.platformMax, p.shown = max(f.platform, 0), f.shown
		if !f.category {
			p.category = ""
		}
		if !f.reports {
			p.reports = ""
		}
		if f.platform < 0 {
			p.lead, p.status = "", ""
		}
		if s = p.String(); fits(s) {
			return s
		}
	}
	for s != "" && !fits(s) {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func fits(sms string) bool {
	_, _, ok := Segments(sms)
	return ok
}

type smsParts struct {
	protected   bool
	reopened    bool
	status      string
	lead        string
	level       int
	severity    string
	countries   []string
	shown       int
	category    string
	platform    string
	platformMax int
	reports     string
	caseID      string
}

func (p smsParts) String() string {
	var b strings.Builder
	b.WriteString("Flagline ")
	b.WriteString(smsProtected(p.protected))
	if p.reopened {
		b.WriteString("REOPENED ")
	}
	fmt.Fprintf(&b, "L%d %s %s:", p.level, p.severity, listLabel(p.countries, p.shown))
	for _, s := range []string{p.category, truncate(p.platform, p.platformMax, ".."), p.reports} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	if p.caseID != "" {
		b.WriteString(" case " + p.caseID)
	}
	if p.status != "" {
		b.WriteString(" " + p.status)
	}
	if p.lead != "" {
		b.WriteString(" lead " + p.lead)
	}
	return b.String()
}

// smsStatus is the status an SMS names: none while the case is open.
func smsStatus(status string) string {
	if status == casestore.StatusOpen {
		return ""
	}
	return truncate(ASCII(status), 24, "")
}

// listLabel joins the first shown items with commas and counts the rest:
// "AT,BE,BG+29".
func listLabel(items []string, shown int) string {
	shown = max(shown, 1)
	if len(items) <= shown {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:shown], ",") + "+" + strconv.Itoa(len(items)-shown)
}

func asciiList(items []string) []string {
	out := make([]string, 0, len(items))
	for _, s := range items {
		if s = ASCII(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Email is the plain-text email body: what the content is, how often and by
// how many it was reported, where, its status and lead, what notifiers said
// (quoted, at most five), the case and alert ids, the recipient's signed
// links, and what to do next. It is at most MaxEmailBytes long;
// explanations are shortened first to fit.
func Email(a *Alert) string {
	var s string
	for _, quote := range []int{600, 300, 150, 80, 0} {
		if s = email(a, quote); len(s) <= MaxEmailBytes {
			break
		}
	}
	return truncateBytes(s, MaxEmailBytes, "\n[truncated]\n")
}

func email(a *Alert, quote int) string {
	c := &a.Case
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	field := func(name, value string) { line("  %-12s %s", name+":", value) }

	headline := "NEW CASE"
	switch a.Kind {
	case KindUpdate:
		headline = "CASE UPDATED"
	case KindReopened:
		headline = "CASE REOPENED"
	case KindProtected:
		headline = "CASE NOW PROTECTED"
	}
	line("Flagline alert: %s (level %d, severity %s)", headline, a.Level, a.Severity)
	line("")
	if a.Critical() {
		line("THREAT TO LIFE: a report says lives are in imminent danger. Alert the")
		line("competent rescue and emergency services (112, the maritime rescue")
		line("coordination centre) now; do not wait for a takedown.")
		line("")
	}
	if c.Protected {
		protectedEmail(line, c.ProtectedBy)
	}
	reasons := make([]string, len(a.Reasons))
	for i, r := range a.Reasons {
		reasons[i] = r.String()
	}
	line("Why now: %s", strings.Join(reasons, "; "))
	line("")
	field("Case id", c.ID)
	field("Alert id", a.RecipientID())
	if a.Recipient != "" {
		field("For", a.Recipient)
	}
	if c.Status != "" && c.Status != casestore.StatusOpen {
		field("Status", oneLine(c.Status)+since(c.StatusAt))
	}
	field("Lead", leadLine(a))
	if len(a.Links) > 0 {
		line("")
		line("Act on this case (links for %s only, valid until %s; each opens a", a.Recipient, minute(a.Links[0].Expires))
		line("page where you confirm, so opening a link changes nothing):")
		for _, l := range a.Links {
			field(l.Label, l.URL)
		}
	}
	line("")
	line("Content")
	field("URL", oneLine(truncateBytes(c.CanonicalURL, maxURLBytes, "...")))
	field("Platform", orNone(truncate(oneLine(c.Platform), maxPlatformRunes, "...")))
	field("Categories", orNone(oneLine(strings.Join(a.Categories(), ", "))))
	field("Severity", string(a.Severity))
	field("Countries", orNone(strings.Join(asciiList(c.Countries), ", ")))
	field("Sent to", strings.Join(a.Countries, ", "))
	line("")
	line("Reports")
	field("Reports", strconv.Itoa(c.Reports))
	field("Sources", distinct(c.Sources, c.SourceCountExact, "reporting bodies"))
	field("Notifiers", distinct(c.Notifiers, c.NotifierCountExact, "notifiers"))
	field("First seen", utc(c.FirstSeen))
	field("Last seen", utc(c.LastSeen))
	if n := min(len(c.Explanations), maxExplanations); n > 0 && quote > 0 {
		line("")
		line("What notifiers said (%d, quoted as received, not verified):", n)
		for i, e := range c.Explanations[:n] {
			e = casestore.ScrubEmails(oneLine(e))
			line("  %d. \"%s\"", i+1, truncate(e, quote, "..."))
		}
	}
	line("")
	line("What to do next")
	step := 0
	next := func(text string) { step++; line("  %d. %s", step, text) }
	next("Check that the content is still online and concerns your country.")
	next("Preserve evidence before it is removed: save the page and its URL,")
	line("     screenshots with date and time, and the file's SHA-256 hash.")
	if !c.Protected {
		next("Request its takedown from the platform (a notice under DSA Art. 16,")
		line("     or a removal order where your law provides one).")
	}
	next("Record what you did in the case, so other countries need not repeat it.")
	line("")
	line("One alert is sent per case and level; a repeat carries the same alert id.")
	return b.String()
}

// leadLine says who leads the case: "it-polpost (IT) since 2026-12-01
// 10:42 UTC", or that nobody does yet.
func leadLine(a *Alert) string {
	c := &a.Case
	if c.Lead == "" {
		return "none yet"
	}
	s := oneLine(c.Lead)
	if len(a.LeadCountries) > 0 {
		s += " (" + strings.Join(asciiList(a.LeadCountries), ", ") + ")"
	}
	return s + since(c.LeadSince)
}

// since is " since <minute>", or "" for a zero time.
func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " since " + minute(t)
}

// minute is t to the minute, in UTC: "2026-12-01 10:42 UTC".
func minute(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func utc(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// distinct says how many distinct sources or notifiers a case has; above a
// few dozen the case counts them with a sketch, and the email says the
// figure is an estimate rather than present it as exact.
func distinct(n int, exact bool, what string) string {
	if exact {
		return fmt.Sprintf("%d distinct %s", n, what)
	}
	return fmt.Sprintf("about %d distinct %s (estimated)", n, what)
}
