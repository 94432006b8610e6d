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

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/ddbbatch"
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
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	wait, interval := g.Settings(dir, cp)
	if cur.Scheduled == 0 {
		// Schedule sends the message before it writes the schedule, so a
		// message due at once can come first: give the write a second,
		// a few times, while the message is fresh.
		if m.Early < maxEarly && now.Sub(m.At) < 10*time.Second {
			m.Early++
			m.At = now.Add(time.Second)
			return g.send(ctx, m, now)
		}
		// Nothing scheduled, yet copies may be held: a flush that stopped
		// after ending its schedule, or a schedule whose write never came.
		// They get a flush of their own.
		return h.rescheduleRest(ctx, cp, wait)
	}
	s := fromMS(cur.Scheduled)
	if s.After(now.Add(flushTolerance)) {
		if ms(m.At) == cur.Scheduled {
			// A wait longer than one message's delay: send it on.
			return g.send(ctx, m, now)
		}
		return nil // a message of an earlier schedule; this one's comes
	}
	// An outbox an earlier flush left open goes first: its copies are
	// listed in it and must not be listed again.
	if cur.OpenOutbox != "" {
		if err := h.finishOpen(ctx, log, cp, cur.OpenOutbox); err != nil {
			return err
		}
	}
	held, err := heldCopies(ctx, g.DB, h.Table, cp)
	if err != nil {
		return err
	}
	sent := false
	if len(held) > 0 {
		if rerouted, err := h.rerouteSilenced(ctx, inv, log, cp, held); err != nil || rerouted {
			if err != nil {
				return err
			}
			held = nil
		}
	}
	if len(held) > 0 {
		o, err := h.outbox(ctx, cp, cur.Scheduled, held, wait, interval)
		if errors.Is(err, errScheduleTaken) {
			log.InfoContext(ctx, "digest schedule handled by another flush", "scheduled_ms", cur.Scheduled)
			return nil
		}
		if err != nil {
			return err
		}
		if !o.Done {
			if err := h.finish(ctx, log, o); err != nil {
				return err
			}
			inv.m.published++
		}
		sent = true
	}
	if err := clearSchedule(ctx, g.DB, h.Table, cp, cur.Scheduled, now.Add(interval), sent); err != nil {
		return err
	}
	// Copies held while this flush ran wait for the next one.
	return h.rescheduleRest(ctx, cp, wait)
}

// rescheduleRest schedules desk cp's flush if any copy is still held (at
// once past the spacing gate if one of them is critical).
func (h *Handler) rescheduleRest(ctx context.Context, cp string, wait time.Duration) error {
	g := h.Grouping
	var n int
	critical := false
	err := queryPrefix(ctx, g.DB, h.Table, cp, HeldPrefix, "", "sk, critical", func(items []map[string]types.AttributeValue) error {
		n += len(items)
		for _, it := range items {
			if c, ok := it["critical"].(*types.AttributeValueMemberBOOL); ok && c.Value {
				critical = true
			}
		}
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	return g.Schedule(ctx, h.Table, cp, critical, wait, h.now())
}

// errScheduleTaken: the flush's schedule ended, or another flush holds an
// open outbox for the desk.
var errScheduleTaken = errors.New("digest schedule taken")

// outbox is a flush's message, kept until every copy it lists is gone.
type outbox struct {
	PK           string        `dynamodbav:"pk"`
	SK           string        `dynamodbav:"sk"`
	Type         string        `dynamodbav:"type"`
	DigestID     string        `dynamodbav:"digest_id"`
	ContactPoint string        `dynamodbav:"contact_point"`
	Scheduled    int64         `dynamodbav:"scheduled_ms"`
	Publish      StoredPublish `dynamodbav:"publish,omitempty"`
	// Held are the sort keys of the held copies the message lists.
	Held      []string `dynamodbav:"held,omitempty"`
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

// listing is what a digest lists of held copies: one entry per case (and
// desk it stands in for), its latest copy, with the level change since the
// earliest.
func listing(held []Held) []Held {
	var out []Held
	at := map[string]int{}
	for _, x := range held {
		key := x.CaseID + "|" + x.SilencedFor
		i, ok := at[key]
		if !ok {
			at[key] = len(out)
			out = append(out, x)
			continue
		}
		from := min(out[i].FromLevel, x.FromLevel)
		if x.Level >= out[i].Level {
			out[i] = x
		}
		out[i].FromLevel = from
	}
	return out
}

// outbox writes the outbox of the flush scheduled at scheduled, listing
// the first held copies that fit one message (the copy itself when they
// are one case's), in one transaction with the desk's GROUP item, on
// condition that the schedule still stands and no other outbox is open;
// or returns the one already written for that schedule.
func (h *Handler) outbox(ctx context.Context, cp string, scheduled int64, held []Held, wait, interval time.Duration) (*outbox, error) {
	g := h.Grouping
	id := DigestID(cp, scheduled)
	o := &outbox{
		PK: contacts.Key(cp), SK: OutboxPrefix + id, Type: TypeOutbox, DigestID: id, ContactPoint: cp,
		Scheduled: scheduled, ExpiresAt: h.now().Add(GroupItemTTL).Unix(),
	}
	n := min(len(held), MaxGroupCases)
	for {
		listed := listing(held[:n])
		if len(listed) == 1 {
			o.Publish = listed[0].Alone
			o.Cases = 1
			break
		}
		d := &GroupDigest{ContactPoint: cp, ID: id, Items: listed, Remaining: len(listing(held)) - len(listed), Wait: wait, Interval: interval}
		msg, err := RenderGroup(d)
		if err != nil {
			return nil, err
		}
		in, err := GroupPublishInput(h.TopicARN, d, msg)
		if errors.Is(err, ErrTooLarge) && n > 1 {
			n = n * 3 / 4
			continue
		}
		if err != nil {
			return nil, err
		}
		o.Publish = *Store(in)
		o.Cases = len(listed)
		break
	}
	for _, x := range held[:n] {
		o.Held = append(o.Held, heldSortKey(x.CopyID))
	}
	item, err := attributevalue.MarshalMap(o)
	if err != nil {
		return nil, fmt.Errorf("encode digest %s: %w", id, err)
	}
	_, err = g.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(h.Table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Update: &types.Update{
			TableName: aws.String(h.Table), Key: groupKey(cp),
			UpdateExpression:          aws.String("SET open_outbox = :id"),
			ConditionExpression:       aws.String("scheduled_ms = :s AND attribute_not_exists(open_outbox)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":id": strAV(id), ":s": num(scheduled)},
		}},
	}})
	if err == nil {
		return o, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 || transientCancel(err) {
		return nil, fmt.Errorf("write digest %s: %w", id, err)
	}
	if aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		// This schedule's outbox was written before: finish that one
		// (or, done, nothing).
		prev, err := readOutbox(ctx, g.DB, h.Table, cp, id)
		if err != nil || prev == nil {
			return nil, errors.Join(err, fmt.Errorf("digest %s: %w", id, errScheduleTaken))
		}
		return prev, nil
	}
	return nil, errScheduleTaken
}

// readOutbox reads outbox id of desk cp (consistent); nil when there is
// none.
func readOutbox(ctx context.Context, db GroupDB, table, cp, id string) (*outbox, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": strAV(contacts.Key(cp)), "sk": strAV(OutboxPrefix + id)},
	})
	if err != nil {
		return nil, fmt.Errorf("read digest %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var o outbox
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		return nil, fmt.Errorf("decode digest %s: %w", id, err)
	}
	return &o, nil
}

// finishOpen finishes desk cp's open outbox id (or only clears the
// pointer to one already done or gone).
func (h *Handler) finishOpen(ctx context.Context, log *slog.Logger, cp, id string) error {
	o, err := readOutbox(ctx, h.Grouping.DB, h.Table, cp, id)
	if err != nil {
		return err
	}
	if o == nil || o.Done {
		return closeOutbox(ctx, h.Grouping.DB, h.Table, cp, id)
	}
	return h.finish(ctx, log, o)
}

// closeOutbox clears desk cp's pointer to its open outbox id.
func closeOutbox(ctx context.Context, db GroupDB, table, cp, id string) error {
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: groupKey(cp),
		UpdateExpression:          aws.String("REMOVE open_outbox"),
		ConditionExpression:       aws.String("open_outbox = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": strAV(id)},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("close digest %s: %w", id, err)
	}
	return nil
}

// finish publishes outbox o unless it was sent (under a lease, past the
// desk's spacing gate), records its message id, deletes the held copies
// it lists and marks it done.
func (h *Handler) finish(ctx context.Context, log *slog.Logger, o *outbox) error {
	g := h.Grouping
	key := map[string]types.AttributeValue{"pk": strAV(o.PK), "sk": strAV(o.SK)}
	if o.SentAt == 0 {
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
		// Not sent: the retry may take it at once (best effort; the lease
		// ends by itself otherwise).
		release := func() {
			_, _ = g.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(h.Table), Key: key,
				UpdateExpression:          aws.String("REMOVE lease_ms"),
				ConditionExpression:       aws.String("lease_ms = :until"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":until": until},
			})
		}
		slot, err := WaitGate(ctx, g.DB, h.Table, o.ContactPoint, h.now)
		if err != nil {
			release()
			return err
		}
		out, err := slot.Publish(ctx, h.SNS, o.Publish.input(h.TopicARN), h.now)
		if err != nil {
			release()
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
		UpdateExpression: aws.String("SET done = :t REMOVE publish, held"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberBOOL{Value: true},
		},
	}); err != nil {
		return fmt.Errorf("close digest %s: %w", o.DigestID, err)
	}
	o.Done = true
	return closeOutbox(ctx, g.DB, h.Table, o.ContactPoint, o.DigestID)
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
	err := queryPrefix(ctx, db, table, cp, HeldPrefix, "", "", func(items []map[string]types.AttributeValue) error {
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

// queryPrefix reads desk cp's items whose sort key begins with prefix
// (consistent, every page), only the attributes of projection when set.
func queryPrefix(ctx context.Context, db GroupDB, table, cp, prefix, filter, projection string, each func([]map[string]types.AttributeValue) error) error {
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
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
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
// sending the unprocessed ones again with a short backoff (at most 8
// calls a request).
func deleteItems(ctx context.Context, db GroupDB, table, pk string, sks []string) error {
	for chunk := range slices.Chunk(sks, ddbbatch.MaxWriteRequests) {
		reqs := make([]types.WriteRequest, 0, len(chunk))
		for _, sk := range chunk {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{
				Key: map[string]types.AttributeValue{"pk": strAV(pk), "sk": strAV(sk)},
			}})
		}
		if err := ddbbatch.Write(ctx, db, map[string][]types.WriteRequest{table: reqs}, 8); err != nil {
			return fmt.Errorf("delete held copies: %w", err)
		}
	}
	return nil
}

// rerouteSilenced handles copies held for desk cp that is silenced now
// (its silence began after they were held): none of them reaches the
// desk. Each goes to the EU coordinator(s) instead, marked for the desk,
// and is recorded as missed for the desk's catch-up digest, as Reroute
// does for a copy sent at once. It reports whether it rerouted them.
func (h *Handler) rerouteSilenced(ctx context.Context, inv *invocation, log *slog.Logger, cp string, held []Held) (bool, error) {
	g := h.Grouping
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(dir, func(c contacts.ContactPoint) bool { return c.ID == cp })
	if i < 0 {
		return false, nil
	}
	silenced, err := h.silenced(ctx, inv)
	if err != nil {
		return false, err
	}
	now := h.now()
	copies := Reroute(dir, dir[i:i+1], silenced, now)
	if len(copies) == 0 || copies[0].For == "" {
		return false, nil
	}
	critical := false
	var sks []string
	for _, x := range held {
		critical = critical || x.Critical
		for _, c := range copies {
			y := x
			y.ContactPoint, y.SilencedFor = c.To, cp
			y.CopyID = x.AlertID + "-" + c.To + "-for-" + cp
			y.Alone = x.Alone.reroutedTo(c.To, cp, y.CopyID)
			a := &Alert{ID: x.AlertID, Kind: x.Kind, Level: x.Level, Severity: x.Severity, Case: casestore.Case{ID: x.CaseID, Protected: x.Protected, ProtectedBy: x.ProtectedBy}}
			if err := RecordMissed(ctx, h.DB, h.Table, a, c, now); err != nil {
				return true, err
			}
			item, err := heldItem(&y)
			if err != nil {
				return true, err
			}
			_, err = g.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.Table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
			var ccf *types.ConditionalCheckFailedException
			if err != nil && !errors.As(err, &ccf) {
				return true, fmt.Errorf("reroute held copy %s: %w", x.CopyID, err)
			}
		}
		sks = append(sks, heldSortKey(x.CopyID))
	}
	for _, c := range copies {
		wait, _ := g.Settings(dir, c.To)
		if err := g.Schedule(ctx, h.Table, c.To, critical, wait, now); err != nil {
			return true, err
		}
	}
	if err := deleteItems(ctx, g.DB, h.Table, contacts.Key(cp), sks); err != nil {
		return true, err
	}
	log.InfoContext(ctx, "held copies rerouted: the desk is silenced", "copies", len(held), "to", len(copies))
	return true, nil
}

// reroutedTo is p as the copy for contact point to standing in for the
// silenced desk: its attributes say so (contact_point, silenced_for in
// platform's place, alert_id) and so does its subject.
func (p StoredPublish) reroutedTo(to, desk, copyID string) StoredPublish {
	out := StoredPublish{Message: p.Message, Subject: truncate("[for "+ASCII(desk)+", silenced] "+p.Subject, MaxSubject, "..."), Attributes: map[string]StoredAttr{}}
	for name, v := range p.Attributes {
		if name != AttrPlatform {
			out.Attributes[name] = v
		}
	}
	out.Attributes[AttrContactPoint] = StoredAttr{Type: "String", Value: to}
	out.Attributes[AttrSilencedFor] = StoredAttr{Type: "String", Value: desk}
	out.Attributes[AttrAlertID] = StoredAttr{Type: "String", Value: copyID}
	return out
}
