package casesapi

import (
	"bytes"
	"embed"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/casestore"
)

//go:embed templates/pages.html
var templateFS embed.FS

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"utc":     utc,
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"details": details,
}).ParseFS(templateFS, "templates/pages.html"))

// pageHeaders are those of every HTML answer: no external resource may
// load, no form may post elsewhere, no frame may hold the page (a link's
// buttons must not be clickjacked), no Referer carries a signed link's
// query to another site, and no cache keeps a page that a signature opened.
var pageHeaders = map[string]string{
	"Content-Type":            "text/html; charset=utf-8",
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
	"X-Content-Type-Options":  "nosniff",
}

// render answers status with the named template. A template that fails
// (it cannot, with Flagline's own data) answers a plain 500.
func render(status int, name string, data any) events.APIGatewayV2HTTPResponse {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		status, buf = 500, *bytes.NewBufferString("<!doctype html><title>Error</title><p>The page could not be shown.</p>")
	}
	h := make(map[string]string, len(pageHeaders))
	for k, v := range pageHeaders {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: buf.String()}
}

// banner is the result of an action, above the case page.
type banner struct {
	Kind string // ok, conflict, refused
	Text string
}

// form is one button of the case page: it POSTs to a signed action link.
type form struct {
	Label string
	Href  string
}

// pageData is what the case page shows.
type pageData struct {
	Case     *casestore.Case
	Timeline []casestore.Event
	Viewer   string // the contact point reading the page
	Banner   *banner
	Forms    []form
	APIURL   string
}

func (h *Handler) casePage(status int, d pageData) events.APIGatewayV2HTTPResponse {
	if h.DashboardURL != "" && d.Case != nil {
		d.APIURL = strings.TrimRight(h.DashboardURL, "/") + "/v1/cases/" + url.PathEscape(d.Case.ID)
	}
	return render(status, "case", d)
}

type confirmData struct {
	Title, CaseID, Button, Href string
}

type messageData struct {
	Title string
	Lines []string
}

func messagePage(status int, title string, lines ...string) events.APIGatewayV2HTTPResponse {
	return render(status, "message", messageData{Title: title, Lines: lines})
}

// notFoundPage is the page for a case that is missing or not visible to
// the link's contact point: the same page either way.
func notFoundPage() events.APIGatewayV2HTTPResponse {
	return messagePage(404, "Case not found",
		"No case with that id is visible to this contact point.")
}

func unavailablePage() events.APIGatewayV2HTTPResponse {
	resp := messagePage(503, "Try again in a moment",
		"Flagline could not read or record this case just now. Nothing was changed by this request; reload the page to try again.")
	resp.Headers["Retry-After"] = strconv.Itoa(RetryAfter)
	return resp
}

// utc formats t for a page: minutes in UTC, as alert emails do.
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// details is the rest of a timeline event, one "name: value" per field it
// carries.
func details(e casestore.Event) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+": "+v)
		}
	}
	add("status", e.Status)
	add("lead", e.Lead)
	add("platform ref", e.PlatformRef)
	add("reason", e.Reason)
	add("override reason", e.OverrideReason)
	add("sha256", e.SHA256)
	add("location", e.Location)
	add("alert", e.AlertID)
	add("kind", e.Kind)
	if e.Level > 0 {
		add("level", strconv.Itoa(e.Level))
	}
	add("to", strings.Join(e.Recipients, ", "))
	add("countries", strings.Join(e.Countries, ", "))
	return strings.Join(parts, "; ")
}
