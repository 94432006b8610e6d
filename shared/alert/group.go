package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

// Grouping. A burst of alerts buries the one that matters, and SNS
// suspends an email endpoint sent more than 10 messages a second, so the
// copies for one contact point are grouped, as Prometheus Alertmanager
// groups (group_wait, group_interval):
//
//   - A critical copy goes out at once, unless the desk was sent a message
//     less than MinSpacing ago: then it is held, and flushed when the
//     spacing allows.
//   - Any other copy is held (a held item under the desk, written in one
//     transaction with the copy's delivery record, so a retried stream
//     record never holds it twice), and the desk's flush is scheduled
//     GroupWait after the first held copy, or GroupInterval after the
//     desk's last digest, whichever is later.
//   - A flush is an SQS message to the digest queue, delayed until it is
//     due (at most 15 minutes a message; a longer wait is chained). The
//     alert function receives it and sends every held copy as one message:
//     the copy itself when it is alone, else one digest listing them all.
//
// Exactly once: a flush first writes an outbox item (the message and the
// held items it lists) in one transaction with the desk's GROUP item, on
// condition that its schedule still stands and no other outbox is open;
// then it publishes under a lease, records the message id, deletes the
// held items, marks the outbox done and closes it. A flush that stops
// anywhere is finished by its retry or by the desk's next flush; a copy
// published but not recorded is sent again with the same alert id, as for
// single copies. A message that finds nothing scheduled still schedules a
// flush for whatever is held, so no copy waits for a later alert. A desk
// silenced since its copies were held gets none of them: they are held
// again for the EU coordinator, as Reroute does, and recorded as missed.
//
// Spacing: every message to a desk (a critical copy, a flush, escalate's
// reminders) first takes the desk's slot (TakeGate), reserved for
// PublishBound and released at the publish's end; the next may start
// MinSpacing after that.
//
// Items, all under the desk's key (contacts.Key):
//
//	GROUP                     the schedule, the open outbox, the last
//	                          digest, the spacing slot
//	HELD#<copy id>            a held copy, rendered as it would go alone
//	DIGEST#<digest id>        an outbox: a flush's message and held items

// Sort keys and types of the grouping items.
const (
	GroupSortKey = "GROUP"
	HeldPrefix   = "HELD#"
	OutboxPrefix = "DIGEST#"
	TypeGroup    = "alert_group"
	TypeHeld     = "held_alert"
	TypeOutbox   = "digest_outbox"
	// GroupItemTTL expires the grouping items of a desk that is gone;
	// every flush pushes it on.
	GroupItemTTL = 30 * 24 * time.Hour
)

// Defaults and bounds of the grouping settings (template parameters
// GroupWait and GroupInterval, contacts.yaml group_wait and
// group_interval).
const (
	DefaultGroupWait     = 30 * time.Second
	DefaultGroupInterval = 5 * time.Minute
	MaxGroupSetting      = time.Hour
	// MinSpacing is the least time between two messages to one contact
	// point: an email endpoint then receives at most one message a second
	// in any burst, far from the 10 a second at which SNS suspends it
	// (https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html).
	MinSpacing = time.Second
	// MaxQueueDelay is the longest delay SQS gives one message
	// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html).
	MaxQueueDelay = 15 * time.Minute
	// StaleSchedule is how long past its time a flush may stay scheduled
	// before a new held copy schedules another: a flush whose message went
	// to the dead-letter queue must not keep the desk's later copies held.
	StaleSchedule = 2 * time.Minute
	// OutboxLease is how long a flush owns an outbox it is publishing:
	// longer than the function's timeout, so two flushes of one desk never
	// publish the same digest at once.
	OutboxLease = 60 * time.Second
	// MaxGroupCases is the most held copies one digest lists; the rest
	// wait for the next digest. A digest is also cut to fit SNS's
	// MaxMessageBytes.
	MaxGroupCases = 400
)

// Grouping is how a Handler groups copies.
type Grouping struct {
	// Queue is the digest queue's URL; empty sends every copy at once,
	// without grouping or spacing.
	Queue string
	// SQS sends the flushes.
	SQS Queue
	// DB is the table's client (the handler's, with UpdateItem).
	DB GroupDB
	// Wait and Interval are the deployment's settings (GROUP_WAIT and
	// GROUP_INTERVAL; a zero Wait holds a copy only until the desk's next
	// flush, a zero Interval means DefaultGroupInterval); a contact
	// point's own settings win.
	Wait, Interval time.Duration
}

// GroupDB is the DynamoDB client grouping uses: DB and UpdateItem.
type GroupDB interface {
	DB
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ GroupDB = (*dynamodb.Client)(nil)

// Queue is the SQS call the alert function makes.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// Enabled reports whether copies are grouped.
func (g *Grouping) Enabled() bool { return g != nil && g.Queue != "" && g.SQS != nil && g.DB != nil }

// Settings are the wait and interval of contact point id in dir.
func (g *Grouping) Settings(dir []contacts.ContactPoint, id string) (wait, interval time.Duration) {
	wait, interval = g.Wait, DefaultGroupInterval
	if g.Interval > 0 {
		interval = g.Interval
	}
	if i := slices.IndexFunc(dir, func(c contacts.ContactPoint) bool { return c.ID == id }); i >= 0 {
		if dir[i].GroupWait > 0 {
			wait = dir[i].GroupWait
		}
		if dir[i].GroupInterval > 0 {
			interval = dir[i].GroupInterval
		}
	}
	return wait, interval
}

// CheckGroupSettings refuses a wait outside 0..MaxGroupSetting or an
// interval outside MinSpacing..MaxGroupSetting.
func CheckGroupSettings(wait, interval time.Duration) error {
	if wait < 0 || wait > MaxGroupSetting {
		return fmt.Errorf("group wait %s is not between 0s and %s", wait, MaxGroupSetting)
	}
	if interval < MinSpacing || interval > MaxGroupSetting {
		return fmt.Errorf("group interval %s is not between %s and %s", interval, MinSpacing, MaxGroupSetting)
	}
	return nil
}

// Held is a copy held for its desk's next flush: what a digest lists of
// it, and the copy rendered as it would have gone alone.
type Held struct {
	ContactPoint string             `dynamodbav:"contact_point" json:"-"`
	CopyID       string             `dynamodbav:"copy_id" json:"alert_id"`
	AlertID      string             `dynamodbav:"alert_id" json:"-"`
	CaseID       string             `dynamodbav:"case_id" json:"case_id"`
	Kind         Kind               `dynamodbav:"kind" json:"kind"`
	Level        int                `dynamodbav:"level" json:"level"`
	FromLevel    int                `dynamodbav:"from_level" json:"from_level"`
	Severity     casestore.Severity `dynamodbav:"severity" json:"severity"`
	Critical     bool               `dynamodbav:"critical" json:"critical"`
	Countries    []string           `dynamodbav:"countries" json:"countries"`
	Category     string             `dynamodbav:"category" json:"category"`
	CanonicalURL string             `dynamodbav:"canonical_url" json:"canonical_url"`
	Reports      int                `dynamodbav:"report_count" json:"report_count"`
	SilencedFor  string             `dynamodbav:"silenced_for,omitempty" json:"silenced_for,omitempty"`
	// Protected and ProtectedBy are the case's (casestore.Case): a digest
	// says a protected case's notice as the copy alone would.
	Protected   bool      `dynamodbav:"protected,omitempty" json:"protected"`
	ProtectedBy string    `dynamodbav:"protected_by,omitempty" json:"protected_by,omitempty"`
	HeldAt      time.Time `dynamodbav:"held_at" json:"held_at"`
	// Alone is the copy's SNS publish, as it would have gone by itself.
	Alone StoredPublish `dynamodbav:"alone" json:"-"`
}

// StoredPublish is an SNS Publish kept in the table: the message (JSON
// structure), the subject and the attributes.
type StoredPublish struct {
	Message    string                `dynamodbav:"message"`
	Subject    string                `dynamodbav:"subject"`
	Attributes map[string]StoredAttr `dynamodbav:"attributes"`
}

// StoredAttr is one message attribute of a StoredPublish.
type StoredAttr struct {
	Type  string `dynamodbav:"type"`
	Value string `dynamodbav:"value"`
}

// heldSortKey is the sort key of the held copy a.
func heldSortKey(copyID string) string { return HeldPrefix + copyID }

// NewHeld is copy a (routed, rendered as msg, with its publish in) as a
// held item at t.
func NewHeld(a *Alert, in *StoredPublish, t time.Time) Held {
	return Held{
		ContactPoint: a.Recipient, CopyID: a.RecipientID(), AlertID: a.ID, CaseID: a.Case.ID,
		Kind: a.Kind, Level: a.Level, FromLevel: a.FromLevel, Severity: a.Severity, Critical: a.Critical(),
		Countries: nonNil(a.Countries), Category: a.PrimaryCategory(), CanonicalURL: a.Case.CanonicalURL,
		Reports: a.Case.Reports, SilencedFor: a.SilencedFor, Protected: a.Case.Protected, ProtectedBy: a.Case.ProtectedBy,
		HeldAt: t.UTC(), Alone: *in,
	}
}

// Store keeps a publish input in the table.
func Store(in *sns.PublishInput) *StoredPublish {
	out := &StoredPublish{Message: aws.ToString(in.Message), Subject: aws.ToString(in.Subject), Attributes: map[string]StoredAttr{}}
	for name, v := range in.MessageAttributes {
		out.Attributes[name] = StoredAttr{Type: aws.ToString(v.DataType), Value: aws.ToString(v.StringValue)}
	}
	return out
}

// group is a desk's GROUP item. Times are Unix milliseconds; zero is
// none.
type group struct {
	// Scheduled is when the pending flush is due.
	Scheduled int64 `dynamodbav:"scheduled_ms"`
	// NextAt is the earliest the next digest may go: GroupInterval after
	// the last one.
	NextAt int64 `dynamodbav:"next_at_ms"`
	// LastSent is when the desk was last sent a message (MinSpacing).
	LastSent int64 `dynamodbav:"last_sent_ms"`
	// OpenOutbox is the digest id of the outbox a flush is sending, until
	// it is done.
	OpenOutbox string `dynamodbav:"open_outbox"`
}

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func strAV(v string) types.AttributeValue {
	return &types.AttributeValueMemberS{Value: v}
}

func groupKey(cp string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": strAV(contacts.Key(cp)), "sk": strAV(GroupSortKey)}
}

// readGroup reads desk cp's GROUP item (consistent); none reads zero.
func readGroup(ctx context.Context, db GroupDB, table, cp string) (group, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: groupKey(cp), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return group{}, fmt.Errorf("read alert group of %s: %w", cp, err)
	}
	var g group
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &g); err != nil {
			return group{}, fmt.Errorf("decode alert group of %s: %w", cp, err)
		}
	}
	return g, nil
}

// Slot is a desk's message slot, taken with TakeGate or WaitGate: it is
// reserved for PublishBound from the time it was taken, until Publish
// releases it at the publish's end; the next message to the desk may
// start MinSpacing after that.
type Slot struct {
	db       GroupDB
	table    string
	cp       string
	reserved int64
}

// PublishBound is the longest a gated publish may take (SDK retries
// included): a publish still running past it would let the next message
// start less than MinSpacing after it.
const PublishBound = 3 * time.Second

// TakeGate claims desk cp's next message slot at now (one conditional
// UpdateItem): it succeeds when nothing was sent to the desk for
// MinSpacing, and otherwise says when the slot opens.
func TakeGate(ctx context.Context, db GroupDB, table, cp string, now time.Time) (slot *Slot, opens time.Time, err error) {
	reserved := ms(now.Add(PublishBound))
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(table),
		Key:                      groupKey(cp),
		UpdateExpression:         aws.String("SET last_sent_ms = :reserved, #type = :type, expires_at = :exp"),
		ConditionExpression:      aws.String("attribute_not_exists(last_sent_ms) OR last_sent_ms <= :open"),
		ExpressionAttributeNames: map[string]string{"#type": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":reserved": num(reserved), ":open": num(ms(now.Add(-MinSpacing))),
			":type": strAV(TypeGroup), ":exp": num(now.Add(GroupItemTTL).Unix()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return &Slot{db: db, table: table, cp: cp, reserved: reserved}, now, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, time.Time{}, fmt.Errorf("take message slot of %s: %w", cp, err)
	}
	var g group
	if ccf.Item != nil {
		_ = attributevalue.UnmarshalMap(ccf.Item, &g)
	}
	opens = fromMS(g.LastSent).Add(MinSpacing)
	if !opens.After(now) {
		opens = now.Add(MinSpacing)
	}
	return nil, opens, nil
}

// WaitGate takes desk cp's next message slot, sleeping until it opens
// (looking again at least every 250 ms, as a slot is often released
// before its reservation ends), for at most 10 s: a function that sends
// on a schedule (reminders, escalations, catch-up digests) and a flush
// keep MinSpacing too.
func WaitGate(ctx context.Context, db GroupDB, table, cp string, now func() time.Time) (*Slot, error) {
	give := now().Add(10 * time.Second)
	for {
		slot, opens, err := TakeGate(ctx, db, table, cp, now())
		if err != nil || slot != nil {
			return slot, err
		}
		if opens.After(give) {
			return nil, fmt.Errorf("message slot of %s: taken until %s", cp, opens.Format(time.RFC3339Nano))
		}
		t := time.NewTimer(min(time.Until(opens)+10*time.Millisecond, 250*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Publish publishes in within PublishBound, then releases the slot at
// the publish's end (best effort: a slot not released opens
// PublishBound + MinSpacing after it was taken).
func (s *Slot) Publish(ctx context.Context, p Publisher, in *sns.PublishInput, now func() time.Time) (*sns.PublishOutput, error) {
	pctx, cancel := context.WithTimeout(ctx, PublishBound)
	out, err := p.Publish(pctx, in)
	cancel()
	_, _ = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       groupKey(s.cp),
		UpdateExpression:          aws.String("SET last_sent_ms = :end"),
		ConditionExpression:       aws.String("last_sent_ms = :reserved"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": num(ms(now())), ":reserved": num(s.reserved)},
	})
	return out, err
}

// heldItem is held copy h as an item under its desk.
func heldItem(h *Held) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(h)
	if err != nil {
		return nil, fmt.Errorf("encode held copy %s: %w", h.CopyID, err)
	}
	item["pk"] = strAV(contacts.Key(h.ContactPoint))
	item["sk"] = strAV(heldSortKey(h.CopyID))
	item["type"] = strAV(TypeHeld)
	item["expires_at"] = num(h.HeldAt.Add(GroupItemTTL).Unix())
	return item, nil
}

// Hold holds copy h under its desk, with the copy's delivery record (kind
// held) in the same transaction: a copy held or delivered before is not
// held again (held reports false).
func Hold(ctx context.Context, db DB, table string, a *Alert, h *Held) (held bool, err error) {
	item, err := heldItem(h)
	if err != nil {
		return false, err
	}
	rec, err := deliveryItem(a, "", h.HeldAt)
	if err != nil {
		return false, err
	}
	rec["held"] = &types.AttributeValueMemberBOOL{Value: true}
	notThere := aws.String("attribute_not_exists(pk)")
	_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: item, ConditionExpression: notThere}},
		{Put: &types.Put{TableName: aws.String(table), Item: rec, ConditionExpression: notThere}},
	}})
	if err == nil {
		return true, nil
	}
	if conditionFailed(err) && !transientCancel(err) {
		return false, nil
	}
	return false, fmt.Errorf("hold copy %s: %w", h.CopyID, err)
}

// IsHeld reports whether copy copyID is still held under desk cp (a
// consistent GetItem).
func IsHeld(ctx context.Context, db GroupDB, table, cp, copyID string) (bool, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("sk"),
		Key: map[string]types.AttributeValue{"pk": strAV(contacts.Key(cp)), "sk": strAV(heldSortKey(copyID))},
	})
	if err != nil {
		return false, fmt.Errorf("read held copy %s: %w", copyID, err)
	}
	return out.Item != nil, nil
}

// FlushMessage is the body of a digest queue message: the desk and when
// its flush is due.
type FlushMessage struct {
	ContactPoint string    `json:"contact_point"`
	At           time.Time `json:"at"`
	// Early counts the times the message came before its schedule was
	// written (see flush).
	Early int `json:"early,omitempty"`
}

// Schedule makes sure desk cp has a flush due by the time its held copies
// ask for: at once (past the spacing gate) when critical, else GroupWait
// from now or GroupInterval after its last digest, whichever is later. A
// flush already scheduled at or before that time (and not stale) is kept.
// The message is sent before the schedule is written: a failure between
// the two leaves a message without schedule, which the flush ignores,
// never a schedule without message.
func (g *Grouping) Schedule(ctx context.Context, table, cp string, critical bool, wait time.Duration, now time.Time) error {
	db := g.DB
	cur, err := readGroup(ctx, db, table, cp)
	if err != nil {
		return err
	}
	at := now.Add(wait)
	if critical {
		at = now
		if open := fromMS(cur.LastSent).Add(MinSpacing); cur.LastSent > 0 && open.After(at) {
			at = open
		}
	}
	if next := fromMS(cur.NextAt); cur.NextAt > 0 && next.After(at) && !critical {
		at = next
	}
	if cur.Scheduled > 0 {
		s := fromMS(cur.Scheduled)
		if !s.After(at) && s.After(now.Add(-StaleSchedule)) {
			return nil
		}
	}
	if err := g.send(ctx, FlushMessage{ContactPoint: cp, At: at}, now); err != nil {
		return err
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(table),
		Key:                      groupKey(cp),
		UpdateExpression:         aws.String("SET scheduled_ms = :at, #type = :type, expires_at = :exp"),
		ConditionExpression:      aws.String("attribute_not_exists(scheduled_ms) OR scheduled_ms > :at OR scheduled_ms < :stale"),
		ExpressionAttributeNames: map[string]string{"#type": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at": num(ms(at)), ":stale": num(ms(now.Add(-StaleSchedule))),
			":type": strAV(TypeGroup), ":exp": num(now.Add(GroupItemTTL).Unix()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("schedule digest of %s: %w", cp, err)
	}
	return nil
}

// send queues flush m, delayed until it is due (at most MaxQueueDelay: a
// flush received early sends itself on).
func (g *Grouping) send(ctx context.Context, m FlushMessage, now time.Time) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	delay := m.At.Sub(now)
	// Rounded up: a message is never received before its flush is due.
	secs := int32(min(max((delay+time.Second-1)/time.Second, 0), MaxQueueDelay/time.Second))
	if _, err := g.SQS.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     aws.String(g.Queue),
		MessageBody:  aws.String(string(body)),
		DelaySeconds: secs,
	}); err != nil {
		return fmt.Errorf("queue digest of %s: %w", m.ContactPoint, err)
	}
	return nil
}
