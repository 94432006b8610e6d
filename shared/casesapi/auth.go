package casesapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/httpapi"
	"github.com/flagline/flagline/shared/tokens"
)

// Realm is the realm of the WWW-Authenticate challenge.
const Realm = "flagline"

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 section 11.1). API
// Gateway passes header names lower-cased in payload format 2.0. ok is false
// when there is no such header or it names another scheme.
func bearerToken(req events.APIGatewayV2HTTPRequest) (token string, ok bool) {
	v := header(req, "authorization")
	scheme, rest, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}

// header reads a request header by its lower-case name (as API Gateway
// passes them), falling back to a case-insensitive search for events made
// by hand.
func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// caller is the contact point a bearer token belongs to, or the 401 (or
// 503) to answer instead. A token of a contact point that has left the
// directory no longer authenticates.
func (h *Handler) caller(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) (caseaction.Actor, *events.APIGatewayV2HTTPResponse) {
	token, ok := bearerToken(req)
	if !ok {
		r := unauthorized("unauthorized", "send Authorization: Bearer <token>; `flagline contacts token create` makes one", "")
		return caseaction.Actor{}, &r
	}
	info, err := h.Tokens.Lookup(ctx, token)
	switch {
	case errors.Is(err, tokens.ErrUnknown):
		r := unauthorized("invalid_token", "the token is unknown or revoked", "invalid_token")
		return caseaction.Actor{}, &r
	case err != nil:
		o.err = err.Error()
		r := httpapi.Unavailable(RetryAfter, "the token could not be checked now; try again later")
		return caseaction.Actor{}, &r
	}
	actor, err := h.actor(ctx, info.ContactPoint)
	switch {
	case errors.Is(err, ErrNotInDirectory):
		o.contactPoint = info.ContactPoint
		r := unauthorized("invalid_token", "the token's contact point is no longer in the directory", "invalid_token")
		return caseaction.Actor{}, &r
	case err != nil:
		o.err = err.Error()
		r := httpapi.Unavailable(RetryAfter, "the directory could not be read now; try again later")
		return caseaction.Actor{}, &r
	}
	o.contactPoint = actor.ContactPoint
	return actor, nil
}

// unauthorized is a 401 with the Bearer challenge of RFC 6750 section 3
// (error="invalid_token" when a token was sent and refused).
func unauthorized(code, message, bearerError string) events.APIGatewayV2HTTPResponse {
	resp := httpapi.Fail(401, httpapi.Error{Code: code, Message: message})
	challenge := `Bearer realm="` + Realm + `"`
	if bearerError != "" {
		challenge += `, error="` + bearerError + `"`
	}
	resp.Headers = maps.Clone(resp.Headers)
	resp.Headers["WWW-Authenticate"] = challenge
	return resp
}

// actor reads contact point id's directory entry (one consistent GetItem of
// CONTACT#<id> / CONTACT): its countries decide what it sees.
// ErrNotInDirectory when it has none.
func (h *Handler) actor(ctx context.Context, id string) (caseaction.Actor, error) {
	cp, err := h.entry(ctx, id)
	if err != nil {
		return caseaction.Actor{}, err
	}
	return caseaction.Actor{ContactPoint: cp.ID, Countries: cp.Countries}, nil
}

// entry is contact point id's directory entry; ErrNotInDirectory when it
// has none.
func (h *Handler) entry(ctx context.Context, id string) (contacts.ContactPoint, error) {
	out, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(h.Table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: contacts.Key(id)},
			"sk": &types.AttributeValueMemberS{Value: contacts.SortKey},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return contacts.ContactPoint{}, fmt.Errorf("read directory entry %s: %w", id, err)
	}
	if out.Item == nil {
		return contacts.ContactPoint{}, ErrNotInDirectory
	}
	var cp contacts.ContactPoint
	if err := attributevalue.UnmarshalMap(out.Item, &cp); err != nil {
		return contacts.ContactPoint{}, fmt.Errorf("decode directory entry %s: %w", id, err)
	}
	if cp.ID != id {
		return contacts.ContactPoint{}, ErrNotInDirectory
	}
	return cp, nil
}
