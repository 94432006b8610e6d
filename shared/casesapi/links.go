package casesapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/linksign"
)

// linkActions are the actions a link's {action} segment may name; the case
// page itself is the View link.
var linkActions = map[string]struct {
	question string // the confirm page's title, before the case id
	button   string
	done     string // the banner after it was done, before the contact point
}{
	linksign.Acknowledge: {question: "Acknowledge case ", button: "Acknowledge", done: "Acknowledged by "},
	linksign.ClaimLead:   {question: "Take the lead on case ", button: "Take the lead", done: "Lead taken by "},
}

// linkCaller verifies the signed link of req for action and returns the
// contact point it was signed for, or the page to answer instead: 403 for a
// forged, altered or expired link, 404 when its contact point has left the
// directory, 503 when the key or the directory cannot be read.
func (h *Handler) linkCaller(ctx context.Context, req events.APIGatewayV2HTTPRequest, action string, o *outcome) (linksign.Link, linksign.Key, caseaction.Actor, *events.APIGatewayV2HTTPResponse) {
	fail := func(r events.APIGatewayV2HTTPResponse) (linksign.Link, linksign.Key, caseaction.Actor, *events.APIGatewayV2HTTPResponse) {
		return linksign.Link{}, linksign.Key{}, caseaction.Actor{}, &r
	}
	o.action = action
	key, err := h.Keys.LinkKey(ctx)
	if err != nil {
		o.err = "link key: " + err.Error()
		return fail(unavailablePage())
	}
	q := url.Values{}
	for k, v := range req.QueryStringParameters {
		q.Set(k, v)
	}
	link, sig, err := linksign.FromQuery(o.caseID, action, q)
	if err == nil {
		err = key.Verify(link, sig, h.now())
	}
	switch {
	case errors.Is(err, linksign.ErrExpired):
		o.link = "expired"
		return fail(messagePage(403, "This link has expired",
			"Links in alert emails work for 7 days. Open the case through the API with your contact point's token, or wait for the case's next alert, which carries new links.",
			"Nothing was changed."))
	case err != nil:
		o.link = "forged"
		return fail(messagePage(403, "This link is not valid",
			"The link was changed or was not made by Flagline. Use the link exactly as the alert email gives it, or open the case through the API with your contact point's token.",
			"Nothing was changed."))
	}
	o.contactPoint = link.ContactPoint
	actor, err := h.actor(ctx, link.ContactPoint)
	switch {
	case errors.Is(err, ErrNotInDirectory):
		return fail(notFoundPage())
	case err != nil:
		o.err = err.Error()
		return fail(unavailablePage())
	}
	return link, key, actor, nil
}

// linkView answers GET /cases/{case_id}: the case page for the link's
// contact point, with its action buttons.
func (h *Handler) linkView(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	link, key, actor, refused := h.linkCaller(ctx, req, linksign.View, o)
	if refused != nil {
		return *refused
	}
	return h.showCase(ctx, 200, link, key, actor, nil, false, o)
}

// linkConfirm answers GET /cases/{case_id}/{action}: a page with one button
// that POSTs the same link. It changes nothing: mail gateways and link
// scanners open every link of an email.
func (h *Handler) linkConfirm(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	action := req.PathParameters["action"]
	la, ok := linkActions[action]
	if !ok {
		return notFoundPage()
	}
	link, _, actor, refused := h.linkCaller(ctx, req, action, o)
	if refused != nil {
		return *refused
	}
	c, _, err := h.Cases.Get(ctx, o.caseID, actor)
	if err != nil {
		if errors.Is(err, caseaction.ErrNotFound) {
			return notFoundPage()
		}
		o.err = err.Error()
		return unavailablePage()
	}
	if !slices.Contains(linkButtons(c), action) {
		// The case moved on since the email: a button would only lead to
		// a refusal, so say where it stands instead.
		now := "The case is " + statusText(c) + "."
		if c.Lead != "" {
			now = "The case is " + statusText(c) + "; " + c.Lead + " leads it since " + utc(c.LeadSince) + "."
		}
		return messagePage(200, "Nothing to confirm", now, "Nothing was changed. The case page of the alert email shows its timeline.")
	}
	title := la.question + o.caseID + " as " + link.ContactPoint + "?"
	return render(200, "confirm", confirmData{
		Title:  title,
		CaseID: o.caseID,
		Button: la.button + " as " + link.ContactPoint,
		// The same path and query: the POST carries the link's signature.
		Href: "./" + url.PathEscape(action) + "?" + signedQuery(req),
	})
}

// statusText is c's status as a page says it.
func statusText(c *casestore.Case) string {
	if c.Status == "" {
		return casestore.StatusOpen
	}
	return strings.ReplaceAll(c.Status, "_", " ")
}

// signedQuery is the link's own query, in a canonical order.
func signedQuery(req events.APIGatewayV2HTTPRequest) string {
	q := url.Values{}
	for _, k := range []string{linksign.ParamContactPoint, linksign.ParamExpires, linksign.ParamSignature} {
		if v, ok := req.QueryStringParameters[k]; ok {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// linkPost answers POST /cases/{case_id}/{action}: performs the link's
// action as its contact point and shows the case with the outcome. The
// form body carries nothing and is ignored.
//
// A refusal that leaves the case exactly as the caller's own action would
// (a reload or a second click of a button that already worked: the case is
// acknowledged by this desk, or this desk leads) is shown as done, 200, not
// as a conflict.
func (h *Handler) linkPost(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	action := req.PathParameters["action"]
	la, ok := linkActions[action]
	if !ok {
		return notFoundPage()
	}
	link, key, actor, refused := h.linkCaller(ctx, req, action, o)
	if refused != nil {
		return *refused
	}
	a, err := h.Cases.Apply(ctx, o.caseID, actor, caseaction.Request{Action: action}, "")
	if err != nil {
		o.err = err.Error()
		return unavailablePage()
	}
	if a.Status == 404 {
		return notFoundPage()
	}
	c, timeline, page := h.readCase(ctx, actor, o)
	if page != nil {
		return *page
	}
	status, b := a.Status, &banner{Kind: "ok", Text: la.done + actor.ContactPoint}
	done := already(actor.ContactPoint, action, c, timeline)
	switch {
	case done != nil && (a.Status == 409 || (a.Status == 200 && !hasEvent(a))):
		// A 200 without an event: claim_lead by the lead itself.
		status, b = 200, done
	case a.Status != 200:
		b = refusal(actor.ContactPoint, action, a)
	}
	return h.renderCase(status, link, key, actor, c, timeline, b, true)
}

// hasEvent reports whether a 200 answer of an action carries the event it
// wrote (caseaction answers without one when the action changed nothing).
func hasEvent(a caseaction.Answer) bool {
	var body struct {
		Event json.RawMessage `json:"event"`
	}
	return json.Unmarshal(a.Body, &body) == nil && len(body.Event) > 0 && string(body.Event) != "null"
}

// already is the banner for a case already in the state that cp's action
// would put it in, by cp's own doing, or nil: acknowledged, the last change
// of status to acknowledged being cp's (an acknowledge, or its claim_lead
// of an open case); or led by cp.
func already(cp, action string, c *casestore.Case, timeline []casestore.Event) *banner {
	switch action {
	case linksign.Acknowledge:
		if c.Status != casestore.StatusAcknowledged {
			return nil
		}
		for i := len(timeline) - 1; i >= 0; i-- {
			if e := timeline[i]; e.Status != "" {
				if e.Status != casestore.StatusAcknowledged || e.Actor != cp {
					return nil
				}
				return &banner{Kind: "ok", Text: "Already acknowledged by " + cp + " at " + utc(e.At)}
			}
		}
	case linksign.ClaimLead:
		if c.Lead == cp {
			return &banner{Kind: "ok", Text: cp + " leads this case since " + utc(c.LeadSince)}
		}
	}
	return nil
}

// refusal explains an action's refusal (409 and others) for the banner.
func refusal(cp, action string, a caseaction.Answer) *banner {
	var body struct {
		Error struct {
			Code      string    `json:"code"`
			Message   string    `json:"message"`
			Status    string    `json:"status"`
			Lead      string    `json:"lead"`
			LeadSince time.Time `json:"lead_since"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.Body, &body)
	e := body.Error
	verb := "acknowledge the case"
	if action == linksign.ClaimLead {
		verb = "take the lead"
	}
	text := cp + " could not " + verb
	switch {
	case e.Code == "lead_conflict" && e.Lead != "":
		text += ": " + e.Lead + " leads since " + utc(e.LeadSince)
	case e.Code == "status_conflict" && e.Status != "":
		text += ": the case is " + e.Status
	case e.Message != "":
		text += ": " + e.Message
	}
	return &banner{Kind: "conflict", Text: text}
}

// showCase renders the case page for a link's contact point, with buttons
// that are links signed for the same contact point, expiring with the link
// that opened the page. fromAction: the page answers an action path
// (/cases/{id}/{action}), so the buttons' paths are relative to it.
func (h *Handler) showCase(ctx context.Context, status int, link linksign.Link, key linksign.Key, actor caseaction.Actor, b *banner, fromAction bool, o *outcome) events.APIGatewayV2HTTPResponse {
	c, timeline, page := h.readCase(ctx, actor, o)
	if page != nil {
		return *page
	}
	return h.renderCase(status, link, key, actor, c, timeline, b, fromAction)
}

// readCase reads the case of a link's page and its timeline, or the page to
// answer instead (not found, unavailable).
func (h *Handler) readCase(ctx context.Context, actor caseaction.Actor, o *outcome) (*casestore.Case, []casestore.Event, *events.APIGatewayV2HTTPResponse) {
	c, timeline, err := h.Cases.Get(ctx, o.caseID, actor)
	switch {
	case errors.Is(err, caseaction.ErrNotFound):
		page := notFoundPage()
		return nil, nil, &page
	case err != nil:
		o.err = err.Error()
		page := unavailablePage()
		return nil, nil, &page
	}
	return c, timeline, nil
}

// linkButtons are the actions whose buttons the case page shows for case
// c: Acknowledge while the case is open, Take the lead while it has no lead
// and is not closed or a false positive. A button for an action that
// cannot apply would only lead to a refusal.
func linkButtons(c *casestore.Case) []string {
	status := c.Status
	if status == "" { // a case item that predates statuses is open
		status = casestore.StatusOpen
	}
	var out []string
	if status == casestore.StatusOpen {
		out = append(out, linksign.Acknowledge)
	}
	if c.Lead == "" && status != casestore.StatusClosed && status != casestore.StatusFalsePositive {
		out = append(out, linksign.ClaimLead)
	}
	return out
}

// renderCase is the case page of c for a link's contact point, with the
// buttons linkButtons allows, signed as showCase describes.
func (h *Handler) renderCase(status int, link linksign.Link, key linksign.Key, actor caseaction.Actor, c *casestore.Case, timeline []casestore.Event, b *banner, fromAction bool) events.APIGatewayV2HTTPResponse {
	var forms []form
	for _, action := range linkButtons(c) {
		l := linksign.Link{CaseID: c.ID, ContactPoint: link.ContactPoint, Action: action, Expires: link.Expires}
		// Relative to the page's own path, so the pages work under any
		// base URL: /cases/{id} or /cases/{id}/{action}.
		href := "./" + url.PathEscape(c.ID) + "/" + action
		if fromAction {
			href = "./" + action
		}
		forms = append(forms, form{Label: linkActions[action].button, Href: href + "?" + key.Query(l).Encode()})
	}
	return h.casePage(status, pageData{Case: c, Timeline: timeline, Viewer: actor.ContactPoint, Banner: b, Forms: forms})
}
