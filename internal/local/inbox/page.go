package inbox

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flagline/flagline/shared/alert"
)

// Paths the Handler serves.
const (
	// PagePath is the inbox page: alerts newest first, each with the email
	// and the SMS its contact point received. ?contact_point=<id> shows
	// one contact point's.
	PagePath = "/_dev/inbox"
	// JSONPath is the same list as a JSON array of Alert (the same
	// ?contact_point filter applies).
	JSONPath = "/_dev/inbox.json"
)

// RefreshInterval is how often an open inbox page checks for new alerts.
const RefreshInterval = 2 * time.Second

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("inbox").Parse(pageHTML))

// Handler serves GET PagePath and GET JSONPath, both uncached. The page is
// rendered on the server (html/template, so alert texts are escaped) and
// keeps itself current: a few lines of inline script fetch the page again
// every RefreshInterval and swap its content in when the inbox changed, so
// reading or selecting text is not disturbed while nothing arrives;
// without script, a meta refresh reloads it.
func (in *Inbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PagePath, in.servePage)
	mux.HandleFunc("GET "+JSONPath, in.serveJSON)
	return mux
}

type pageData struct {
	Nonce    string
	Version  string
	JSONPath string
	// RefreshMS is RefreshInterval for the script; RefreshNoScript is the
	// meta refresh's (seconds).
	RefreshMS       int64
	RefreshNoScript int
	Title           string
	// Filter is the contact point shown alone, "" for all.
	Filter string
	Total  int
	Groups []group
	Alerts []alertView
}

// group is a contact point and how many alerts it holds.
type group struct {
	ID    string
	Count int
}

type alertView struct {
	Alert
	CountryList  string
	Received     string
	ReceivedFull string
	SMSInfo      string
	SMSOver      bool
	SeverityCSS  string
	// CaseList are a digest's cases; MoreCases how many it is about but
	// does not list.
	CaseList  []caseView
	MoreCases int
}

type caseView struct {
	DigestCase
	CountryList string
	SeverityCSS string
	// When and WhenFull are At, shown (empty without one).
	When     string
	WhenFull string
}

func (in *Inbox) servePage(w http.ResponseWriter, r *http.Request) {
	list, version := in.snapshot()
	filter := r.URL.Query().Get("contact_point")
	d := pageData{
		Nonce:           rand.Text(),
		Version:         version,
		JSONPath:        JSONPath,
		RefreshMS:       RefreshInterval.Milliseconds(),
		RefreshNoScript: int(max(RefreshInterval.Seconds(), 1)),
		Filter:          filter,
		Total:           len(list),
		Groups:          groups(list),
	}
	for _, a := range only(list, filter) {
		d.Alerts = append(d.Alerts, view(a))
	}
	d.Title = fmt.Sprintf("Flagline inbox (%d)", len(d.Alerts))
	if filter != "" {
		d.Title = fmt.Sprintf("%s (%d) — Flagline inbox", filter, len(d.Alerts))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "render inbox: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Alert texts come from reporters; escaping keeps them text, and the
	// policy would stop any script but the page's own.
	h.Set("Content-Security-Policy", fmt.Sprintf(
		"default-src 'none'; script-src 'nonce-%[1]s'; style-src 'nonce-%[1]s'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		d.Nonce))
	_, _ = w.Write(buf.Bytes())
}

func (in *Inbox) serveJSON(w http.ResponseWriter, r *http.Request) {
	list := only(in.List(), r.URL.Query().Get("contact_point"))
	b, err := json.Marshal(list)
	if err != nil {
		http.Error(w, "encode inbox: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append(b, '\n'))
}

// only returns the alerts of one contact point ("" for all), never nil.
func only(list []Alert, contactPoint string) []Alert {
	if contactPoint == "" {
		return list
	}
	out := []Alert{}
	for _, a := range list {
		if a.ContactPoint == contactPoint {
			out = append(out, a)
		}
	}
	return out
}

func groups(list []Alert) []group {
	counts := map[string]int{}
	for _, a := range list {
		counts[a.ContactPoint]++
	}
	out := make([]group, 0, len(counts))
	for id, n := range counts {
		out = append(out, group{id, n})
	}
	slices.SortFunc(out, func(x, y group) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func view(a Alert) alertView {
	v := alertView{
		Alert:        a,
		CountryList:  strings.Join(a.Countries, ", "),
		Received:     a.ReceivedAt.Local().Format("15:04:05"),
		ReceivedFull: a.ReceivedAt.Format(time.RFC3339),
		SeverityCSS:  severityCSS(a.Severity),
		MoreCases:    max(a.CaseCount-len(a.Cases), 0),
	}
	if v.CountryList == "" {
		v.CountryList = "no country"
	}
	for _, c := range a.Cases {
		cv := caseView{DigestCase: c, CountryList: strings.Join(c.Countries, ", "), SeverityCSS: severityCSS(c.Severity)}
		if !c.At.IsZero() {
			cv.When, cv.WhenFull = c.At.Local().Format("15:04:05"), c.At.Format(time.RFC3339)
		}
		v.CaseList = append(v.CaseList, cv)
	}
	encoding, units, fits := alert.Segments(a.SMS)
	limit := alert.GSM7Segment
	if encoding == alert.UCS2 {
		limit = alert.UCS2Segment
	}
	v.SMSInfo = fmt.Sprintf("%s, %d of %d", encoding, units, limit)
	v.SMSOver = !fits
	return v
}

// severityCSS is the class that colours a severity.
func severityCSS(severity string) string {
	switch severity {
	case "low", "medium", "high", "critical":
		return "sev-" + severity
	}
	return "sev-other"
}
