package caseaction

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/httpapi"
)

// DB is the part of the DynamoDB client the case actions use.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	// PutItem stores the answers that change no case (404, 409) under
	// their Idempotency-Key.
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store acts on the cases of one table.
type Store struct {
	DB    DB
	Table string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept
	// (DefaultIdempotencyTTL when zero).
	IdempotencyTTL time.Duration
	// Ack is how long the desks of a reopened case have to acknowledge
	// it, per severity (nil: deadline.DefaultAck); TakedownDeadline how
	// long a requested takedown may stay unresolved
	// (DefaultTakedownDeadline when zero). See due.go.
	Ack              deadline.Ack
	TakedownDeadline time.Duration
}

// DefaultIdempotencyTTL keeps an Idempotency-Key's answer for a day.
const DefaultIdempotencyTTL = 24 * time.Hour

// SystemActor is the actor of what Flagline does by itself (reopening a
// case on a new report).
const SystemActor = "flagline-alert"

// ErrNotFound is a case that does not exist or that the actor may not see:
// the two are answered alike, so that a case's existence does not leak.
var ErrNotFound = errors.New("case not found")

// Error codes of the answers.
const (
	codeStatusConflict = "status_conflict"
	codeLeadConflict   = "lead_conflict"
	codeNotLead        = "not_lead"
	codeNotFound       = "case_not_found"
)

// codeProtected: takedown_requested on a protected case without the EU
// coordinator's override_reason.
const codeProtected = "protected"

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// read is the case item caseID with a consistent read; nil when missing.
func (s *Store) read(ctx context.Context, caseID string) (*casestore.Case, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            caseKey(caseID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var c casestore.Case
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return nil, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if c.ID == "" {
		c.ID = caseID
	}
	return &c, nil
}

func caseKey(caseID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
		"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}
}

// MaxTimeline bounds the events Get reads of one case.
const MaxTimeline = 1000

// Get reads case caseID and its timeline (oldest first, at most
// MaxTimeline events) for actor: ErrNotFound when the case is missing or
// the actor may not see it.
func (s *Store) Get(ctx context.Context, caseID string, actor Actor) (*casestore.Case, []casestore.Event, error) {
	c, err := s.read(ctx, caseID)
	if err != nil {
		return nil, nil, err
	}
	if c == nil || !actor.CanSee(c) {
		return nil, nil, ErrNotFound
	}
	events, err := s.timeline(ctx, caseID)
	if err != nil {
		return nil, nil, err
	}
	return c, events, nil
}

func (s *Store) timeline(ctx context.Context, caseID string) ([]casestore.Event, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.Table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :events)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
			":events": &types.AttributeValueMemberS{Value: casestore.EventPrefix},
		},
		ScanIndexForward: aws.Bool(true),
	}
	var events []casestore.Event
	for len(events) < MaxTimeline {
		in.Limit = aws.Int32(int32(MaxTimeline - len(events)))
		out, err := s.DB.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read timeline of case %s: %w", caseID, err)
		}
		for _, item := range out.Items {
			var e casestore.Event
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return nil, fmt.Errorf("read timeline of case %s: %w", caseID, err)
			}
			e.CaseID = caseID
			events = append(events, e)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return events, nil
}

// caseView is the JSON view of a case in every answer.
type caseView struct {
	CaseID       string             `json:"case_id"`
	CanonicalURL string             `json:"canonical_url"`
	Platform     string             `json:"platform"`
	Countries    []string           `json:"countries"`
	Categories   []string           `json:"categories"`
	Severity     casestore.Severity `json:"severity"`
	Level        int                `json:"level"`
	Status       string             `json:"status"`
	StatusAt     time.Time          `json:"status_at,omitzero"`
	Lead         string             `json:"lead,omitempty"`
	LeadSince    time.Time          `json:"lead_since,omitzero"`
	Reports      int                `json:"report_count"`
	Sources      int                `json:"source_count"`
	Notifiers    int                `json:"notifier_count"`
	FirstSeen    time.Time          `json:"first_seen"`
	LastSeen     time.Time          `json:"last_seen"`
	ReopenCount  int                `json:"reopen_count"`
	NoticeID     string             `json:"notice_id,omitempty"`
	// Protected cases are a known humanitarian source's content.
	Protected      bool   `json:"protected"`
	ProtectedBy    string `json:"protected_by,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
}

// CaseJSON is the JSON view of case c that every answer carries.
func CaseJSON(c *casestore.Case) any {
	v := caseView{
		CaseID: c.ID, CanonicalURL: c.CanonicalURL, Platform: c.Platform,
		Countries: nonNil(c.Countries), Categories: nonNil(c.Categories),
		Severity: c.Severity, Level: c.Level, Status: statusOf(c), StatusAt: c.StatusAt.UTC(),
		Lead: c.Lead, Reports: c.Reports, Sources: c.Sources, Notifiers: c.Notifiers,
		FirstSeen: c.FirstSeen.UTC(), LastSeen: c.LastSeen.UTC(), ReopenCount: c.ReopenCount,
		NoticeID: c.NoticeID,
	}
	v.Protected, v.ProtectedBy, v.OverrideReason = c.Protected, c.ProtectedBy, c.OverrideReason
	if c.Lead != "" {
		v.LeadSince = c.LeadSince.UTC()
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// answerOf is a 200 answer with the case and the event (nil: the action
// changed nothing, e.g. claim_lead by the lead itself).
func answerOf(c *casestore.Case, e *casestore.Event) (Answer, error) {
	body, err := json.Marshal(struct {
		Case  any              `json:"case"`
		Event *casestore.Event `json:"event,omitempty"`
	}{CaseJSON(c), e})
	if err != nil {
		return Answer{}, fmt.Errorf("encode answer: %w", err)
	}
	return Answer{Status: 200, Body: body}, nil
}

// conflictError is the error of a 409: the code and, beside it, the case's
// status and lead as they are now, so that the caller sees why.
type conflictError struct {
	httpapi.Error
	Status    string    `json:"status"`
	Lead      string    `json:"lead,omitempty"`
	LeadSince time.Time `json:"lead_since,omitzero"`
	// ProtectedBy is the humanitarian allow-list entry of a protected case.
	ProtectedBy string `json:"protected_by,omitempty"`
}

func conflictAnswer(code string, c *casestore.Case, action string) Answer {
	e := conflictError{Status: statusOf(c), Lead: c.Lead}
	if c.Lead != "" {
		e.LeadSince = c.LeadSince.UTC()
	}
	e.Code = code
	switch code {
	case codeStatusConflict:
		e.Message = fmt.Sprintf("%s does not fit a case that is %s", action, e.Status)
	case codeLeadConflict:
		e.Message = fmt.Sprintf("%s leads this case since %s; %s is theirs or the coordinator's", c.Lead, e.LeadSince.Format(time.RFC3339), action)
	case codeProtected:
		e.ProtectedBy = c.ProtectedBy
		e.Message = fmt.Sprintf("humanitarian source: do not request takedown (%s). Only the EU coordinator may, with an override_reason", c.ProtectedBy)
	case codeNotLead:
		if c.Lead == "" {
			e.Message = "the case has no lead to release"
		} else {
			e.Message = fmt.Sprintf("%s leads this case; only the lead or the coordinator releases it", c.Lead)
		}
	}
	return *fail(409, e)
}

// notFound is the answer for a case that is missing or that the actor may
// not see: the same bytes for both.
func notFound() Answer {
	return *fail(404, httpapi.Error{Code: codeNotFound, Message: "no such case"})
}

// eventID is a random 8-byte hex id that keeps event sort keys unique.
func eventID() string {
	var b [8]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
