// Package casesapi is the cases function: the JSON API through which a
// contact point lists its cases, reads one with its timeline, gets its DSA
// Art. 16 notice for the platform and acts on it (bearer tokens), and the
// HTML pages that the signed one-click links of alert emails open.
//
// Who the caller is comes from one place, caller (a token) or linkCaller (a
// signed link); what it may see is decided by caseaction.Actor, so a case
// outside its countries answers exactly as a missing case does. A GET never
// changes anything: a link only acts when its page's button POSTs.
package casesapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/stats"
	"github.com/flagline/flagline/shared/tokens"
)

// Route keys of the function, as API Gateway sets RouteKey (the template's
// HttpApi events, one per route).
const (
	RouteList       = "GET /v1/cases"
	RouteDetail     = "GET /v1/cases/{case_id}"
	RouteAction     = "POST /v1/cases/{case_id}/actions"
	RouteLinkView   = "GET /cases/{case_id}"
	RouteLinkAction = "GET /cases/{case_id}/{action}"
	RouteLinkPost   = "POST /cases/{case_id}/{action}"
)

// Routes lists every route the handler serves.
var Routes = []string{RouteList, RouteDetail, RouteAction, RouteLinkView, RouteLinkAction, RouteLinkPost,
	RouteSilenceAdd, RouteSilenceList, RouteSilenceExpire, RouteNotice, RouteStats}

// RetryAfter is the Retry-After, in seconds, of a 503.
const RetryAfter = 2

// MaxBody is the largest action body accepted, in bytes: the longest valid
// action (a 2,000-character note and a 500-character location, all of them
// 4-byte characters, in JSON) fits well within it.
const MaxBody = 32 << 10

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// Cases reads and acts on cases for an actor (caseaction.Store).
type Cases interface {
	Get(ctx context.Context, caseID string, actor caseaction.Actor) (*casestore.Case, []casestore.Event, error)
	Apply(ctx context.Context, caseID string, actor caseaction.Actor, req caseaction.Request, idempotencyKey string) (caseaction.Answer, error)
}

var _ Cases = (*caseaction.Store)(nil)

// Tokens authenticates bearer tokens (tokens.Store).
type Tokens interface {
	Lookup(ctx context.Context, token string) (tokens.Info, error)
}

var _ Tokens = (*tokens.Store)(nil)

// DB is what the handler reads itself: a directory entry (GetItem) and the
// case listing (Query on the CasesByCountry index).
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Handler serves the cases routes.
type Handler struct {
	Cases  Cases
	Tokens Tokens
	DB     DB
	Table  string
	// Keys gives the key that signed links are verified (and the page's
	// own buttons signed) with.
	Keys linksign.Source
	// Silences serves the /v1/silences routes (silences.Store).
	Silences Silences
	// StatsDB reads the figures of GET /v1/stats (the table's client:
	// Query on the CasesByCountry index, BatchGetItem of case items).
	StatsDB stats.DB
	// DashboardURL is the base of the links in alert emails; pages name
	// the API address of the case under it.
	DashboardURL string
	Log          *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrNotInDirectory: a token or link names a contact point that is no
// longer in the contact directory.
var ErrNotInDirectory = errors.New("contact point is not in the directory")

// outcome is what the request's log line says beyond its status. It never
// holds a token, a signature or a note.
type outcome struct {
	caseID       string
	contactPoint string
	action       string
	link         string // why a link was refused
	err          string // an infrastructure error, for operators only
}

// Handle answers one API Gateway HTTP API (payload 2.0) request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var o outcome
	resp := h.route(ctx, req, &o)
	level := slog.LevelInfo
	if resp.StatusCode >= 500 {
		level = slog.LevelError
	}
	if h.Log != nil && h.Log.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("request_id", req.RequestContext.RequestID),
			slog.String("route", routeKey(req)),
		}
		for _, a := range []struct{ k, v string }{
			{"case_id", o.caseID}, {"contact_point", o.contactPoint}, {"action", o.action}, {"link", o.link}, {"error", o.err},
		} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
		h.Log.LogAttrs(ctx, level, "cases request", attrs...)
	}
	return resp, nil
}

// routeKey is the request's route: API Gateway sets RouteKey on the event
// and in its request context.
func routeKey(req events.APIGatewayV2HTTPRequest) string {
	if req.RouteKey != "" {
		return req.RouteKey
	}
	return req.RequestContext.RouteKey
}

func (h *Handler) route(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	o.caseID = req.PathParameters["case_id"]
	switch routeKey(req) {
	case RouteList:
		return h.list(ctx, req, o)
	case RouteDetail:
		return h.detail(ctx, req, o)
	case RouteAction:
		return h.act(ctx, req, o)
	case RouteStats:
		return h.stats(ctx, req, o)
	case RouteNotice:
		return h.notice(ctx, req, o)
	case RouteLinkView:
		return h.linkView(ctx, req, o)
	case RouteLinkAction:
		return h.linkConfirm(ctx, req, o)
	case RouteLinkPost:
		return h.linkPost(ctx, req, o)
	case RouteSilenceAdd, RouteSilenceList, RouteSilenceExpire:
		return h.silences(ctx, req, o)
	}
	return notFoundRoute()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
