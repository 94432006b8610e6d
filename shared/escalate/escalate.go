// Package escalate is the escalate function: on a schedule, it finds the
// cases whose deadline passed (shared/deadline) and reminds their desks,
// and after RemindersBeforeEscalation reminders without answer sends the
// case to the EU coordinator, naming the desks that did not answer.
//
// Each run reads the sparse index CasesDue with one Query per due shard
// (due_at <= now), never a Scan, so its cost follows the number of overdue
// cases and not the size of the table. For each case found it reads the
// case item (consistent GetItem), sends one message per recipient (alert
// ids <case>-reminder<k>-<desk> and <case>-escalation-<desk>, delivery
// records as the alert function writes them, so a repeated run never
// sends a desk the same reminder twice), then records the reminder (or the
// escalation) and its timeline event in one transaction conditional on the
// due_at it read: a desk that acted meanwhile wins, and the case is left
// alone.
package escalate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/silences"
)

// Actor is the timeline actor of reminders and escalations.
const Actor = "flagline-escalate"

// Timeline event types.
const (
	EventReminder   = "reminder"
	EventEscalation = "escalation"
)

// MaxPerRun is the most cases one run handles; the rest wait for the next
// run (a minute later by default), so a run stays well inside its timeout.
const MaxPerRun = 500

// DeadlineMargin is the time a run keeps in hand before the invocation's
// deadline: with less left it starts no other case, so that a timeout
// never falls between a publish and its delivery record.
const DeadlineMargin = 5 * time.Second

// Handler is the escalate function.
type Handler struct {
	// DB is the table's client: the index Query, the case GetItem, the
	// directory and delivery reads (GetItem, BatchGetItem), the delivery
	// records (PutItem) and the record of each reminder
	// (TransactWriteItems: UpdateItem and PutItem).
	DB  alert.DB
	SNS alert.Publisher
	// Table holds the cases and the directory; TopicARN is the alerts
	// topic.
	Table    string
	TopicARN string
	// Ack is each severity's acknowledgement deadline, Takedown the
	// deadline of a requested takedown: a reminder moves due_at on by the
	// same deadline.
	Ack      deadline.Ack
	Takedown time.Duration
	// Reminders is how many reminders precede the escalation
	// (RemindersBeforeEscalation, 0 escalates at once).
	Reminders int
	// DashboardURL and Links give the signed links of emails (none
	// without both), as for the alert function.
	DashboardURL string
	Links        linksign.Source
	// Silences lists the silences not yet caught up and marks their
	// digest sent; nil means a silences.Store on DB and Table.
	Silences Silences
	// Gate, when set, keeps alert.MinSpacing between two messages to one
	// contact point (alert.WaitGate): a run that reminds a desk of many
	// cases sends them a second apart, never in a burst.
	Gate alert.GroupDB
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
}

// Summary is what a run did.
type Summary struct {
	// Due is how many due cases the index listed (at most MaxPerRun).
	Due int `json:"due"`
	// Reminded and Escalated count the cases reminded and escalated.
	Reminded  int `json:"reminded"`
	Escalated int `json:"escalated"`
	// Published counts the messages published.
	Published int `json:"published"`
	// Skipped counts cases no longer due (acted on meanwhile).
	Skipped int `json:"skipped"`
	// Failed counts cases left for the next run by an error.
	Failed int `json:"failed"`
	// Digests counts the catch-up digests sent to desks whose silence
	// ended.
	Digests int `json:"digests"`
}

// Silences is what a run needs of shared/silences.
type Silences interface {
	Pending(ctx context.Context) ([]silences.Silence, error)
	MarkCaughtUp(ctx context.Context, sil silences.Silence) error
}

var _ Silences = (*silences.Store)(nil)

// Handle runs once for a scheduled event (EventBridge "Scheduled Event").
// An error fails the invocation (the Errors alarm); every case that could
// be handled was, and the next run retries the rest.
func (h *Handler) Handle(ctx context.Context, ev events.EventBridgeEvent) (Summary, error) {
	h.log().DebugContext(ctx, "scheduled run", "event_id", ev.ID, "time", ev.Time)
	return h.Run(ctx)
}

// Run handles the cases due now: at most MaxPerRun, oldest due first per
// shard.
func (h *Handler) Run(ctx context.Context) (Summary, error) {
	now := h.now().UTC()
	var s Summary
	due, err := h.due(ctx, now)
	s.Due = len(due)
	if err != nil {
		h.log().ErrorContext(ctx, "read due cases", "error", err)
		return s, err
	}
	inv := &invocation{}
	var errs []error
	if err := h.catchUp(ctx, inv, now, &s); err != nil {
		h.log().ErrorContext(ctx, "catch-up digests failed: retried next run", "error", err)
		errs = append(errs, err)
	}
	for _, id := range due {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < DeadlineMargin {
			h.log().WarnContext(ctx, "invocation deadline near: the rest waits for the next run", "left", len(due)-s.Reminded-s.Escalated-s.Skipped-s.Failed)
			break
		}
		log := h.log().With("case_id", id)
		if err := h.handleCase(ctx, inv, log, id, now, &s); err != nil {
			s.Failed++
			log.ErrorContext(ctx, "overdue case failed: retried next run", "error", err)
			errs = append(errs, err)
		}
	}
	if len(due) > 0 {
		h.log().InfoContext(ctx, "run done", "due", s.Due, "reminded", s.Reminded, "escalated", s.Escalated,
			"published", s.Published, "skipped", s.Skipped, "failed", s.Failed)
	}
	return s, errors.Join(errs...)
}

// due lists the ids of the cases due at now: one Query per shard of the
// sparse index CasesDue, due_shard = :s AND due_at <= :now (every page),
// at most MaxPerRun in all. The index is KEYS_ONLY: the case is read from
// the table, since an index read is eventually consistent
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html).
func (h *Handler) due(ctx context.Context, now time.Time) ([]string, error) {
	var ids []string
	for shard := range deadline.Shards {
		in := &dynamodb.QueryInput{
			TableName:              aws.String(h.Table),
			IndexName:              aws.String(deadline.IndexName),
			KeyConditionExpression: aws.String("#s = :s AND #d <= :now"),
			ExpressionAttributeNames: map[string]string{
				"#s": deadline.AttrDueShard, "#d": deadline.AttrDueAt,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":s":   &types.AttributeValueMemberS{Value: deadline.ShardKey(shard)},
				":now": &types.AttributeValueMemberS{Value: deadline.Format(now)},
			},
		}
		for len(ids) < MaxPerRun {
			in.Limit = aws.Int32(int32(MaxPerRun - len(ids)))
			page, err := h.DB.Query(ctx, in)
			if err != nil {
				return ids, fmt.Errorf("query %s shard %d: %w", deadline.IndexName, shard, err)
			}
			for _, item := range page.Items {
				if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok && len(pk.Value) > len(casestore.Key("")) {
					ids = append(ids, pk.Value[len(casestore.Key("")):])
				}
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
		if len(ids) >= MaxPerRun {
			break
		}
	}
	return ids, nil
}

// invocation holds what a run reads at most once: the directory and the
// link key.
type invocation struct {
	alert.Lookups

	key      linksign.Key
	keyTried bool
}

// dueCase is a case item as the run reads it: the case, and due_at as
// stored (the condition of the record compares it as written).
type dueCase struct {
	casestore.Case
	seen string
}

// handleCase reminds or escalates one case found due.
func (h *Handler) handleCase(ctx context.Context, inv *invocation, log *slog.Logger, id string, now time.Time, s *Summary) error {
	c, ok, err := h.read(ctx, id)
	if err != nil {
		return err
	}
	if !ok || c.seen == "" || c.DueKind == "" || c.DueAt.After(now) {
		// Acted on since the index listed it, or moved on by a run that
		// overlapped this one.
		s.Skipped++
		return nil
	}
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	a := alert.Alert{Level: c.Level, Case: c.Case, Severity: c.Severity}
	if a.Severity == "" {
		a.Severity = casestore.Rules{Thresholds: casestore.DefaultThresholds}.Severity(&a.Case)
	}
	a.Countries = alert.Route(&a)
	routed := h.awaited(dir, &c.Case, a.Countries)
	step := h.deadlineOf(&c.Case, a.Severity)
	o := alert.Overdue{Awaited: c.DueKind, For: time.Duration(c.Reminders+1) * step, Reminders: h.Reminders}

	var recipients []contacts.ContactPoint
	if c.Reminders < h.Reminders {
		a.Kind, o.Reminder = alert.KindReminder, c.Reminders+1
		a.ID = alert.ReminderAlertID(c.ID, o.Reminder, c.DueAt)
		recipients = routed
	} else {
		a.Kind = alert.KindEscalation
		a.ID = alert.EscalationAlertID(c.ID, c.DueAt)
		recipients = alert.Recipients(dir, []string{alert.EU})
		o.Unanswered = unanswered(routed, a.Countries)
		if len(recipients) == 0 {
			return fmt.Errorf("case %s: no EU coordinator in the directory to escalate to", c.ID)
		}
	}
	log = log.With("alert_id", a.ID, "kind", a.Kind)
	a.Recipients = ids(recipients)
	a.LeadCountries = countriesOf(dir, c.Lead)
	if len(recipients) == 0 {
		log.WarnContext(ctx, "reminder has no recipient: no contact point answers for its countries", "countries", a.Countries)
	}
	if err := h.deliver(ctx, inv, log, &a, o, s); err != nil {
		return err
	}
	recorded, err := h.record(ctx, &a, c, now, step)
	if err != nil {
		return err
	}
	switch {
	case !recorded:
		log.InfoContext(ctx, "case acted on meanwhile: reminder not recorded")
		s.Skipped++
	case a.Kind == alert.KindReminder:
		s.Reminded++
	default:
		s.Escalated++
	}
	return nil
}

// awaited are the desks whose answer is awaited: for an acknowledgement
// the routed desks (as the alert function picks them); for a takedown the
// lead, else the routed desks.
func (h *Handler) awaited(dir []contacts.ContactPoint, c *casestore.Case, routed []string) []contacts.ContactPoint {
	if c.DueKind == deadline.KindTakedown {
		return alert.ReopenRecipients(dir, c.Lead, routed)
	}
	return alert.Recipients(dir, routed)
}

// unanswered names the desks an escalation reports: the awaited desks
// other than the coordinators themselves, or the countries nobody
// answered for.
func unanswered(awaited []contacts.ContactPoint, countries []string) []string {
	var out []string
	for _, cp := range awaited {
		if !slices.Contains(cp.Countries, alert.EU) {
			out = append(out, cp.ID)
		}
	}
	if len(out) == 0 {
		for _, c := range countries {
			if c != alert.EU {
				out = append(out, "the desks of "+c)
			}
		}
	}
	return out
}

// deadlineOf is the deadline a reminder moves due_at on by.
func (h *Handler) deadlineOf(c *casestore.Case, sev casestore.Severity) time.Duration {
	if c.DueKind == deadline.KindTakedown {
		return h.Takedown
	}
	return h.Ack.For(sev)
}

// deliver publishes a copy of a to each recipient without a delivery
// record and records its delivery. A failed publish does not stop the
// others; the errors are returned together, and the reminder is not
// recorded, so the next run sends what is missing.
func (h *Handler) deliver(ctx context.Context, inv *invocation, log *slog.Logger, a *alert.Alert, o alert.Overdue, s *Summary) error {
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	silenced, err := h.silenced(ctx, inv)
	if err != nil {
		return err
	}
	var recipients []contacts.ContactPoint
	for _, id := range a.Recipients {
		if i := slices.IndexFunc(dir, func(cp contacts.ContactPoint) bool { return cp.ID == id }); i >= 0 {
			recipients = append(recipients, dir[i])
		}
	}
	copies := alert.Reroute(dir, recipients, silenced, h.now())
	keys := make([]string, len(copies))
	for i, r := range copies {
		keys[i] = alert.CopyKey(r)
	}
	delivered, err := alert.DeliveredTo(ctx, h.DB, h.Table, a, keys)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range copies {
		if delivered[alert.CopyKey(r)] {
			log.DebugContext(ctx, "already delivered", "contact_point", r.To, "silenced_for", r.For)
			continue
		}
		c := *a
		c.Recipient, c.SilencedFor = r.To, r.For
		if r.For != "" {
			// Recorded before the publish: the desk's digest lists the
			// case even if this copy never gets through.
			if err := alert.RecordMissed(ctx, h.DB, h.Table, &c, r, h.now()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		c.Links = h.links(ctx, inv, log, &c)
		if err := h.publish(ctx, log, &c, o); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Published++
	}
	return errors.Join(errs...)
}

func (h *Handler) publish(ctx context.Context, log *slog.Logger, a *alert.Alert, o alert.Overdue) error {
	msg, err := alert.RenderOverdue(a, o)
	if err != nil {
		return err
	}
	in, err := alert.PublishInput(h.TopicARN, a, msg)
	if err != nil {
		return err
	}
	out, err := h.publishTo(ctx, a.Recipient, in)
	if err != nil {
		return fmt.Errorf("publish %s: %w", a.RecipientID(), err)
	}
	log.InfoContext(ctx, "published", "contact_point", a.Recipient, "silenced_for", a.SilencedFor, "severity", a.Severity, "links", len(a.Links),
		"message_id", aws.ToString(out.MessageId))
	return alert.RecordDelivery(ctx, h.DB, h.Table, a, aws.ToString(out.MessageId), h.now())
}

// record writes the reminder (reminders = k, due_at moved on by step) or
// the escalation (the due attributes removed, escalated_at set) and its
// timeline event, in one transaction conditional on the due_at the run
// read. recorded is false when that condition failed: someone acted.
func (h *Handler) record(ctx context.Context, a *alert.Alert, c dueCase, now time.Time, step time.Duration) (recorded bool, err error) {
	values := map[string]types.AttributeValue{":seen": &types.AttributeValueMemberS{Value: c.seen}}
	names := map[string]string{"#d": deadline.AttrDueAt}
	var update string
	ev := casestore.Event{
		CaseID: c.ID, At: now, Actor: Actor, AlertID: a.ID, Kind: string(a.Kind), Level: a.Level,
		Recipients: a.Recipients, Countries: a.Countries,
	}
	if a.Kind == alert.KindReminder {
		k := c.Reminders + 1
		ev.Type = EventReminder
		ev.Note = fmt.Sprintf("reminder %d of %d: %s due at %s", k, h.Reminders, c.DueKind, c.DueAt.UTC().Format(time.RFC3339))
		update = "SET #r = :k, #d = :next"
		names["#r"] = deadline.AttrReminders
		values[":k"] = &types.AttributeValueMemberN{Value: strconv.Itoa(k)}
		values[":next"] = &types.AttributeValueMemberS{Value: deadline.Format(now.Add(step))}
	} else {
		ev.Type = EventEscalation
		ev.Note = fmt.Sprintf("%s awaited since before %s; escalated to the EU coordinator", c.DueKind, c.DueAt.UTC().Format(time.RFC3339))
		update = "REMOVE #d, #sh, #k, #r SET escalated_at = :now"
		names["#sh"], names["#k"], names["#r"] = deadline.AttrDueShard, deadline.AttrDueKind, deadline.AttrReminders
		values[":now"] = &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)}
	}
	event, err := attributevalue.MarshalMap(ev)
	if err != nil {
		return false, fmt.Errorf("encode event of %s: %w", a.ID, err)
	}
	event["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
	event["sk"] = &types.AttributeValueMemberS{Value: casestore.EventSortKey(now, a.ID)}
	event["type"] = &types.AttributeValueMemberS{Value: casestore.TypeEvent}
	_, err = h.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                 aws.String(h.Table),
			Key:                       caseKey(c.ID),
			UpdateExpression:          aws.String(update),
			ConditionExpression:       aws.String("#d = :seen"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}},
		{Put: &types.Put{
			TableName:           aws.String(h.Table),
			Item:                event,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
	}})
	if err == nil {
		return true, nil
	}
	// A cancellation reason ConditionalCheckFailed: the case moved on
	// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && slices.ContainsFunc(tce.CancellationReasons, func(r types.CancellationReason) bool {
		return aws.ToString(r.Code) == "ConditionalCheckFailed"
	}) {
		return false, nil
	}
	return false, fmt.Errorf("record %s: %w", a.ID, err)
}

// read reads the case consistently; ok is false when it is gone.
func (h *Handler) read(ctx context.Context, id string) (dueCase, bool, error) {
	out, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(h.Table),
		Key:            caseKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return dueCase{}, false, fmt.Errorf("read case %s: %w", id, err)
	}
	if out.Item == nil {
		return dueCase{}, false, nil
	}
	var c dueCase
	if err := attributevalue.UnmarshalMap(out.Item, &c.Case); err != nil {
		return dueCase{}, false, fmt.Errorf("decode case %s: %w", id, err)
	}
	if v, ok := out.Item[deadline.AttrDueAt].(*types.AttributeValueMemberS); ok {
		c.seen = v.Value
	}
	return c, true, nil
}

// directory reads the stored contact directory, once per run.
func (h *Handler) directory(ctx context.Context, inv *invocation) ([]contacts.ContactPoint, error) {
	return inv.Directory(ctx, h.DB, h.Table)
}

// silenced reads the silences not yet caught up, once per run.
func (h *Handler) silenced(ctx context.Context, inv *invocation) ([]silences.Silence, error) {
	return inv.Silenced(ctx, h.silences())
}

func (h *Handler) silences() Silences {
	if h.Silences != nil {
		return h.Silences
	}
	return &silences.Store{DB: h.DB, Table: h.Table, Now: h.Now}
}

// links are the signed links of copy a, or none (no dashboard URL, no
// key, or a key that cannot be had: said once per run).
func (h *Handler) links(ctx context.Context, inv *invocation, log *slog.Logger, a *alert.Alert) []alert.Link {
	if h.DashboardURL == "" {
		return nil
	}
	if !inv.keyTried {
		inv.keyTried = true
		if h.Links == nil {
			log.WarnContext(ctx, "reminders go without signed links: no link key configured")
		} else if k, err := h.Links.LinkKey(ctx); err != nil {
			log.WarnContext(ctx, "reminders go without signed links: link key unavailable", "error", err)
		} else {
			inv.key = k
		}
	}
	return alert.SignedLinks(inv.key, h.DashboardURL, a.Case.ID, a.Recipient, h.now())
}

func ids(cps []contacts.ContactPoint) []string {
	out := make([]string, len(cps))
	for i, cp := range cps {
		out[i] = cp.ID
	}
	return out
}

func countriesOf(dir []contacts.ContactPoint, id string) []string {
	for _, cp := range dir {
		if cp.ID == id {
			return cp.Countries
		}
	}
	return nil
}

func caseKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
		"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}
}

// publishTo publishes in to contact point cp in its next message slot
// (no Gate: at once).
func (h *Handler) publishTo(ctx context.Context, cp string, in *sns.PublishInput) (*sns.PublishOutput, error) {
	if h.Gate == nil {
		return h.SNS.Publish(ctx, in)
	}
	slot, err := alert.WaitGate(ctx, h.Gate, h.Table, cp, h.now)
	if err != nil {
		return nil, err
	}
	return slot.Publish(ctx, h.SNS, in, h.now)
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
