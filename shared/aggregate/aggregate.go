// Package aggregate merges report items from the table's stream into their
// cases: one conditional UpdateItem per distinct case per batch, counting
// every report exactly once.
//
// Exactly once: stream batches are retried, may overlap earlier ones, and
// Lambda may deliver again records that already succeeded. Each case keeps,
// per stream shard, the highest sequence number it has applied (left-padded
// to 40 digits and compared as strings: sequence numbers are longer than a
// DynamoDB number holds). A record at or below that mark is skipped. Each
// write is conditional on the case's version; when another writer got there
// first, DynamoDB returns the current item (ALL_OLD) and only what is still
// new is applied to it. This relies on Lambda processing each shard in order
// (ParallelizationFactor 1) and on knowing the shard, which Lambda passes to
// functions with a tumbling window (TimeWindowProperties.ShardID).
package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/awserr"
	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/config"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/protect"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/streamimage"
)

// Limits of what a case keeps.
const (
	// MaxExplanations is how many notifiers' explanations a case keeps for
	// its alerts; MaxExplanationRunes is how much of each.
	MaxExplanations     = 5
	MaxExplanationRunes = 280
	// SeqWidth is the width sequence numbers are padded to.
	SeqWidth = 40
	// MarkRetention is how long a shard's mark is kept after its last
	// write: longer than the stream event sources' MaximumRecordAgeInSeconds
	// (6 h in template.yaml), past which Lambda delivers no record again
	// (see keepMarks).
	MarkRetention = 7 * time.Hour
	// maxConflicts bounds the re-applies of one case after version conflicts.
	maxConflicts = 8
	// loadAttempts bounds the BatchGetItem calls reading 100 cases: the
	// first and 10 retries of what DynamoDB left unprocessed.
	loadAttempts = 11
)

// DB is the part of the DynamoDB client aggregate uses.
type DB interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Handler is the aggregate function.
type Handler struct {
	DB    DB
	Table string
	Rules casestore.Rules
	Log   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Protect reads the humanitarian allow-list, at most once per batch
	// and only for a batch that creates a case; nil protects nothing.
	Protect Protector
}

// Protector reads the humanitarian allow-list (shared/protect).
type Protector interface {
	Matcher(ctx context.Context) (*protect.Matcher, error)
}

var _ Protector = (*protect.Table)(nil)

// Report is what aggregation reads of a report item.
type Report struct {
	CaseID       string   `dynamodbav:"case_id"`
	CanonicalURL string   `dynamodbav:"canonical_url"`
	Category     string   `dynamodbav:"category"`
	Countries    []string `dynamodbav:"countries,stringset"`
	Source       string   `dynamodbav:"source"`
	NotifierHash string   `dynamodbav:"notifier_hash"`
	Explanation  string   `dynamodbav:"explanation"`
	ReceivedAt   string   `dynamodbav:"received_at"`
	ReportID     string   `dynamodbav:"report_id"`
	Type         string   `dynamodbav:"type"`
	// PK is the report item's key; a recount reads the explanation by it.
	PK string `dynamodbav:"pk"`
	// ExpiresAt is when the report item, and the notifier hash on it,
	// expire (Unix seconds, the table's TTL attribute).
	ExpiresAt int64 `dynamodbav:"expires_at"`
}

// entry is one report record of the batch.
type entry struct {
	report   Report
	seq      string // padded
	rawSeq   string // as delivered, for batch item failures
	received time.Time
}

// Mark is the highest sequence number of a shard applied to a case.
type Mark struct {
	Seq string `dynamodbav:"seq"`
	At  int64  `dynamodbav:"at"` // Unix seconds it was written
}

// State is a case item as aggregate reads and writes it.
type State struct {
	casestore.Case
	Version int             `dynamodbav:"version"`
	Applied map[string]Mark `dynamodbav:"applied"`
	// SourceSet holds the distinct source names while they are at most
	// MaxExactSources; SourceSketch counts them after that.
	SourceSet    []string `dynamodbav:"sources,stringset,omitempty"`
	SourceSketch []byte   `dynamodbav:"source_sketch,omitempty"`
	// Pseudonyms maps a pseudonym of each notifier hash (never an address)
	// to when the last report item carrying that hash expires, while the
	// notifier count is exact; NotifierSketch counts notifiers after that.
	// See countNotifiers.
	Pseudonyms         map[string]int64 `dynamodbav:"notifier_pseudonyms,omitempty"`
	PseudonymsExpireAt int64            `dynamodbav:"pseudonyms_expire_at,omitempty"`
	NotifierSketch     []byte           `dynamodbav:"notifier_sketch,omitempty"`
	// LegacyNotifiers are the raw notifier hashes cases kept before
	// pseudonyms; the next write moves them into the sketch and removes them.
	LegacyNotifiers []string `dynamodbav:"notifiers,stringset,omitempty"`
	// RecountedThrough: a recount (recount.go) counted every report of the
	// case received at or before it; aggregation skips those.
	RecountedThrough time.Time `dynamodbav:"recounted_through"`
	exists           bool
}

// ErrNoShard: the event carries no shard id, so exactly-once cannot be kept.
var ErrNoShard = errors.New("event has no shardId: aggregate needs a tumbling window on its event source")

// Handle applies one batch. It reports the first record of every case it
// could not update as a batch item failure; Lambda retries from the lowest,
// and the marks make records already applied a no-op.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error) {
	resp := newResponse()
	if len(ev.Records) == 0 {
		return resp, nil
	}
	if ev.ShardID == "" {
		return resp, ErrNoShard
	}
	log := h.Log.With("shard", ev.ShardID)
	groups, order, failures := h.collect(ev.Records, log)
	states, err := h.load(ctx, order)
	if err != nil {
		// Nothing was written: retry the whole batch.
		log.ErrorContext(ctx, "load cases", "error", err, "retryable", awserr.Retryable(err))
		return failAll(ev.Records), nil
	}
	list, err := h.allowList(ctx, states)
	if err != nil {
		// A case created now without its protection would stay
		// unprotected: retry the whole batch.
		log.ErrorContext(ctx, "read humanitarian list", "error", err, "retryable", awserr.Retryable(err))
		return failAll(ev.Records), nil
	}
	applied, skipped := 0, 0
	for _, id := range order {
		n, err := h.applyCase(ctx, ev.ShardID, states[id], groups[id], list)
		if err != nil {
			log.ErrorContext(ctx, "update case", "case_id", id, "error", err, "retryable", awserr.Retryable(err))
			failures = append(failures, groups[id][0].rawSeq)
			continue
		}
		applied += n
		skipped += len(groups[id]) - n
	}
	for _, seq := range failures {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
	}
	log.InfoContext(ctx, "batch aggregated", "records", len(ev.Records), "cases", len(order), "applied", applied, "skipped", skipped, "failed_cases", len(failures))
	return resp, nil
}

// collect picks the report inserts out of the batch and groups them by case,
// in the order cases first appear. Records it cannot read are failures.
func (h *Handler) collect(records []events.DynamoDBEventRecord, log *slog.Logger) (map[string][]entry, []string, []string) {
	groups := map[string][]entry{}
	var order, failures []string
	for _, rec := range records {
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
			continue
		}
		img := rec.Change.NewImage
		if t, ok := img[reportstore.AttrType]; !ok || t.DataType() != events.DataTypeString || t.String() != reportstore.TypeReport {
			continue
		}
		var r Report
		err := streamimage.Unmarshal(img, &r)
		received, terr := time.Parse(time.RFC3339Nano, r.ReceivedAt)
		if err != nil || terr != nil || r.CaseID == "" || r.CanonicalURL == "" {
			log.Error("unreadable report record", "sequence_number", rec.Change.SequenceNumber, "error", errors.Join(err, terr))
			failures = append(failures, rec.Change.SequenceNumber)
			continue
		}
		if _, ok := groups[r.CaseID]; !ok {
			order = append(order, r.CaseID)
		}
		groups[r.CaseID] = append(groups[r.CaseID], entry{
			report: r, seq: PadSeq(rec.Change.SequenceNumber), rawSeq: rec.Change.SequenceNumber,
			received: received,
		})
	}
	return groups, order, failures
}

// PadSeq left-pads a sequence number with zeros to SeqWidth digits so that
// string order is numeric order.
func PadSeq(seq string) string {
	if len(seq) >= SeqWidth {
		return seq
	}
	return strings.Repeat("0", SeqWidth-len(seq)) + seq
}

// load reads the current state of every case in one or more BatchGetItem
// calls (100 keys each), consistently.
func (h *Handler) load(ctx context.Context, ids []string) (map[string]*State, error) {
	states := make(map[string]*State, len(ids))
	for _, id := range ids {
		states[id] = &State{Case: casestore.Case{ID: id}}
	}
	for chunk := range slices.Chunk(ids, ddbbatch.MaxGetKeys) {
		keys := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, id := range chunk {
			keys = append(keys, caseKey(id))
		}
		req := map[string]types.KeysAndAttributes{h.Table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		err := ddbbatch.Get(ctx, h.DB, req, loadAttempts, func(_ string, item map[string]types.AttributeValue) error {
			var s State
			if err := attributevalue.UnmarshalMap(item, &s); err != nil {
				return fmt.Errorf("decode case: %w", err)
			}
			if err := s.check(); err != nil {
				return err
			}
			s.exists = true
			if cur, ok := states[s.ID]; ok {
				*cur = s
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read cases: %w", err)
		}
	}
	return states, nil
}

func caseKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		reportstore.AttrPK: &types.AttributeValueMemberS{Value: casestore.Key(id)},
		reportstore.AttrSK: &types.AttributeValueMemberS{Value: casestore.SortKey},
	}
}

// allowList reads the humanitarian allow-list when the batch creates a
// case (the function decides protection at creation only; `flagline
// protect apply` marks the cases that exist when it runs); nil otherwise.
func (h *Handler) allowList(ctx context.Context, states map[string]*State) (*protect.Matcher, error) {
	if h.Protect == nil {
		return nil, nil
	}
	for _, s := range states {
		if !s.exists {
			return h.Protect.Matcher(ctx)
		}
	}
	return nil, nil
}

// applyCase applies the entries newer than the case's mark for this shard
// with one conditional UpdateItem, re-applying on a version conflict. It
// returns how many reports it counted. A case it creates is protected when
// list matches its canonical URL.
func (h *Handler) applyCase(ctx context.Context, shard string, s *State, entries []entry, list *protect.Matcher) (int, error) {
	for range maxConflicts {
		fresh := s.newEntries(shard, entries)
		if len(fresh) == 0 {
			return 0, nil
		}
		next := s.apply(shard, fresh, h.Rules, h.now())
		if !s.exists {
			if r, ok := list.Match(next.CanonicalURL); ok {
				next.Protected, next.ProtectedBy = true, r.By()
			}
		}
		in, err := h.update(s, next)
		if err != nil {
			return 0, err
		}
		_, err = h.DB.UpdateItem(ctx, in)
		if err == nil {
			return len(fresh), nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return 0, fmt.Errorf("update case %s: %w", s.ID, err)
		}
		// Someone else updated the case: continue from what is stored now.
		var cur State
		if err := attributevalue.UnmarshalMap(ccf.Item, &cur); err != nil {
			return 0, fmt.Errorf("decode case %s after a conflict: %w", s.ID, err)
		}
		if err := cur.check(); err != nil {
			return 0, err
		}
		cur.exists = len(ccf.Item) > 0
		cur.ID = s.ID
		*s = cur
	}
	return 0, fmt.Errorf("update case %s: still conflicting after %d attempts", s.ID, maxConflicts)
}

// newEntries are the entries above the case's mark for shard, less the
// reports received at or before recounted_through: a recount counted those,
// including ones still in the stream.
func (s *State) newEntries(shard string, entries []entry) []entry {
	mark := s.Applied[shard].Seq
	var out []entry
	for _, e := range entries {
		if e.seq > mark && e.received.After(s.RecountedThrough) {
			out = append(out, e)
		}
	}
	return out
}

// apply returns the state after counting entries (which are all new).
func (s *State) apply(shard string, entries []entry, rules casestore.Rules, now time.Time) *State {
	n := *s
	// Sets come back from DynamoDB in no particular order; union keeps them
	// sorted. Countries and categories keep only their closed vocabularies
	// (what intake accepts), which bounds them.
	n.Countries = union(nil, known(report.IsCountry, s.Countries...)...)
	n.Categories = union(nil, known(isCategory, s.Categories...)...)
	n.SourceSet = slices.Sorted(slices.Values(s.SourceSet))
	n.Explanations = slices.Clone(s.Explanations)
	n.Applied = keepMarks(s.Applied, now)
	sources := make([]string, 0, len(entries))
	notifiers := make([]notifierSeen, 0, len(entries))
	for _, e := range entries {
		r := e.report
		if n.Reports == 0 {
			n.CanonicalURL, n.FirstSeen = r.CanonicalURL, e.received
		}
		n.Reports++
		if e.received.Before(n.FirstSeen) {
			n.FirstSeen = e.received
		}
		if e.received.After(n.LastSeen) {
			n.LastSeen = e.received
		}
		n.Countries = union(n.Countries, known(report.IsCountry, r.Countries...)...)
		n.Categories = union(n.Categories, known(isCategory, r.Category)...)
		sources = append(sources, r.Source)
		notifiers = append(notifiers, notifierSeen{hash: r.NotifierHash, expiresAt: r.ExpiresAt})
		if len(n.Explanations) < MaxExplanations && strings.TrimSpace(r.Explanation) != "" {
			n.Explanations = append(n.Explanations, trim(r.Explanation, MaxExplanationRunes, MaxExplanationBytes))
		}
	}
	// The platform is the canonical URL's, never the notifier's text: it is
	// printed into every alert.
	n.Platform = platformOf(n.CanonicalURL)
	n.countSources(sources)
	n.countNotifiers(notifiers, now)
	n.Level = max(s.Level, rules.Level(&n.Case))
	n.Severity = maxSeverity(s.Severity, rules.Severity(&n.Case))
	n.Applied[shard] = Mark{Seq: entries[len(entries)-1].seq, At: now.Unix()}
	n.Version = s.Version + 1
	return &n
}

// update builds the conditional UpdateItem that turns the stored case s into
// next. It sets only what aggregation owns: alerted_level and the case's
// workflow fields belong to other functions.
func (h *Handler) update(s, next *State) (*dynamodb.UpdateItemInput, error) {
	applied, err := attributevalue.Marshal(next.Applied)
	if err != nil {
		return nil, err
	}
	upd := expression.
		Set(expression.Name("type"), expression.Value(casestore.TypeCase)).
		Set(expression.Name("case_id"), expression.Value(next.ID)).
		Set(expression.Name("canonical_url"), expression.Value(next.CanonicalURL)).
		Set(expression.Name("platform"), expression.Value(next.Platform)).
		Set(expression.Name("status"), expression.IfNotExists(expression.Name("status"), expression.Value(casestore.StatusOpen))).
		Set(expression.Name("report_count"), expression.Value(next.Reports)).
		Set(expression.Name("source_count"), expression.Value(next.Sources)).
		Set(expression.Name("source_count_exact"), expression.Value(next.SourceCountExact)).
		Set(expression.Name("notifier_count"), expression.Value(next.Case.Notifiers)).
		Set(expression.Name("notifier_count_exact"), expression.Value(next.NotifierCountExact)).
		Set(expression.Name("first_seen"), expression.Value(next.FirstSeen.UTC().Format(time.RFC3339Nano))).
		Set(expression.Name("last_seen"), expression.Value(next.LastSeen.UTC().Format(time.RFC3339Nano))).
		Set(expression.Name("level"), expression.Value(next.Level)).
		Set(expression.Name("severity"), expression.Value(string(next.Severity))).
		Set(expression.Name("applied"), expression.Value(applied)).
		Set(expression.Name("version"), expression.Value(next.Version)).
		Set(expression.Name("updated_at"), expression.Value(h.now().UTC().Format(time.RFC3339Nano)))
	if !next.RecountedThrough.IsZero() {
		upd = upd.Set(expression.Name("recounted_through"), expression.Value(next.RecountedThrough.UTC().Format(time.RFC3339Nano)))
	}
	if !s.exists && next.Protected {
		// Written with the case's creation only, never after.
		upd = upd.Set(expression.Name("protected"), expression.Value(true)).
			Set(expression.Name("protected_by"), expression.Value(next.ProtectedBy))
	}
	// What is empty is removed: a set cannot be empty, and what a case
	// stops keeping (pseudonyms, an overflowed set) must go from the item.
	setOrRemove := func(name string, keep bool, v any) {
		if keep {
			upd = upd.Set(expression.Name(name), expression.Value(v))
		} else {
			upd = upd.Remove(expression.Name(name))
		}
	}
	setOrRemove("countries", len(next.Countries) > 0, &types.AttributeValueMemberSS{Value: next.Countries})
	setOrRemove("categories", len(next.Categories) > 0, &types.AttributeValueMemberSS{Value: next.Categories})
	setOrRemove("sources", len(next.SourceSet) > 0, &types.AttributeValueMemberSS{Value: next.SourceSet})
	setOrRemove("source_sketch", next.SourceSketch != nil, next.SourceSketch)
	setOrRemove("notifier_pseudonyms", len(next.Pseudonyms) > 0, next.Pseudonyms)
	setOrRemove("pseudonyms_expire_at", next.PseudonymsExpireAt > 0, next.PseudonymsExpireAt)
	setOrRemove("notifier_sketch", next.NotifierSketch != nil, next.NotifierSketch)
	setOrRemove("explanations", len(next.Explanations) > 0, next.Explanations)
	// Attributes of earlier versions of the case item.
	upd = upd.Remove(expression.Name("notifiers")).Remove(expression.Name("initial_countries"))
	cond := expression.AttributeNotExists(expression.Name(reportstore.AttrPK))
	if s.exists {
		cond = expression.Name("version").Equal(expression.Value(s.Version))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	return &dynamodb.UpdateItemInput{
		TableName:                           aws.String(h.Table),
		Key:                                 caseKey(next.ID),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// platformOf is the platform canon derives from a canonical URL's host.
func platformOf(canonical string) string {
	u, err := canon.Parse(canonical)
	if err != nil {
		return ""
	}
	return u.Platform
}

// known are the values for which ok holds.
func known(ok func(string) bool, values ...string) []string {
	return slices.DeleteFunc(slices.Clone(values), func(v string) bool { return !ok(v) })
}

func isCategory(v string) bool { return report.Category(v).Valid() }

// union adds values to a sorted set.
func union(set []string, values ...string) []string {
	for _, v := range values {
		if v == "" {
			continue
		}
		if i, found := slices.BinarySearch(set, v); !found {
			set = slices.Insert(set, i, v)
		}
	}
	return set
}

// trim collapses white space and cuts s to at most runes runes and bytes
// bytes, ending a cut text with "…".
func trim(s string, runes, bytes int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= runes && len(s) <= bytes {
		return s
	}
	r := []rune(s)[:min(utf8.RuneCountInString(s), runes-1)]
	for len(string(r)) > bytes-len("…") {
		r = r[:len(r)-1]
	}
	return strings.TrimSpace(string(r)) + "…"
}

func maxSeverity(a, b casestore.Severity) casestore.Severity {
	if slices.Index(casestore.Severities, a) > slices.Index(casestore.Severities, b) {
		return a
	}
	return b
}

// newResponse is an answer with an empty window state. With a tumbling
// window, Lambda treats a response without a "state" property (and a nil
// map marshals as "state": null) as a failed invocation: "your Lambda
// function response must contain a state property"
// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html).
// Aggregation keeps no window state, so it is always empty.
func newResponse() events.DynamoDBTimeWindowEventResponse {
	return events.DynamoDBTimeWindowEventResponse{
		TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: map[string]string{}},
	}
}

// failAll reports the first record, so Lambda retries the whole batch.
func failAll(records []events.DynamoDBEventRecord) events.DynamoDBTimeWindowEventResponse {
	resp := newResponse()
	resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: records[0].Change.SequenceNumber}}
	return resp
}

// FromEnv builds the handler from a function's environment: TABLE_NAME
// (required) and LEVEL_THRESHOLDS (report counts that raise a case's level,
// default 5,25,100). It makes clients but no network call.
func FromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (*Handler, error) {
	env := &config.Env{Lookup: lookup}
	table := env.Required("TABLE_NAME")
	thresholds := env.Ints("LEVEL_THRESHOLDS", casestore.DefaultThresholds)
	if err := env.Err(); err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(cfg)
	return &Handler{
		DB:      db,
		Table:   table,
		Rules:   casestore.Rules{Thresholds: thresholds},
		Log:     log,
		Protect: &protect.Table{DB: db, Table: table},
	}, nil
}
