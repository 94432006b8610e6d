package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/contacts"
)

// flushTolerance lets a flush message run a little before its time: SQS
// delays are whole seconds, rounded up, so it is never early by more.
const flushTolerance = 50 * time.Millisecond

// maxEarly is how many times a message that came before its schedule is
// sent again.
const maxEarly = 3

// errLeased says another flush is publishing the desk's outbox.
var errLeased = errors.New("digest outbox is being sent by another flush")

// HandleDigests handles a batch of the digest queue's messages: each
// desk's due flush (see group.go). A message that fails is reported as a
// batch item failure: the queue gives it again after its visibility
// timeout, and parks it in the dead-letter queue after its last receive.
// A message that cannot be read is reported the same way, so it is kept
// there for an operator rather than dropped.
func (h *Handler) HandleDigests(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	var m invocationMetrics
	inv := &invocation{m: &m}
	done := map[string]error{}
	for _, rec := range ev.Records {
		log := h.log().With("message_id", rec.MessageId)
		var msg FlushMessage
		err := json.Unmarshal([]byte(rec.Body), &msg)
		if err == nil && msg.ContactPoint == "" {
			err = errors.New("no contact_point")
		}
		if err != nil {
			log.ErrorContext(ctx, "digest message cannot be read", "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			continue
		}
		key := msg.ContactPoint + "@" + strconv.FormatInt(ms(msg.At), 10)
		ferr, seen := done[key]
		if !seen {
			if nearDeadline(ctx) {
				ferr = ErrDeadline
			} else {
				ferr = h.flush(ctx, inv, log.With("contact_point", msg.ContactPoint), msg)
				done[key] = ferr
			}
		}
		if ferr != nil {
			m.failures++
			log.ErrorContext(ctx, "digest failed", "contact_point", msg.ContactPoint, "retryable", Retryable(ferr), "error", ferr)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	if h.Metrics != nil {
		if err := m.write(h.Metrics, h.now()); err != nil {
			h.log().WarnContext(ctx, "write metrics", "error", err)
		}
	}
	return resp, nil
}

// flush sends desk cp's held copies, if its scheduled flush is due.
func (h *Handler) flush(ctx context.Context, inv *invocation, log *slog.Logger, m FlushMessage) error {
	g := h.Grouping
	if !g.Enabled() {
		return errors.New("digest message received, but grouping is not configured (DIGEST_QUEUE_URL)")
	}
	cp, now := m.ContactPoint, h.now()
	cur, err := readGroup(ctx, g.DB, h.Table, cp)
	if err != nil {
		return err
	}
	if cur.Scheduled == 0 {
		// Schedule sends the message before it writes the schedule, so a
		// message due at once can come first: give the write a second,
		// a few times, while the message is fresh. An old message with
		// no schedule is a repeat of a flush already done.
		if m.Early < maxEarly && now.Sub(m.At) < 10*time.Second {
			m.Early++
			m.At = now.Add(time.Second)
			return g.send(ctx, m, now)
		}
		log.DebugContext(ctx, "no digest scheduled")
		return nil
	}
	s := fromMS(cur.Scheduled)
	if s.After(now.Add(flushTolerance)) {
		if ms(m.At) == cur.Scheduled {
			// A wait longer than one message's delay: send it on.
			return g.send(ctx, m, now)
		}
		return nil // a message of an earlier schedule; this one's comes
	}
	// What an earlier flush left half done goes first: its held copies
	// are listed in its outbox and must not be listed again.
	open, err := outboxes(ctx, g.DB, h.Table, cp)
	if err != nil {
		return err
	}
	for i := range open {
		if err := h.finish(ctx, log, &open[i]); err != nil {
			return err
		}
	}
	held, err := heldCopies(ctx, g.DB, h.Table, cp)
	if err != nil {
		return err
	}
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	wait, interval := g.Settings(dir, cp)
	if len(held) > 0 {
		o, err := h.outbox(ctx, cp, cur.Scheduled, held, wait, interval)
		if err != nil {
			return err
		}
		if !o.Done {
			if err := h.finish(ctx, log, o); err != nil {
				return err
			}
			inv.m.published++
		}
	}
	if err := clearSchedule(ctx, g.DB, h.Table, cp, cur.Scheduled, now.Add(interval), len(held) > 0); err != nil {
		return err
	}
	// Copies held while this flush ran wait for the next one.
	rest, err := heldCopies(ctx, g.DB, h.Table, cp)
	if err != nil || len(rest) == 0 {
		return err
	}
	critical := slices.ContainsFunc(rest, func(x Held) bool { return x.Critical })
	return g.Schedule(ctx, h.Table, cp, critical, wait, h.now())
}

// outbox is a flush's message, kept until every copy it lists is gone.
type outbox struct {
	PK           string        `dynamodbav:"pk"`
	SK           string        `dynamodbav:"sk"`
	Type         string        `dynamodbav:"type"`
	DigestID     string        `dynamodbav:"digest_id"`
	ContactPoint string        `dynamodbav:"contact_point"`
	Scheduled    int64         `dynamodbav:"scheduled_ms"`
	Publish      StoredPublish `dynamodbav:"publish"`
	// Held are the sort keys of the held copies the message lists.
	Held      []string `dynamodbav:"held"`
	Cases     int      `dynamodbav:"case_count"`
	SentAt    int64    `dynamodbav:"sent_ms,omitempty"`
	MessageID string   `dynamodbav:"message_id,omitempty"`
	Done      bool     `dynamodbav:"done,omitempty"`
	ExpiresAt int64    `dynamodbav:"expires_at"`
}

// DigestID is the id of the digest desk cp is sent for the flush
// scheduled at scheduled (Unix ms).
func DigestID(cp string, scheduled int64) string {
	return cp + "-digest-" + strconv.FormatInt(scheduled, 10)
}

// outbox writes the outbox of the flush scheduled at scheduled, listing
// the first held copies that fit one message (the copy itself when only
// one does), or returns the one already written for that schedule.
func (h *Handler) outbox(ctx context.Context, cp string, scheduled int64, held []Held, wait, interval time.Duration) (*outbox, error) {
	g := h.Grouping
	id := DigestID(cp, scheduled)
	o := &outbox{
		PK: contacts.Key(cp), SK: OutboxPrefix + id, Type: TypeOutbox, DigestID: id, ContactPoint: cp,
		Scheduled: scheduled, ExpiresAt: h.now().Add(GroupItemTTL).Unix(),
	}
	n := min(len(held), MaxGroupCases)
	for {
		if n == 1 {
			o.Publish = held[0].Alone
			break
		}
		d := &GroupDigest{ContactPoint: cp, ID: id, Items: held[:n], Remaining: len(held) - n, Wait: wait, Interval: interval}
		msg, err := RenderGroup(d)
		if err != nil {
			return nil, err
		}
		in, err := GroupPublishInput(h.TopicARN, d, msg)
		if errors.Is(err, ErrTooLarge) {
			n = n * 3 / 4
			continue
		}
		if err != nil {
			return nil, err
		}
		o.Publish = *Store(in)
		break
	}
	for _, x := range held[:n] {
		o.Held = append(o.Held, heldSortKey(x.CopyID))
	}
	o.Cases = n
	item, err := attributevalue.MarshalMap(o)
	if err != nil {
		return nil, fmt.Errorf("encode digest %s: %w", id, err)
	}
	_, err = g.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(h.Table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// This schedule's outbox was written before: finish that one.
		out, err := g.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(h.Table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": strAV(o.PK), "sk": strAV(o.SK)},
		})
		if err != nil {
			return nil, fmt.Errorf("read digest %s: %w", id, err)
		}
		var prev outbox
		if err := attributevalue.UnmarshalMap(out.Item, &prev); err != nil {
			return nil, fmt.Errorf("decode digest %s: %w", id, err)
		}
		return &prev, nil
	}
	if err != nil {
		return nil, fmt.Errorf("write digest %s: %w", id, err)
	}
	return o, nil
}

// finish publishes outbox o unless it was sent (under a lease, past the
// desk's spacing gate), records its message id, deletes the held copies
// it lists and marks it done.
func (h *Handler) finish(ctx context.Context, log *slog.Logger, o *outbox) error {
	g := h.Grouping
	key := map[string]types.AttributeValue{"pk": strAV(o.PK), "sk": strAV(o.SK)}
	if o.SentAt == 0 {
		// The desk's slot first: a flush that cannot have it holds no
		// lease that would keep its retry waiting.
		if err := WaitGate(ctx, g.DB, h.Table, o.ContactPoint, h.now); err != nil {
			return err
		}
		until := num(ms(h.now().Add(OutboxLease)))
		_, err := g.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(h.Table), Key: key,
			UpdateExpression:    aws.String("SET lease_ms = :until"),
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(sent_ms) AND (attribute_not_exists(lease_ms) OR lease_ms < :now)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":until": until, ":now": num(ms(h.now())),
			},
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("%w: %s", errLeased, o.DigestID)
		}
		if err != nil {
			return fmt.Errorf("lease digest %s: %w", o.DigestID, err)
		}
		out, err := h.SNS.Publish(ctx, o.Publish.input(h.TopicARN))
		if err != nil {
			// Not sent: the retry may take it at once (best effort; the
			// lease ends by itself otherwise).
			_, _ = g.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(h.Table), Key: key,
				UpdateExpression:          aws.String("REMOVE lease_ms"),
				ConditionExpression:       aws.String("lease_ms = :until"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":until": until},
			})
			return fmt.Errorf("publish digest %s: %w", o.DigestID, err)
		}
		o.MessageID, o.SentAt = aws.ToString(out.MessageId), ms(h.now())
		if _, err := g.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(h.Table), Key: key,
			UpdateExpression: aws.String("SET sent_ms = :sent, message_id = :id REMOVE lease_ms"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":sent": num(o.SentAt), ":id": strAV(o.MessageID),
			},
		}); err != nil {
			return fmt.Errorf("record digest %s: %w", o.DigestID, err)
		}
		log.InfoContext(ctx, "digest published", "alert_id", o.DigestID, "cases", o.Cases, "message_id", o.MessageID)
	}
	if err := deleteItems(ctx, g.DB, h.Table, o.PK, o.Held); err != nil {
		return fmt.Errorf("digest %s: %w", o.DigestID, err)
	}
	if _, err := g.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.Table), Key: key,
		UpdateExpression: aws.String("SET done = :t REMOVE publish"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberBOOL{Value: true},
		},
	}); err != nil {
		return fmt.Errorf("close digest %s: %w", o.DigestID, err)
	}
	o.Done = true
	return nil
}

// input is the SNS Publish of p to topic.
func (p *StoredPublish) input(topic string) *sns.PublishInput {
	attrs := make(map[string]snstypes.MessageAttributeValue, len(p.Attributes))
	for name, v := range p.Attributes {
		attrs[name] = snstypes.MessageAttributeValue{DataType: aws.String(v.Type), StringValue: aws.String(v.Value)}
	}
	return &sns.PublishInput{
		TopicArn: aws.String(topic), Message: aws.String(p.Message), MessageStructure: aws.String("json"),
		Subject: aws.String(p.Subject), MessageAttributes: attrs,
	}
}

// clearSchedule ends the flush scheduled at scheduled: the next digest may
// go at next (when sent), and a new copy schedules a new flush.
func clearSchedule(ctx context.Context, db GroupDB, table, cp string, scheduled int64, next time.Time, sent bool) error {
	set := "REMOVE scheduled_ms"
	values := map[string]types.AttributeValue{":s": num(scheduled)}
	if sent {
		set = "SET next_at_ms = :next REMOVE scheduled_ms"
		values[":next"] = num(ms(next))
	}
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: groupKey(cp),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("scheduled_ms = :s"),
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("end digest schedule of %s: %w", cp, err)
	}
	return nil
}

// heldCopies lists desk cp's held copies, oldest first (a consistent
// Query, every page).
func heldCopies(ctx context.Context, db GroupDB, table, cp string) ([]Held, error) {
	var out []Held
	err := queryPrefix(ctx, db, table, cp, HeldPrefix, "", func(items []map[string]types.AttributeValue) error {
		var hs []Held
		if err := attributevalue.UnmarshalListOfMaps(items, &hs); err != nil {
			return fmt.Errorf("decode held copies of %s: %w", cp, err)
		}
		out = append(out, hs...)
		return nil
	})
	slices.SortStableFunc(out, func(a, b Held) int {
		if c := a.HeldAt.Compare(b.HeldAt); c != 0 {
			return c
		}
		return strings.Compare(a.CopyID, b.CopyID)
	})
	return out, err
}

// outboxes lists desk cp's outboxes not done.
func outboxes(ctx context.Context, db GroupDB, table, cp string) ([]outbox, error) {
	var out []outbox
	err := queryPrefix(ctx, db, table, cp, OutboxPrefix, "attribute_not_exists(done)", func(items []map[string]types.AttributeValue) error {
		var os []outbox
		if err := attributevalue.UnmarshalListOfMaps(items, &os); err != nil {
			return fmt.Errorf("decode digests of %s: %w", cp, err)
		}
		out = append(out, os...)
		return nil
	})
	return out, err
}

func queryPrefix(ctx context.Context, db GroupDB, table, cp, prefix, filter string, each func([]map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ConsistentRead:         aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": strAV(contacts.Key(cp)), ":prefix": strAV(prefix),
		},
	}
	if filter != "" {
		in.FilterExpression = aws.String(filter)
	}
	for {
		page, err := db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("read %s items of %s: %w", strings.TrimSuffix(prefix, "#"), cp, err)
		}
		if err := each(page.Items); err != nil {
			return err
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// deleteItems deletes items pk/sks with BatchWriteItem (25 a request),
// sending the unprocessed ones again with a short backoff.
func deleteItems(ctx context.Context, db GroupDB, table, pk string, sks []string) error {
	for len(sks) > 0 {
		n := min(len(sks), 25)
		var reqs []types.WriteRequest
		for _, sk := range sks[:n] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{
				Key: map[string]types.AttributeValue{"pk": strAV(pk), "sk": strAV(sk)},
			}})
		}
		sks = sks[n:]
		for attempt := 0; len(reqs) > 0; attempt++ {
			if attempt == 8 {
				return fmt.Errorf("delete held copies: %d still unprocessed", len(reqs))
			}
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(25<<attempt) * time.Millisecond):
				}
			}
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
			if err != nil {
				return fmt.Errorf("delete held copies: %w", err)
			}
			reqs = out.UnprocessedItems[table]
		}
	}
	return nil
}
