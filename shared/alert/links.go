package alert

import (
	"time"

	"github.com/flagline/flagline/shared/linksign"
)

// Link is one signed link of an email: what it does and where.
type Link struct {
	Label string
	URL   string
	// Expires is when the signature stops being accepted.
	Expires time.Time
}

// linkActions are the links each email carries, in the order shown.
var linkActions = []struct{ action, label string }{
	{linksign.View, "Case page"},
	{linksign.Acknowledge, "Acknowledge"},
	{linksign.ClaimLead, "Take the lead"},
}

// SignedLinks are the links of the copy of a for contact point cp, signed
// with key under dashboardURL, valid for linksign.Validity from now: the
// case page, acknowledge and take the lead. Each opens a page (a GET never
// changes anything); acting takes a confirming click.
func SignedLinks(key linksign.Key, dashboardURL, caseID, cp string, now time.Time) []Link {
	if key.IsZero() || dashboardURL == "" || cp == "" {
		return nil
	}
	expires := now.Add(linksign.Validity).UTC().Truncate(time.Second)
	out := make([]Link, 0, len(linkActions))
	for _, la := range linkActions {
		l := linksign.Link{CaseID: caseID, ContactPoint: cp, Action: la.action, Expires: expires}
		out = append(out, Link{Label: la.label, URL: key.URL(dashboardURL, l), Expires: expires})
	}
	return out
}
