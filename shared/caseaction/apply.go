package caseaction

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/httpapi"
)

// Idempotency records: the first answer to (case, contact point, key).
const (
	TypeIdempotency   = "idempotency"
	IdempotencyPrefix = "IDEMPOTENCY#"
)

// maxAttempts bounds how often Apply re-reads a case that changed between
// its read and its write before giving up (a 503 for the caller).
const maxAttempts = 5

// errBusy is a case that kept changing under Apply.
var errBusy = errors.New("the case kept changing; try again")

// Apply performs req on case caseID as actor and returns the HTTP answer:
// 200 with the case and the event, 400 for an invalid request, 404 for a
// case the actor may not see (alike a missing one), 409 when the action
// does not fit the case as it is now (status_conflict, lead_conflict,
// not_lead; with the current status and lead), 422 when an
// Idempotency-Key is reused for another request. With idempotencyKey, the
// first answer to the action (200 or 409) is stored for IdempotencyTTL and
// every retry gets it byte for byte and changes nothing; a 400 or 404 is
// not stored (it changed nothing, and the same request answers the same). An error is an
// infrastructure failure (the caller answers 503).
func (s *Store) Apply(ctx context.Context, caseID string, actor Actor, req Request, idempotencyKey string) (Answer, error) {
	if len(idempotencyKey) > MaxIdempotencyKey {
		return *invalid(httpapi.FieldError{Field: "Idempotency-Key", Code: "too_long", Message: fmt.Sprintf("Idempotency-Key is longer than %d characters", MaxIdempotencyKey)}), nil
	}
	if bad := Validate(req); bad != nil {
		return *bad, nil
	}
	var idem *idempotency
	if idempotencyKey != "" {
		idem = s.idempotency(caseID, actor, req, idempotencyKey)
		if a, found, err := idem.stored(ctx); err != nil || found {
			return a, err
		}
	}
	for range maxAttempts {
		c, err := s.read(ctx, caseID)
		if err != nil {
			return Answer{}, err
		}
		if c == nil || !actor.CanSee(c) {
			// Not stored under the key: a 404 changes nothing, and storing
			// it would let a caller write records under any case id.
			return notFound(), nil
		}
		o := decideRequest(c, actor, req)
		switch {
		case o.conflict != "":
			return idem.keep(ctx, conflictAnswer(o.conflict, c, req.Action))
		case o.noop:
			a, err := answerOf(c, nil)
			if err != nil {
				return Answer{}, err
			}
			return idem.keep(ctx, a)
		}
		at := s.now()
		event := casestore.Event{
			CaseID: c.ID, At: at, Type: req.Action, Actor: actor.ContactPoint, Note: req.Note,
			Status: o.status, PlatformRef: req.PlatformRef, Reason: req.Reason, SHA256: req.SHA256, Location: req.Location,
			OverrideReason: o.overrideReason,
		}
		if o.setLead {
			event.Lead = actor.ContactPoint
		}
		if o.status == casestore.StatusTakedownRequested {
			// The notice this desk sends the platform links to the case.
			event.NoticeID = casestore.NoticeID(c.ID, actor.ContactPoint)
		}
		next := o.applyTo(*c, actor, at)
		if event.NoticeID != "" {
			next.NoticeID = event.NoticeID
		}
		answer, err := answerOf(&next, &event)
		if err != nil {
			return Answer{}, err
		}
		update, err := s.updateCase(c, o, actor, at)
		if err != nil {
			return Answer{}, err
		}
		put, err := s.putEvent(event)
		if err != nil {
			return Answer{}, err
		}
		items := []types.TransactWriteItem{{Update: update}, {Put: put}}
		if idem != nil {
			items = append(items, types.TransactWriteItem{Put: idem.put(answer)})
		}
		_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return answer, nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return Answer{}, fmt.Errorf("%s on case %s: %w", req.Action, caseID, err)
		}
		reason := func(i int) string {
			if i < len(tce.CancellationReasons) {
				return aws.ToString(tce.CancellationReasons[i].Code)
			}
			return ""
		}
		switch {
		case idem != nil && reason(2) == "ConditionalCheckFailed":
			// A concurrent request with the same key answered first.
			a, found, err := idem.stored(ctx)
			if err != nil || found {
				return a, err
			}
		case reason(0) == "ConditionalCheckFailed":
			// The case changed since it was read: answer as it is now.
		case reason(0) == "TransactionConflict", reason(1) == "TransactionConflict", reason(2) == "TransactionConflict":
			// Another transaction held the case: read it again shortly.
			if err := ddbbatch.Sleep(ctx, time.Duration(10+mathrand.IntN(40))*time.Millisecond); err != nil {
				return Answer{}, err
			}
		default:
			return Answer{}, fmt.Errorf("%s on case %s: %w", req.Action, caseID, err)
		}
	}
	return Answer{}, fmt.Errorf("%s on case %s: %w", req.Action, caseID, errBusy)
}

// updateCase is the conditional update of case c as read: it applies o only
// if the case still has the status, the lead and the protection that were
// read, so of two concurrent actions decided on the same read only one is
// written (of ten concurrent claim_lead, exactly one).
func (s *Store) updateCase(c *casestore.Case, o outcome, actor Actor, at time.Time) (*types.Update, error) {
	names := map[string]string{"#status": "status", "#lead": "lead"}
	values := map[string]types.AttributeValue{}
	cond := "attribute_exists(pk)"
	if c.Status == "" {
		cond += " AND attribute_not_exists(#status)"
	} else {
		cond += " AND #status = :seen_status"
		values[":seen_status"] = &types.AttributeValueMemberS{Value: c.Status}
	}
	if c.Lead == "" {
		cond += " AND attribute_not_exists(#lead)"
	} else {
		cond += " AND #lead = :seen_lead"
		values[":seen_lead"] = &types.AttributeValueMemberS{Value: c.Lead}
	}
	if !c.Protected {
		// `flagline protect apply` marks existing cases: one marked
		// after this read is decided again, so its takedown is refused.
		cond += " AND attribute_not_exists(#protected)"
		names["#protected"] = "protected"
	}
	var set, remove []string
	if o.status != "" {
		set = append(set, "#status = :status", "status_at = :at")
		values[":status"] = &types.AttributeValueMemberS{Value: o.status}
		// The first answer to the case and its first removal, for GET
		// /v1/stats, kept through a reopening. Decided on the case as read
		// (a case item may hold a zero time): the update is conditional on
		// that read's status, and only status changes set them.
		if statusOf(c) == casestore.StatusOpen && o.status != casestore.StatusOpen && c.AcknowledgedAt.IsZero() {
			set = append(set, "acknowledged_at = :at")
		}
		if o.status == casestore.StatusRemoved && c.RemovedAt.IsZero() {
			set = append(set, "removed_at = :at")
		}
	}
	if o.setLead {
		set = append(set, "#lead = :lead", "lead_since = :at")
		values[":lead"] = &types.AttributeValueMemberS{Value: actor.ContactPoint}
	}
	if o.releaseLead {
		remove = append(remove, "#lead", "lead_since")
	}
	if o.overrideReason != "" {
		set = append(set, "override_reason = :override")
		values[":override"] = &types.AttributeValueMemberS{Value: o.overrideReason}
	}
	if o.status == casestore.StatusTakedownRequested {
		set = append(set, "notice_id = :notice")
		values[":notice"] = &types.AttributeValueMemberS{Value: casestore.NoticeID(c.ID, actor.ContactPoint)}
	}
	dueSet, dueValues, dueRemove := s.clock(c, o.status, at)
	set = append(set, dueSet...)
	remove = append(remove, dueRemove...)
	for k, v := range dueValues {
		values[k] = v
	}
	if len(set) > 0 || o.setLead {
		values[":at"] = &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)}
	}
	if len(set) == 0 && len(remove) == 0 {
		// evidence_preserved: the case is unchanged, but the event is
		// written only while the case is as read (a ConditionCheck would do
		// the same; an Update keeps one shape for every action).
		set = append(set, "#status = #status")
	}
	expr := ""
	if len(set) > 0 {
		expr += "SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	if len(values) == 0 {
		values = nil
	}
	return &types.Update{
		TableName:                 aws.String(s.Table),
		Key:                       caseKey(c.ID),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}, nil
}

// putEvent is the Put of timeline event e; its sort key is new (the time
// and a random id), so the condition only guards against a collision.
func (s *Store) putEvent(e casestore.Event) (*types.Put, error) {
	item, err := attributevalue.MarshalMap(e)
	if err != nil {
		return nil, fmt.Errorf("event of case %s: %w", e.CaseID, err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(e.CaseID)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.EventSortKey(e.At, eventID())}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeEvent}
	return &types.Put{
		TableName:           aws.String(s.Table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}, nil
}

// idempotency is one Idempotency-Key's record: pk the case's, sk
// IDEMPOTENCY#<contact point>#<hex sha256 of the key>, holding the first
// answer and a hash of the request it answered. A nil *idempotency (no
// key) keeps nothing.
type idempotency struct {
	s           *Store
	key         map[string]types.AttributeValue
	requestHash string
}

func (s *Store) idempotency(caseID string, actor Actor, req Request, key string) *idempotency {
	k := sha256.Sum256([]byte(key))
	body, _ := json.Marshal(req) // strings only: cannot fail
	r := sha256.Sum256(body)
	return &idempotency{
		s: s,
		key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
			"sk": &types.AttributeValueMemberS{Value: IdempotencyPrefix + actor.ContactPoint + "#" + hex.EncodeToString(k[:])},
		},
		requestHash: hex.EncodeToString(r[:]),
	}
}

type idempotencyRecord struct {
	Status      int    `dynamodbav:"answer_status"`
	Body        string `dynamodbav:"answer_body"`
	RequestHash string `dynamodbav:"request_hash"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
}

// stored is the answer stored for the key, if any. A record past its
// expires_at is ignored: TTL deletes expired items only eventually
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).
// The same key with another request is refused (422), as the first
// answer does not answer it.
func (i *idempotency) stored(ctx context.Context) (Answer, bool, error) {
	out, err := i.s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(i.s.Table),
		Key:            i.key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Answer{}, false, fmt.Errorf("read idempotency record: %w", err)
	}
	if out.Item == nil {
		return Answer{}, false, nil
	}
	var rec idempotencyRecord
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return Answer{}, false, fmt.Errorf("read idempotency record: %w", err)
	}
	if rec.ExpiresAt <= i.s.now().Unix() {
		return Answer{}, false, nil
	}
	if rec.RequestHash != i.requestHash {
		return *fail(422, httpapi.Error{Code: "idempotency_key_reused", Message: "this Idempotency-Key was used for another request"}), true, nil
	}
	return Answer{Status: rec.Status, Body: []byte(rec.Body)}, true, nil
}

// put is the Put of the record holding answer a; it fails when a live
// record for the key exists.
func (i *idempotency) put(a Answer) *types.Put {
	ttl := i.s.IdempotencyTTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	now := i.s.now()
	item := map[string]types.AttributeValue{
		"pk":            i.key["pk"],
		"sk":            i.key["sk"],
		"type":          &types.AttributeValueMemberS{Value: TypeIdempotency},
		"answer_status": &types.AttributeValueMemberN{Value: strconv.Itoa(a.Status)},
		"answer_body":   &types.AttributeValueMemberS{Value: string(a.Body)},
		"request_hash":  &types.AttributeValueMemberS{Value: i.requestHash},
		"expires_at":    &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ttl).Unix(), 10)},
	}
	return &types.Put{
		TableName:                 aws.String(i.s.Table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR expires_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
	}
}

// keep stores answer a when there is a key (a plain conditional PutItem)
// and returns it; if another request with the key stored its answer first,
// that one is returned instead.
func (i *idempotency) keep(ctx context.Context, a Answer) (Answer, error) {
	if i == nil {
		return a, nil
	}
	p := i.put(a)
	_, err := i.s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 p.TableName,
		Item:                      p.Item,
		ConditionExpression:       p.ConditionExpression,
		ExpressionAttributeValues: p.ExpressionAttributeValues,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return a, nil
	case errors.As(err, &ccf):
		stored, found, err := i.stored(ctx)
		if err != nil || found {
			return stored, err
		}
		return Answer{}, fmt.Errorf("store idempotency record: %w", errBusy)
	default:
		return Answer{}, fmt.Errorf("store idempotency record: %w", err)
	}
}
