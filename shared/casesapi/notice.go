package casesapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/httpapi"
)

// overriddenTakedown are the statuses of a protected case whose current
// takedown request the EU coordinator made with an override: removed and
// not_removed are reached only from takedown_requested, which a protected
// case reaches only so.
var overriddenTakedown = []string{casestore.StatusTakedownRequested, casestore.StatusRemoved, casestore.StatusNotRemoved}

// RouteNotice is the notice a desk sends the platform to request a
// takedown.
const RouteNotice = "GET /v1/cases/{case_id}/notice"

// LegalBasis is what a notice is given under. Article 16(2) of the Digital
// Services Act lists what a notice holds: (a) a substantiated explanation,
// (b) the exact URL(s), (c) the notifier's name and email address, (d) a
// good-faith statement
// (https://eur-lex.europa.eu/eli/reg/2022/2065/oj, Art. 16;
// https://www.eu-digital-services-act.com/Digital_Services_Act_Article_16.html).
const LegalBasis = "Regulation (EU) 2022/2065, Art. 16"

// Limits of the explanation a notice quotes: the case keeps at most five
// notifiers' explanations, each already trimmed by aggregation; these bound
// the notice whatever the case item holds.
const (
	MaxNoticeQuotes     = 5
	MaxNoticeQuoteRunes = 300
)

// Notice is a notice under DSA Art. 16 about one case, from one desk. It
// names the desk as notifier, never the people who reported the content.
type Notice struct {
	NoticeID string `json:"notice_id"`
	CaseID   string `json:"case_id"`
	// Reference is what the platform quotes back in its answer.
	Reference  string   `json:"reference"`
	Category   string   `json:"category"`
	Categories []string `json:"categories"`
	// URLs is Art. 16(2)(b): the exact location of the content.
	URLs []string `json:"urls"`
	// Explanation is Art. 16(2)(a).
	Explanation NoticeExplanation `json:"explanation"`
	// Notifier is Art. 16(2)(c): the requesting desk.
	Notifier NoticeNotifier `json:"notifier"`
	// GoodFaithStatement is Art. 16(2)(d).
	GoodFaithStatement string    `json:"good_faith_statement"`
	LegalBasis         string    `json:"legal_basis"`
	GeneratedAt        time.Time `json:"generated_at"`
	// Platform is the content's platform, shown in the text beside the URL.
	Platform string `json:"-"`
	// SourcesExact is false when Sources is an estimate (a large case).
	SourcesExact bool `json:"-"`
}

// NoticeExplanation is why the content is alleged to be illegal: a summary
// Flagline writes from the case, and what notifiers said, quoted with
// email addresses removed.
type NoticeExplanation struct {
	Summary     string    `json:"summary"`
	FromReports []string  `json:"from_reports"`
	ReportCount int       `json:"report_count"`
	Sources     int       `json:"sources"`
	Countries   []string  `json:"countries"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// NoticeNotifier is the desk that sends the notice: its directory name, its
// first email endpoint (nil when it has none) and its contact point id.
type NoticeNotifier struct {
	Name         string  `json:"name"`
	Email        *string `json:"email"`
	ContactPoint string  `json:"contact_point"`
}

// Reference is the reference of case caseID that a notice carries.
func Reference(caseID string) string { return "FL-" + caseID }

// categoryOrder ranks categories for a notice's main one: a threat to life
// first (DSA Art. 18), then by how directly the content offers the offence.
var categoryOrder = []string{"threat_to_life", "smuggling_offer", "transport", "forged_documents", "recruitment", "accommodation", "other"}

// categoryClaims says what content of each category offers.
var categoryClaims = map[string]string{
	"threat_to_life":   "describes an imminent danger to people's lives, such as an overloaded boat about to leave",
	"smuggling_offer":  "offers migrant-smuggling services: a paid irregular crossing of a border",
	"transport":        "offers transport for irregular border crossings",
	"forged_documents": "offers forged or fraudulently obtained identity or travel documents",
	"recruitment":      "recruits drivers, boat pilots or other helpers for migrant smuggling",
	"accommodation":    "offers accommodation to people in irregular transit",
	"other":            "is reported as related to migrant smuggling",
}

// BuildNotice is desk's notice about case c at time at. It reads only the
// case item and the desk's directory entry: nothing a reporter sent about
// themselves reaches it, and every quoted explanation has its email
// addresses removed.
func BuildNotice(c *casestore.Case, desk contacts.ContactPoint, at time.Time) Notice {
	categories := slices.Clone(c.Categories)
	slices.Sort(categories)
	slices.SortStableFunc(categories, func(a, b string) int { return rank(a) - rank(b) })
	if categories == nil {
		categories = []string{}
	}
	category := "other"
	if len(categories) > 0 {
		category = categories[0]
	}
	countries := slices.Clone(c.Countries)
	if countries == nil {
		countries = []string{}
	}
	slices.Sort(countries)
	quotes := []string{}
	for _, e := range c.Explanations {
		if len(quotes) == MaxNoticeQuotes {
			break
		}
		if q := quote(e); q != "" {
			quotes = append(quotes, q)
		}
	}
	n := Notice{
		NoticeID:   casestore.NoticeID(c.ID, desk.ID),
		CaseID:     c.ID,
		Reference:  Reference(c.ID),
		Category:   category,
		Categories: categories,
		URLs:       []string{c.CanonicalURL},
		Explanation: NoticeExplanation{
			FromReports: quotes,
			ReportCount: c.Reports,
			Sources:     c.Sources,
			Countries:   countries,
			FirstSeen:   c.FirstSeen.UTC(),
			LastSeen:    c.LastSeen.UTC(),
		},
		Notifier:     NoticeNotifier{Name: desk.Name, ContactPoint: desk.ID},
		LegalBasis:   LegalBasis,
		GeneratedAt:  at.UTC(),
		Platform:     c.Platform,
		SourcesExact: c.SourceCountExact,
	}
	if n.Notifier.Name == "" {
		n.Notifier.Name = desk.ID
	}
	for _, ep := range desk.Endpoints {
		if ep.Protocol == contacts.Email {
			email := ep.Address
			n.Notifier.Email = &email
			break
		}
	}
	n.Explanation.Summary = summary(&n, categories)
	n.GoodFaithStatement = fmt.Sprintf("%s (%s), the notifier, confirms its bona fide belief that the information and allegations contained in this notice are accurate and complete.", n.Notifier.Name, desk.ID)
	return n
}

func rank(category string) int {
	if i := slices.Index(categoryOrder, category); i >= 0 {
		return i
	}
	return len(categoryOrder)
}

// summary is the explanation in Flagline's words: what the content offers,
// why that is illegal, and how often and by whom it was reported.
func summary(n *Notice, categories []string) string {
	var b strings.Builder
	claims := []string{}
	for _, c := range categories {
		if claim, ok := categoryClaims[c]; ok {
			claims = append(claims, claim)
		}
	}
	if len(claims) == 0 {
		claims = append(claims, categoryClaims["other"])
	}
	fmt.Fprintf(&b, "The content at %s %s.", strings.Join(n.URLs, ", "), strings.Join(claims, "; it also "))
	b.WriteString(" Facilitating the unauthorised entry, transit or residence of third-country nationals is an offence in the Member States (Council Directive 2002/90/EC); information offering or organising it is illegal content within the meaning of Art. 3(h) of Regulation (EU) 2022/2065.")
	e := n.Explanation
	sources := plural(e.Sources, "distinct reporting body", "distinct reporting bodies")
	if !n.SourcesExact {
		sources = "about " + sources
	}
	fmt.Fprintf(&b, " It was reported %s by %s between %s and %s", plural(e.ReportCount, "time", "times"), sources, noticeTime(e.FirstSeen), noticeTime(e.LastSeen))
	if len(e.Countries) > 0 {
		fmt.Fprintf(&b, ", as concerning %s", strings.Join(e.Countries, ", "))
	}
	b.WriteString(".")
	if len(e.FromReports) > 0 {
		b.WriteString(" What the reports say is quoted below as received.")
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func noticeTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// quote is a notifier's explanation as a notice quotes it: on one line,
// email addresses removed, at most MaxNoticeQuoteRunes characters.
func quote(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	s = casestore.ScrubEmails(s)
	if utf8.RuneCountInString(s) > MaxNoticeQuoteRunes {
		s = string([]rune(s)[:MaxNoticeQuoteRunes-1]) + "…"
	}
	return s
}

// Text is the notice as plain text, each Art. 16(2) element under its
// letter.
func (n Notice) Text() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	field := func(name, value string) { line("  %-15s %s", name+":", value) }
	line("NOTICE OF ILLEGAL CONTENT (%s)", n.LegalBasis)
	line("")
	field("Notice id", n.NoticeID)
	field("Reference", n.Reference+" (please quote it in your answer)")
	field("Case", n.CaseID)
	categories := n.Categories
	if len(categories) == 0 {
		categories = []string{n.Category}
	}
	field("Categories", strings.Join(categories, ", "))
	field("Generated", n.GeneratedAt.Format(time.RFC3339))
	line("")
	line("(b) Exact electronic location of the information")
	for _, u := range n.URLs {
		line("  %s", u)
	}
	if n.Platform != "" {
		field("Platform", n.Platform)
	}
	line("")
	line("(a) Why the information is alleged to be illegal content")
	line("  %s", n.Explanation.Summary)
	if len(n.Explanation.FromReports) > 0 {
		line("  Quoted from the reports (as received, not verified; email addresses removed):")
		for i, q := range n.Explanation.FromReports {
			line("    %d. \"%s\"", i+1, q)
		}
	}
	line("")
	line("(c) Notifier")
	field("Name", n.Notifier.Name)
	email := "none"
	if n.Notifier.Email != nil {
		email = *n.Notifier.Email
	}
	field("Email", email)
	field("Contact point", n.Notifier.ContactPoint)
	line("")
	line("(d) Statement of good faith")
	line("  %s", n.GoodFaithStatement)
	return b.String()
}

// noticeFormat is what a notice request's Accept asks for.
type noticeFormat int

const (
	noticeJSON noticeFormat = iota
	noticeText
	noticeNone // neither: 406
)

// negotiateNotice reads Accept as wantsHTML does (RFC 9110 section
// 12.5.1): text/plain when it names text/plain exactly with a weight at
// least as high as application/json's; JSON when there is no header or
// JSON is acceptable; otherwise neither.
func negotiateNotice(accept string) noticeFormat {
	if strings.TrimSpace(accept) == "" {
		return noticeJSON
	}
	text, exact := weight(accept, "text", "plain")
	json, _ := weight(accept, "application", "json")
	switch {
	case exact && text > 0 && text >= json:
		return noticeText
	case json > 0:
		return noticeJSON
	case text > 0:
		return noticeText
	}
	return noticeNone
}

// notice answers GET /v1/cases/{case_id}/notice: the desk's notice about a
// case it may see, as JSON or text/plain. Scope and refusals are the case
// detail's: a case outside the caller's countries is 404, as a missing one.
func (h *Handler) notice(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return vary(*refused)
	}
	format := negotiateNotice(header(req, "accept"))
	if format == noticeNone {
		return vary(httpapi.Fail(406, httpapi.Error{Code: "not_acceptable", Message: "a notice is application/json or text/plain; send an Accept header that allows one"}))
	}
	c, _, err := h.Cases.Get(ctx, o.caseID, actor)
	switch {
	case errors.Is(err, caseaction.ErrNotFound):
		return vary(caseNotFound())
	case err != nil:
		o.err = err.Error()
		return vary(httpapi.Unavailable(RetryAfter, "the case could not be read now; try again later"))
	}
	if c.Protected && (c.OverrideReason == "" || !slices.Contains(overriddenTakedown, c.Status)) {
		// A known humanitarian source's content: a notice is written for
		// it only for the takedown the EU coordinator requested with an
		// override, while it stands or once the platform answered it. The
		// reason stays on the case after a reopening, whose next
		// takedown_requested must give one again; so must the notice wait.
		return vary(httpapi.Fail(409, httpapi.Error{Code: "protected", Message: "humanitarian source: do not request takedown (" + c.ProtectedBy + "); no notice is written unless the EU coordinator records takedown_requested with an override_reason"}))
	}
	desk, err := h.entry(ctx, actor.ContactPoint)
	switch {
	case errors.Is(err, ErrNotInDirectory):
		return vary(unauthorized("invalid_token", "the token's contact point is no longer in the directory", "invalid_token"))
	case err != nil:
		o.err = err.Error()
		return vary(httpapi.Unavailable(RetryAfter, "the directory could not be read now; try again later"))
	}
	n := BuildNotice(c, desk, h.now())
	if format == noticeText {
		return vary(events.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers: map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			},
			Body: n.Text(),
		})
	}
	return vary(httpapi.JSON(200, n))
}
