package outcome

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// DB is the part of the DynamoDB client the handler uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Queue is the part of the SQS client the handler uses.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// Retry settings.
const (
	// DefaultRetryBase is the first retry's delay (OUTCOME_RETRY_BASE);
	// each retry doubles it, up to MaxRetryDelay, with equal jitter.
	DefaultRetryBase = 30 * time.Second
	MaxRetryDelay    = time.Hour
	// maxVisibility is the longest visibility timeout SQS sets: 12 hours
	// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
	maxVisibility = 12 * time.Hour
	// RecordTTL expires a delivery record well after any message about its
	// change can come (the queue keeps messages 4 days).
	RecordTTL = 14 * 24 * time.Hour
	// ClaimLease is how long a delivery's claim keeps another copy of its
	// message from posting: the POST's whole timeout and a margin for the
	// writes around it. A copy that finds the claim held comes back when
	// it ends; a claim left by a crash lapses with it.
	ClaimLease = PostTimeout + 20*time.Second
	// maxBatchBytes is the most SendMessageBatch takes in one call, all
	// its messages' bodies together: 256 KiB (queues may be set to take
	// more, up to 1 MiB, but never less is safe whatever the queue's
	// MaximumMessageSize):
	// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
	maxBatchBytes = 256 << 10
	// maxBatchEntries: "up to 10 messages" (same page).
	maxBatchEntries = 10
)

// Items of an outcome, under pk CASE#<case id>: the delivery to one
// source, sk OUTCOME#<change time>#<status>#<source> (a claim while
// lease_until is set; delivered once delivered_at is), and the change's
// fan-out, sk OUTCOME#<change time>#<status> (its delivery messages are
// queued). The change time is the case's status_at, fixed width, so a
// case that reaches the same status again (after a desk's reopening) has
// new items.
const (
	SortPrefix   = "OUTCOME#"
	TypeDelivery = "outcome_delivery"
	TypeFanOut   = "outcome_fanout"
)

// Handler sends the outcome webhooks.
type Handler struct {
	DB    DB
	Table string
	SQS   Queue
	// QueueURL is the outcome queue; FailuresURL the on-failure queue.
	QueueURL string
	// QueueARN is the outcome queue's ARN: the alert function hands a
	// batch whose records come from it (eventSourceARN) to Handle.
	QueueARN    string
	FailuresURL string
	Endpoints   Endpoints
	Secrets     webhook.Store
	Policy      Policy
	// HTTP posts the webhooks; nil means Policy.Client().
	HTTP *http.Client
	// RetryBase is the first retry's delay; zero means DefaultRetryBase.
	RetryBase time.Duration
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a duration in [0, d); nil means random.
	Jitter func(d time.Duration) time.Duration

	clientOnce sync.Once
	client     *http.Client
}

// Notify sends the change message of a case image whose status changed
// into one of Statuses; any other image sends nothing. changed is the
// stream record's ApproximateCreationDateTime (zero: now). An error fails
// the stream record, whose retry sends the message again (the deliveries'
// records keep a repeat from posting twice).
func (h *Handler) Notify(ctx context.Context, old, cur *casestore.Case, changed time.Time) error {
	if changed.IsZero() {
		changed = h.now()
	}
	m, ok := Detect(old, cur, changed)
	if !ok {
		return nil
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := h.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.QueueURL), MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("queue outcome of case %s (%s): %w", m.CaseID, m.Status, err)
	}
	h.log().InfoContext(ctx, "case outcome queued", "case_id", m.CaseID, "status", m.Status, "reopen_count", m.ReopenCount)
	return nil
}

// Handle handles a batch of the outcome queue. Each message is handled on
// its own, at the same time, so a slow endpoint holds up no other. A
// message to be retried has its visibility timeout set to the backoff and
// is reported in batchItemFailures; the rest are deleted by Lambda.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i := range ev.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[i] = !h.handle(ctx, &ev.Records[i])
		}()
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// handle reports whether rec is done with (delivered, parked or not to be
// sent).
func (h *Handler) handle(ctx context.Context, rec *events.SQSMessage) bool {
	log := h.log().With("message_id", rec.MessageId)
	m, err := ParseMessage(rec.Body)
	if err != nil {
		log.ErrorContext(ctx, "outcome message cannot be read", "error", err)
		return h.park(ctx, log, rec.Body, nil, err, 0)
	}
	log = log.With("case_id", m.CaseID, "status", m.Status, "at", m.At)
	if m.Kind == KindChange {
		if err := h.fanOut(ctx, &m); err != nil {
			log.ErrorContext(ctx, "outcome fan-out failed", "error", err)
			return h.retry(ctx, log, rec, &m, err)
		}
		return true
	}
	log = log.With("source", m.Source, "webhook_id", m.WebhookID())
	status, err := h.deliver(ctx, &m)
	var held *heldError
	switch {
	case err == nil:
		return true
	case errors.As(err, &held):
		// Another copy is posting: back when its claim ends, to find it
		// delivered (done) or lapsed (post). Not a try of this delivery.
		log.InfoContext(ctx, "outcome delivery claimed by another copy; back after its lease", "lease_until", held.until)
		h.setVisibility(ctx, log, rec, held.until.Sub(h.now())+time.Second)
		return false
	case retryable(err):
		log.WarnContext(ctx, "outcome delivery failed; retried", "status_code", status, "error", err)
		return h.retry(ctx, log, rec, &m, err)
	default:
		log.ErrorContext(ctx, "outcome delivery refused; parked", "status_code", status, "error", err)
		return h.park(ctx, log, rec.Body, &m, err, status)
	}
}

// heldError: the delivery is claimed by another copy of its message until
// until.
type heldError struct{ until time.Time }

func (e *heldError) Error() string {
	return "delivery claimed by another copy until " + e.until.UTC().Format(time.RFC3339)
}

// Errors of a delivery.
var (
	// errRetry marks a failure worth another try (408, 429, 5xx, a timeout,
	// a connection error, secrets or endpoints that cannot be read).
	errRetry = errors.New("retryable")
)

func retryable(err error) bool { return errors.Is(err, errRetry) }

// fanOut sends one delivery message per source of the case that has an
// endpoint, with that source's own report ids, then records the change as
// fanned out, so a repeated change message (a stream record retried, SQS's
// at-least-once delivery) queues nothing more. Two copies handled at the
// same moment may both queue; the deliveries' claims keep that to one
// POST per source.
func (h *Handler) fanOut(ctx context.Context, m *Message) error {
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(m.CaseID)},
		"sk": &types.AttributeValueMemberS{Value: fanOutKey(m)},
	}
	got, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Table), Key: key, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")})
	if err != nil {
		return fmt.Errorf("read fan-out record of case %s: %w", m.CaseID, err)
	}
	if len(got.Item) > 0 {
		h.log().InfoContext(ctx, "case outcome already fanned out", "case_id", m.CaseID, "status", m.Status, "at", m.At)
		return nil
	}
	bySource, err := h.reportsBySource(ctx, m.CaseID)
	if err != nil {
		return err
	}
	var bodies []string
	for _, source := range slices.Sorted(maps.Keys(bySource)) {
		ep, err := h.Endpoints.Endpoint(ctx, source)
		if err != nil {
			return fmt.Errorf("outcome endpoint of %s: %w", source, err)
		}
		if ep == "" {
			continue
		}
		d := *m
		d.Kind, d.Source = KindDelivery, source
		d.ReportIDs = bySource[source]
		if len(d.ReportIDs) > MaxReportIDs {
			d.ReportIDs, d.Truncated = d.ReportIDs[:MaxReportIDs], true
		}
		body, err := json.Marshal(d)
		if err != nil {
			return err
		}
		bodies = append(bodies, string(body))
	}
	for _, batch := range Batches(bodies) {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
		for i, b := range batch {
			entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)}
		}
		out, err := h.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.QueueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("queue outcome deliveries of case %s: %w", m.CaseID, err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("queue outcome deliveries of case %s: %d of %d refused (%s)", m.CaseID, len(out.Failed), len(entries), aws.ToString(out.Failed[0].Code))
		}
	}
	item := map[string]types.AttributeValue{
		"pk":         key["pk"],
		"sk":         key["sk"],
		"type":       &types.AttributeValueMemberS{Value: TypeFanOut},
		"status":     &types.AttributeValueMemberS{Value: m.Status},
		"deliveries": &types.AttributeValueMemberN{Value: strconv.Itoa(len(bodies))},
		"expires_at": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.At.Add(RecordTTL).Unix(), 10)},
	}
	if _, err := h.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.Table), Item: item}); err != nil {
		// Queued but not recorded: a repeat queues again, and the
		// deliveries' claims and records keep that from posting twice.
		h.log().WarnContext(ctx, "outcome fan-out not recorded", "case_id", m.CaseID, "error", err)
	}
	h.log().InfoContext(ctx, "case outcome fanned out", "case_id", m.CaseID, "status", m.Status, "sources", len(bySource), "deliveries", len(bodies))
	return nil
}

// Batches splits message bodies into SendMessageBatch calls: at most
// maxBatchEntries each, and at most maxBatchBytes of bodies together.
func Batches(bodies []string) [][]string {
	var out [][]string
	var cur []string
	size := 0
	for _, b := range bodies {
		if len(cur) > 0 && (len(cur) == maxBatchEntries || size+len(b) > maxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, b)
		size += len(b)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// reportsBySource reads the case's reports from the ReportsByCaseShard
// index, every case shard, and groups their report ids by source, oldest
// first.
func (h *Handler) reportsBySource(ctx context.Context, caseID string) (map[string][]string, error) {
	type row struct{ id, at string }
	rows := map[string][]row{}
	for n := range reportstore.CaseShards {
		p := dynamodb.NewQueryPaginator(h.DB, &dynamodb.QueryInput{
			TableName: aws.String(h.Table), IndexName: aws.String(aggregate.ReportsByCaseIndex),
			KeyConditionExpression: aws.String("case_shard = :shard"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": &types.AttributeValueMemberS{Value: reportstore.CaseShardKey(caseID, n)},
			},
			ProjectionExpression:     aws.String("#s, report_id, case_id, received_at, #t"),
			ExpressionAttributeNames: map[string]string{"#s": "source", "#t": "type"},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("query reports of case %s: %w", caseID, err)
			}
			for _, item := range page.Items {
				var r struct {
					Source     string `dynamodbav:"source"`
					ReportID   string `dynamodbav:"report_id"`
					CaseID     string `dynamodbav:"case_id"`
					ReceivedAt string `dynamodbav:"received_at"`
					Type       string `dynamodbav:"type"`
				}
				if err := attributevalue.UnmarshalMap(item, &r); err != nil {
					return nil, fmt.Errorf("decode a report of case %s: %w", caseID, err)
				}
				if r.Type != reportstore.TypeReport || r.CaseID != caseID || r.Source == "" || r.ReportID == "" {
					continue
				}
				rows[r.Source] = append(rows[r.Source], row{r.ReportID, r.ReceivedAt})
			}
		}
	}
	out := make(map[string][]string, len(rows))
	for source, rs := range rows {
		slices.SortFunc(rs, func(a, b row) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
		ids := make([]string, 0, len(rs))
		for _, r := range rs {
			ids = append(ids, r.id)
		}
		out[source] = slices.Compact(ids)
	}
	return out, nil
}

// deliver POSTs delivery m once: it claims the delivery (a conditional
// write that fails while another copy holds a claim, and once it is
// delivered), POSTs, and on a 2xx marks the claim delivered; on a failure
// it lets the claim go, so the retry need not wait out the lease. It
// returns the HTTP status it got (0 for none); a *heldError when another
// copy holds the claim.
func (h *Handler) deliver(ctx context.Context, m *Message) (int, error) {
	endpoint, err := h.Endpoints.Endpoint(ctx, m.Source)
	if err != nil {
		return 0, fmt.Errorf("%w: outcome endpoint: %w", errRetry, err)
	}
	if endpoint == "" {
		h.log().WarnContext(ctx, "source has no outcome endpoint any more: not sent", "case_id", m.CaseID, "source", m.Source)
		return 0, nil
	}
	if _, err := h.Policy.CheckURL(endpoint); err != nil {
		return 0, err
	}
	secrets, err := h.Secrets.Secrets(ctx, m.Source)
	if errors.Is(err, webhook.ErrUnknownSource) {
		return 0, fmt.Errorf("source %s has no signing secret: %w", m.Source, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: secrets of %s: %w", errRetry, m.Source, err)
	}
	body, err := m.Body()
	if err != nil {
		return 0, err
	}
	token, delivered, err := h.claim(ctx, m)
	if err != nil || delivered {
		return 0, err
	}
	status, err := h.post(ctx, m.Source, endpoint, m.WebhookID(), secrets, body)
	if err != nil {
		h.release(ctx, m, token)
		return status, err
	}
	if err := h.markDelivered(ctx, m, token, status); err != nil {
		// Posted but not recorded: the retry posts again with the same
		// webhook-id, which the receiver drops.
		return status, err
	}
	h.log().InfoContext(ctx, "outcome delivered", "case_id", m.CaseID, "source", m.Source, "status", m.Status, "status_code", status)
	return status, nil
}

func (h *Handler) deliveryKey(m *Message) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(m.CaseID)},
		"sk": &types.AttributeValueMemberS{Value: sortKey(m)},
	}
}

// claim takes delivery m's claim for ClaimLease: a conditional write that
// succeeds only if the delivery is not delivered and no claim on it is
// running (none, let go, or lapsed). It returns the claim's token, or
// delivered true when it is already delivered, or a *heldError.
func (h *Handler) claim(ctx context.Context, m *Message) (token string, delivered bool, err error) {
	now := h.now()
	token = strconv.FormatUint(rand.Uint64(), 36)
	_, err = h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.Table), Key: h.deliveryKey(m),
		UpdateExpression: aws.String("SET #type = :type, #source = :source, #status = :status, webhook_id = :id, " +
			"claim = :token, lease_until = :until, expires_at = :expires"),
		ConditionExpression:      aws.String("attribute_not_exists(delivered_at) AND (attribute_not_exists(lease_until) OR lease_until < :now)"),
		ExpressionAttributeNames: map[string]string{"#type": "type", "#source": "source", "#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":type":    &types.AttributeValueMemberS{Value: TypeDelivery},
			":source":  &types.AttributeValueMemberS{Value: m.Source},
			":status":  &types.AttributeValueMemberS{Value: m.Status},
			":id":      &types.AttributeValueMemberS{Value: m.WebhookID()},
			":token":   &types.AttributeValueMemberS{Value: token},
			":until":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ClaimLease).UnixMilli(), 10)},
			":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":expires": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.At.Add(RecordTTL).Unix(), 10)},
		},
		// The item as it was, when the condition fails: delivered, or
		// whose claim until when.
		// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return token, false, nil
	case errors.As(err, &ccf):
		var rec struct {
			DeliveredAt string `dynamodbav:"delivered_at"`
			LeaseUntil  int64  `dynamodbav:"lease_until"`
		}
		if err := attributevalue.UnmarshalMap(ccf.Item, &rec); err != nil {
			return "", false, fmt.Errorf("%w: read delivery record: %w", errRetry, err)
		}
		if rec.DeliveredAt != "" {
			h.log().InfoContext(ctx, "outcome already delivered", "case_id", m.CaseID, "source", m.Source, "status", m.Status)
			return "", true, nil
		}
		return "", false, &heldError{until: time.UnixMilli(rec.LeaseUntil)}
	default:
		return "", false, fmt.Errorf("%w: claim delivery: %w", errRetry, err)
	}
}

// markDelivered turns the claim with token into the delivered record. If
// the claim was lost (it lapsed and another copy took it), the POST is
// done all the same: the other copy posts the same webhook-id again, which
// the receiver drops.
func (h *Handler) markDelivered(ctx context.Context, m *Message, token string, status int) error {
	_, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.Table), Key: h.deliveryKey(m),
		UpdateExpression:    aws.String("SET delivered_at = :at, http_status = :code REMOVE claim, lease_until"),
		ConditionExpression: aws.String("claim = :token"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at":    &types.AttributeValueMemberS{Value: h.now().UTC().Format(time.RFC3339Nano)},
			":code":  &types.AttributeValueMemberN{Value: strconv.Itoa(status)},
			":token": &types.AttributeValueMemberS{Value: token},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		h.log().WarnContext(ctx, "outcome delivered after its claim lapsed", "case_id", m.CaseID, "source", m.Source, "status", m.Status)
		return nil
	default:
		return fmt.Errorf("%w: record delivery: %w", errRetry, err)
	}
}

// release lets the claim with token go after a failed POST. Best effort:
// a claim not let go lapses after ClaimLease.
func (h *Handler) release(ctx context.Context, m *Message, token string) {
	_, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(h.Table), Key: h.deliveryKey(m),
		UpdateExpression:          aws.String("REMOVE claim, lease_until"),
		ConditionExpression:       aws.String("claim = :token"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": &types.AttributeValueMemberS{Value: token}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		h.log().WarnContext(ctx, "outcome claim not let go; it lapses", "case_id", m.CaseID, "source", m.Source, "error", err)
	}
}

func sortKey(m *Message) string {
	return fanOutKey(m) + "#" + m.Source
}

func fanOutKey(m *Message) string {
	return SortPrefix + m.At.UTC().Format(atLayout) + "#" + m.Status
}

// post sends one signed POST and sorts its answer.
func (h *Handler) post(ctx context.Context, source, endpoint, id string, secrets *webhook.SourceSecrets, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: endpoint of %s is not a usable URL", ErrRefused, source)
	}
	ts := h.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Flagline-Outcomes/1")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, secrets.Sign(id, ts, body))
	resp, err := h.httpClient().Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, which may carry the source's
		// token: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrRefused) {
			return 0, err
		}
		// A timeout, a refused or reset connection, a DNS failure: the
		// endpoint may be back later.
		return 0, fmt.Errorf("%w: post to the endpoint of %s: %v", errRetry, source, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return c, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return c, fmt.Errorf("%w: endpoint answered %d", errRetry, c)
	default:
		return c, fmt.Errorf("endpoint answered %d", c)
	}
}

// retry leaves rec for another try after the backoff (its visibility
// timeout), or parks it when the next try would come after m's deadline.
// It reports whether rec is done with.
func (h *Handler) retry(ctx context.Context, log *slog.Logger, rec *events.SQSMessage, m *Message, cause error) bool {
	now := h.now()
	if !now.Before(m.Deadline()) {
		return h.park(ctx, log, rec.Body, m, fmt.Errorf("retried for %v: %w", RetryFor, cause), 0)
	}
	attempt, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	delay := h.Backoff(attempt)
	if left := m.Deadline().Sub(now); delay > left {
		// The last try comes at the deadline.
		delay = left
	}
	h.setVisibility(ctx, log, rec, delay)
	return false
}

// setVisibility makes rec visible again after d (whole seconds, at least
// one, at most maxVisibility).
func (h *Handler) setVisibility(ctx context.Context, log *slog.Logger, rec *events.SQSMessage, d time.Duration) {
	d = min(d, maxVisibility)
	secs := int32(max(1, (d+time.Second-1)/time.Second))
	if _, err := h.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(h.QueueURL), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: secs,
	}); err != nil {
		// The message comes back after the queue's own visibility timeout.
		log.WarnContext(ctx, "outcome visibility not set", "error", err)
	}
}

// Backoff is the delay before try attempt+1 (attempt ≥ 1 tries made):
// RetryBase doubled per try, at most MaxRetryDelay, with equal jitter.
func (h *Handler) Backoff(attempt int) time.Duration {
	d := cmp.Or(h.RetryBase, DefaultRetryBase)
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, MaxRetryDelay, maxVisibility)
	jitter := h.Jitter
	if jitter == nil {
		jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	return d/2 + jitter(d/2+1)
}

// Parked is a message of the on-failure queue: the outcome message, why it
// was given up on and the endpoint's last answer.
type Parked struct {
	Message    json.RawMessage `json:"message"`
	Reason     string          `json:"reason"`
	StatusCode int             `json:"status_code,omitempty"`
	ParkedAt   time.Time       `json:"parked_at"`
}

// park sends body to the on-failure queue; it reports whether that
// worked (if not, the message is retried).
func (h *Handler) park(ctx context.Context, log *slog.Logger, body string, m *Message, cause error, status int) bool {
	if m != nil {
		// The message itself, also when body was a Parked envelope sent
		// back: parking again never nests envelopes.
		if b, err := json.Marshal(m); err == nil {
			body = string(b)
		}
	}
	raw := json.RawMessage(body)
	if !json.Valid(raw) {
		b, _ := json.Marshal(body)
		raw = b
	}
	p, err := json.Marshal(Parked{Message: raw, Reason: cause.Error(), StatusCode: status, ParkedAt: h.now().UTC()})
	if err != nil {
		return false
	}
	if _, err := h.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.FailuresURL), MessageBody: aws.String(string(p))}); err != nil {
		log.ErrorContext(ctx, "outcome not parked", "error", err)
		return false
	}
	log.ErrorContext(ctx, "outcome parked in the on-failure queue", "reason", cause.Error(), "status_code", status)
	return true
}

func (h *Handler) httpClient() *http.Client {
	if h.HTTP != nil {
		return h.HTTP
	}
	h.clientOnce.Do(func() { h.client = h.Policy.Client() })
	return h.client
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
