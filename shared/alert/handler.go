package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/awserr"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/outcome"
	"github.com/flagline/flagline/shared/silences"
)

// Handler is the alert function: it reads the table's stream
// (NEW_AND_OLD_IMAGES) and, for every case image, projects the case
// listing, reopens a case reported again after removal, and sends the
// case's alerts to each contact point concerned.
type Handler struct {
	SNS Publisher
	DB  DB
	// Table holds the case items and the directory; TopicARN is the
	// alerts topic.
	Table    string
	TopicARN string
	// DashboardURL is the base of the signed links in emails; empty for
	// none.
	DashboardURL string
	// Links gives the key that signs them; nil sends no links. A key that
	// cannot be had sends the alert without links (logged once per
	// invocation): an alert is never held up by the link key.
	Links linksign.Source
	// Reopener reopens a removed or closed case reported again.
	Reopener Reopener
	// Project writes the case listing of a case image; nil means
	// caseindex.Project into Table.
	Project func(ctx context.Context, c *casestore.Case) error
	// Rules name the report-count thresholds the reasons refer to; no
	// thresholds means casestore.DefaultThresholds. Use the aggregator's.
	Rules casestore.Rules
	// Ack is how long the desks of an open case have to acknowledge it,
	// per severity: recording a level alert starts that clock (nil means
	// deadline.DefaultAck).
	Ack deadline.Ack
	// Silences lists the silenced desks, whose copies go to the EU
	// coordinator (Reroute); nil means a silences.Store on DB and Table.
	Silences Silences
	// Grouping holds non-critical copies per contact point and sends them
	// as one digest (group.go); nil, or no queue, sends every copy at
	// once.
	Grouping *Grouping
	// Outcome sends the outcome webhooks of a case whose status became
	// removed, not_removed, false_positive or closed to its reporting
	// sources (shared/outcome); nil sends none.
	Outcome *outcome.Handler
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
	// Metrics receives one CloudWatch Embedded Metric Format line per
	// invocation (os.Stdout in Lambda); nil writes none.
	Metrics io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// invocation is what one Handle reads at most once: the directory and the
// link key.
type invocation struct {
	m *invocationMetrics

	Lookups

	key      linksign.Key
	keyTried bool
}

// DeadlineMargin is the time Handle keeps in hand before the invocation's
// deadline: with less left it starts no record and no publish, so that a
// timeout never falls between a publish and its delivery record (which
// would send that desk's copy again on the retry).
const DeadlineMargin = 5 * time.Second

// ErrDeadline fails the record Handle was at when the invocation's
// deadline came within DeadlineMargin; the retry takes it from there.
var ErrDeadline = errors.New("invocation deadline near: record left for the retry")

// Handle handles a batch of stream records, in order.
//
// Lambda retries a stream batch from its first failed record, so at the
// first record that fails, Handle stops sending and reports that record's
// sequence number as the only batch item failure; the records after it are
// left for the retry. It still projects their case listings (best effort:
// an error is logged and changes nothing), so the listing does not wait
// for the retry, nor miss them when the retries run out. Permanent failures
// (a refused publish, an undecodable record) are reported the same way
// rather than dropped: the event source's finite MaximumRetryAttempts then
// hands the batch to its on-failure destination, so nothing is lost
// silently and the shard is not blocked for ever. When the invocation's
// deadline comes within DeadlineMargin, the record at hand fails with
// ErrDeadline and nothing more is done.
// Retrying a record is safe: the listing is a plain overwrite; before
// publishing, a consistent read of the case's alerted_level skips an alert
// already recorded (also the stale images a busy case writes before its
// alert is recorded), and a consistent read of the alert's delivery records
// skips the recipients that already have it; a copy published but not
// recorded is sent again with the same alert id.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	var m invocationMetrics
	inv := &invocation{m: &m}
	for i, rec := range ev.Records {
		err := h.process(ctx, inv, rec)
		if err == nil {
			continue
		}
		m.failures++
		resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: rec.Change.SequenceNumber}}
		if !errors.Is(err, ErrDeadline) {
			h.projectRest(ctx, ev.Records[i+1:])
		}
		break
	}
	if h.Metrics != nil {
		if err := m.write(h.Metrics, h.now()); err != nil {
			h.log().WarnContext(ctx, "write metrics", "error", err)
		}
	}
	return resp, nil
}

// projectRest projects the case images of records left for the retry,
// while the deadline allows. Errors are logged only: the batch item
// failure is already set, and the retry projects them again.
func (h *Handler) projectRest(ctx context.Context, recs []events.DynamoDBEventRecord) {
	for _, rec := range recs {
		if nearDeadline(ctx) {
			return
		}
		log := h.log().With("event_id", rec.EventID, "sequence_number", rec.Change.SequenceNumber)
		cur, old, ok, err := decodeCase(rec)
		if err != nil || !ok {
			continue
		}
		if err := h.project(ctx, old, &cur); err != nil {
			log.WarnContext(ctx, "project case left for the retry", "case_id", cur.ID, "error", err)
		}
	}
}

// nearDeadline reports whether ctx's deadline is less than DeadlineMargin
// away. Lambda's context carries the invocation's deadline
// (https://docs.aws.amazon.com/lambda/latest/dg/golang-context.html); a
// context without one is never near it.
func nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < DeadlineMargin
}

// process takes one record through its steps: the listing, the reopening,
// a reopened alert, and the alert of the case's level. It logs its own
// outcome.
func (h *Handler) process(ctx context.Context, inv *invocation, rec events.DynamoDBEventRecord) (err error) {
	log := h.log().With("event_id", rec.EventID, "sequence_number", rec.Change.SequenceNumber)
	if nearDeadline(ctx) {
		h.fail(ctx, log, ErrDeadline)
		return ErrDeadline
	}
	cur, old, ok, err := decodeCase(rec)
	if err != nil {
		h.fail(ctx, log.With("case_id", imageString(rec.Change.NewImage, "case_id")), err)
		return err
	}
	if !ok {
		return nil
	}
	log = log.With("case_id", cur.ID)
	defer func() {
		if err != nil {
			h.fail(ctx, log, err)
		}
	}()

	if err := h.project(ctx, old, &cur); err != nil {
		return fmt.Errorf("project case %s: %w", cur.ID, err)
	}
	// The alerts the change asks for: the reopening, the case's
	// protection, then its level. A closure, so that the failure log (the deferred h.fail)
	// names the alert it was at.
	alertErr := func() error {
		if ShouldReopen(&cur) {
			if h.Reopener == nil {
				return fmt.Errorf("case %s asks to be reopened: no reopener", cur.ID)
			}
			reopened, err := h.Reopener.Reopen(ctx, &cur)
			if err != nil {
				return fmt.Errorf("reopen case %s: %w", cur.ID, err)
			}
			log.InfoContext(ctx, "case reopened", "reopened", reopened, "status", cur.Status)
		}
		if a, ok := DecideReopened(old, &cur, h.rules()); ok {
			if err := h.sendReopened(ctx, inv, log.With("alert_id", a.ID), &a); err != nil {
				return err
			}
		}
		// Before the level's: a case not alerted yet is told it is
		// protected by its first alert, not by a second one.
		if a, ok := DecideProtected(old, &cur, h.rules()); ok {
			if err := h.sendProtected(ctx, inv, log.With("alert_id", a.ID), &a); err != nil {
				return err
			}
		}
		if a, ok := decideLevel(cur, old, h.rules()); ok {
			log = log.With("alert_id", a.ID, "level", a.Level)
			if err := h.sendLevel(ctx, inv, log, &a); err != nil {
				return err
			}
		}
		return nil
	}()
	if errors.Is(alertErr, ErrDeadline) || h.Outcome == nil {
		return alertErr
	}
	// The outcome webhooks go out whatever became of the alerts: an
	// outcome queue that cannot be reached holds up no alert of this case,
	// and an alert that keeps failing (until the record is discarded to
	// AlertFailures, which replays no outcome) holds up no outcome. Either
	// error fails the record; the retry repeats neither what was alerted
	// nor what was queued (the fan-out and delivery records stop repeats).
	return errors.Join(alertErr, h.Outcome.Notify(ctx, old, &cur, rec.Change.ApproximateCreationDateTime.Time))
}

// sendLevel sends the alert of the case's level to every recipient that
// does not have it yet, then records alerted_level and the event.
func (h *Handler) sendLevel(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert) error {
	alerted, found, err := AlertedLevel(ctx, h.DB, h.Table, a.Case.ID)
	if err != nil {
		return err
	}
	if found && alerted >= a.Level {
		log.DebugContext(ctx, "alert already sent", "alerted_level", alerted)
		return nil
	}
	a.Alerted(alerted, h.rules())
	a.Countries = Route(a)
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	recipients := Recipients(dir, a.Countries)
	if err := h.deliver(ctx, inv, log, a, dir, recipients); err != nil {
		return err
	}
	recorded, err := Record(ctx, h.DB, h.Table, a, h.now(), h.Ack)
	if err != nil {
		return err
	}
	if !recorded {
		log.InfoContext(ctx, "alert already recorded")
	}
	return nil
}

// sendReopened sends a reopened alert to the case's lead, or its desks, and
// records its event; alerted_level is left alone.
func (h *Handler) sendReopened(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert) error {
	alerted, found, err := AlertedReopenCount(ctx, h.DB, h.Table, a.Case.ID)
	if err != nil {
		return err
	}
	if found && alerted >= a.Case.ReopenCount {
		log.DebugContext(ctx, "alert already sent", "alerted_reopen_count", alerted)
		return nil
	}
	a.Countries = Route(a)
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	recipients := ReopenRecipients(dir, a.Case.Lead, a.Countries)
	if err := h.deliver(ctx, inv, log, a, dir, recipients); err != nil {
		return err
	}
	recorded, err := RecordReopened(ctx, h.DB, h.Table, a, h.now())
	if err != nil {
		return err
	}
	if !recorded {
		log.InfoContext(ctx, "alert already recorded")
	}
	return nil
}

// deliver publishes a copy of a to each recipient without a delivery
// record and records its delivery. A recipient whose publish fails does not
// stop the others; the errors are returned together, so the record is
// retried and the retry sends only what is missing. No recipient at all is
// logged, not an error: nobody answers for those countries.
func (h *Handler) deliver(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert, dir []contacts.ContactPoint, recipients []contacts.ContactPoint) error {
	a.Recipients = ids(recipients)
	a.LeadCountries = countriesOf(dir, a.Case.Lead)
	if len(recipients) == 0 {
		log.WarnContext(ctx, "alert has no recipient: no contact point answers for its countries",
			"countries", a.Countries, "directory_size", len(dir))
		return nil
	}
	delivered, err := DeliveredCopies(ctx, h.DB, h.Table, a)
	if err != nil {
		return err
	}
	silenced, err := h.silenced(ctx, inv)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range Reroute(dir, recipients, silenced, h.now()) {
		if d, ok := delivered[CopyKey(r)]; ok {
			log.DebugContext(ctx, "alert already delivered", "contact_point", r.To, "silenced_for", r.For, "held", d.Held)
			if d.Held {
				// Held by an earlier try, which may have stopped before
				// scheduling the desk's flush; once flushed, nothing to do.
				c := *a
				c.Recipient, c.SilencedFor = r.To, r.For
				if err := h.rescheduleHeld(ctx, inv, &c); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		if nearDeadline(ctx) {
			// The copies published so far have their delivery records;
			// the retry sends the rest.
			return errors.Join(append(errs, ErrDeadline)...)
		}
		c := *a
		c.Recipient, c.SilencedFor = r.To, r.For
		if r.For != "" {
			// Recorded before the publish: the desk's digest lists the
			// case even if this copy never gets through.
			if err := RecordMissed(ctx, h.DB, h.Table, &c, r, h.now()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		c.Links = h.links(ctx, inv, log, &c)
		if err := h.send(ctx, inv, log, &c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// send publishes copy a at once, or holds it for its desk's next digest
// (see group.go): a critical copy goes at once when the desk's spacing
// gate is open, any other is held.
func (h *Handler) send(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert) error {
	g := h.Grouping
	if !g.Enabled() {
		return h.publish(ctx, inv, log, a, nil)
	}
	now := h.now()
	if a.Critical() {
		slot, _, err := TakeGate(ctx, g.DB, h.Table, a.Recipient, now)
		if err != nil {
			return err
		}
		if slot != nil {
			return h.publish(ctx, inv, log, a, slot)
		}
	}
	msg, err := Render(a)
	if err != nil {
		return err
	}
	in, err := PublishInput(h.TopicARN, a, msg)
	if err != nil {
		return err
	}
	held := NewHeld(a, Store(in), now)
	ok, err := Hold(ctx, h.DB, h.Table, a, &held)
	if err != nil {
		return err
	}
	inv.m.held++
	log.InfoContext(ctx, "alert held for the next digest", "contact_point", a.Recipient, "silenced_for", a.SilencedFor,
		"kind", a.Kind, "severity", a.Severity, "critical", a.Critical(), "new", ok)
	return h.schedule(ctx, inv, a, a.Recipient)
}

// rescheduleHeld schedules the flush of copy a's desk if a is still held
// (one consistent GetItem): a repeated stream record whose copy was held
// and flushed long ago schedules nothing.
func (h *Handler) rescheduleHeld(ctx context.Context, inv *invocation, a *Alert) error {
	g := h.Grouping
	if !g.Enabled() {
		return nil
	}
	held, err := IsHeld(ctx, g.DB, h.Table, a.Recipient, a.RecipientID())
	if err != nil || !held {
		return err
	}
	return h.schedule(ctx, inv, a, a.Recipient)
}

// schedule makes sure desk cp's flush is scheduled for held copy a.
func (h *Handler) schedule(ctx context.Context, inv *invocation, a *Alert, cp string) error {
	g := h.Grouping
	if !g.Enabled() {
		return nil
	}
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	wait, _ := g.Settings(dir, cp)
	return g.Schedule(ctx, h.Table, cp, a.Critical(), wait, h.now())
}

// publish renders, publishes and records the delivery of one recipient's
// copy, in the desk's message slot when one was taken.
func (h *Handler) publish(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert, slot *Slot) error {
	msg, err := Render(a)
	if err != nil {
		return err
	}
	in, err := PublishInput(h.TopicARN, a, msg)
	if err != nil {
		return err
	}
	var out *sns.PublishOutput
	if slot != nil {
		out, err = slot.Publish(ctx, h.SNS, in, h.now)
	} else {
		out, err = h.SNS.Publish(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.RecipientID(), err)
	}
	inv.m.published++
	log.InfoContext(ctx, "alert published",
		"contact_point", a.Recipient, "silenced_for", a.SilencedFor, "kind", a.Kind, "severity", a.Severity, "countries", a.Countries,
		"category", a.PrimaryCategory(), "links", len(a.Links), "message_id", aws.ToString(out.MessageId))
	return RecordDelivery(ctx, h.DB, h.Table, a, aws.ToString(out.MessageId), h.now())
}

// directory reads the stored contact directory, once per invocation.
func (h *Handler) directory(ctx context.Context, inv *invocation) ([]contacts.ContactPoint, error) {
	return inv.Directory(ctx, h.DB, h.Table)
}

// silenced reads the silences not yet caught up, once per invocation.
func (h *Handler) silenced(ctx context.Context, inv *invocation) ([]silences.Silence, error) {
	var src Silences = h.Silences
	if src == nil {
		src = &silences.Store{DB: h.DB, Table: h.Table, Now: h.Now}
	}
	return inv.Silenced(ctx, src)
}

// links are the signed links of copy a, or none: without a dashboard URL,
// or when the key cannot be had (said once per invocation).
func (h *Handler) links(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert) []Link {
	if h.DashboardURL == "" {
		return nil
	}
	if !inv.keyTried {
		inv.keyTried = true
		if h.Links == nil {
			log.WarnContext(ctx, "alerts go without signed links: no link key configured")
		} else if k, err := h.Links.LinkKey(ctx); err != nil {
			log.WarnContext(ctx, "alerts go without signed links: link key unavailable", "error", err)
		} else {
			inv.key = k
		}
	}
	return SignedLinks(inv.key, h.DashboardURL, a.Case.ID, a.Recipient, h.now())
}

// project writes the listing of case image c, unless the change from old
// shows nothing new on a list (the alert function's own writes): each
// write is a stream record that every reader of the stream reads.
func (h *Handler) project(ctx context.Context, old, c *casestore.Case) error {
	if caseindex.Unchanged(old, c) {
		return nil
	}
	if h.Project != nil {
		return h.Project(ctx, c)
	}
	return caseindex.Project(ctx, h.DB, h.Table, c)
}

// fail logs a failed record. Never the message or the explanations: only
// ids, the error and whether a retry can help.
func (h *Handler) fail(ctx context.Context, log *slog.Logger, err error) {
	log.ErrorContext(ctx, "alert failed", "retryable", Retryable(err), "error", err)
}

// Retryable reports whether err may pass on a retry: throttling, server
// faults, timeouts, a transaction conflict, the invocation's deadline.
func Retryable(err error) bool {
	return awserr.Retryable(err) || transientCancel(err) || errors.Is(err, ErrDeadline)
}

// imageString is a string attribute of an image, or "".
func imageString(img map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

func (h *Handler) rules() casestore.Rules {
	if len(h.Rules.Thresholds) == 0 {
		return casestore.Rules{Thresholds: casestore.DefaultThresholds}
	}
	return h.Rules
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
