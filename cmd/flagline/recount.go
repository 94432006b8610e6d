package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/protect"
	"github.com/flagline/flagline/shared/reportstore"
)

func init() {
	commands["recount"] = command{summary: "rebuild cases' counts from their reports (after a discarded batch)", run: runRecount}
}

// failuresQueueEnv names the AggregateFailures queue when --queue-url is not given.
const failuresQueueEnv = "AGGREGATE_FAILURES_QUEUE_URL"

const recountUsage = `usage: flagline recount --case ID [--case ID …] [--table NAME] [--dry-run]
       flagline recount --cases-file FILE [--table NAME] [--dry-run]
       flagline recount --failures [--queue-url URL] [--table NAME] [--dry-run]

recount rebuilds each case's counts (reports, sources, notifiers, countries,
categories, first and last seen, level) from its report items, exactly,
and prints what changed. It is safe while aggregation runs: the new counts
are written conditional on the case's version, with recounted_through, and
aggregation then leaves out the reports the recount counted. A case whose
last report is less than --settle old is waited for. Running it twice
changes nothing the second time.

--failures reads the on-failure records in the AggregateFailures queue.
Each names a stream shard and a sequence range; recount reads those
records from the stream to learn which cases they touched, recounts them,
and deletes the message once every case it touched was recounted. The
stream keeps records 24 hours: when it no longer has a message's records,
recount says so, leaves the message in the queue and exits with status 1;
recount the cases you know of with --case.

--cases-file lists one case id per line ("#" starts a comment).

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

flags:
`

// caseList collects repeated --case flags.
type caseList []string

func (c *caseList) String() string { return strings.Join(*c, ",") }
func (c *caseList) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return errors.New("empty case id")
	}
	*c = append(*c, v)
	return nil
}

type recountOptions struct {
	cases     caseList
	casesFile string
	failures  bool
	table     string
	queueURL  string
	settle    time.Duration
	dryRun    bool
}

func parseRecountFlags(args []string, stderr io.Writer) (*recountOptions, error) {
	o := &recountOptions{}
	fs := newFlagSet("recount", recountUsage, stderr)
	fs.Var(&o.cases, "case", "case `id` to recount; repeat for several")
	fs.StringVar(&o.casesFile, "cases-file", "", "`file` of case ids, one per line")
	fs.BoolVar(&o.failures, "failures", false, "recount every case touched by the on-failure records in the AggregateFailures queue")
	tableFlag(fs, &o.table)
	fs.StringVar(&o.queueURL, "queue-url", "", "`URL` of the AggregateFailures queue (stack output AggregateFailuresQueueUrl); default $"+failuresQueueEnv)
	fs.DurationVar(&o.settle, "settle", aggregate.DefaultSettle, "count only reports received at least this long ago (covers intake's write and the index's propagation)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would change and write nothing")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	sources := 0
	for _, set := range []bool{len(o.cases) > 0, o.casesFile != "", o.failures} {
		if set {
			sources++
		}
	}
	var problems []string
	if sources != 1 {
		problems = append(problems, "give exactly one of --case, --cases-file or --failures")
	}
	if !resolveTable(&o.table) {
		problems = append(problems, "missing "+missingTable)
	}
	if o.failures && !flagOrEnv(&o.queueURL, failuresQueueEnv) {
		problems = append(problems, "missing --queue-url (or "+failuresQueueEnv+")")
	}
	if o.settle < 0 {
		problems = append(problems, "--settle must not be negative")
	}
	if len(problems) > 0 {
		return nil, usageError{errors.New(strings.Join(problems, "; "))}
	}
	return o, nil
}

// readCasesFile reads case ids, one per line; blank lines and "#" comments
// are skipped.
func readCasesFile(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: %q is not one case id", n, line)
		}
		ids = append(ids, line)
	}
	return ids, sc.Err()
}

func runRecount(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRecountFlags(args, stderr)
	if err != nil {
		return err
	}
	ids := slices.Clone([]string(o.cases))
	if o.casesFile != "" {
		f, err := os.Open(o.casesFile)
		if err != nil {
			return usageError{fmt.Errorf("--cases-file: %w", err)}
		}
		ids, err = readCasesFile(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.casesFile, err)
		}
	}
	cfg, err := awsConfig(ctx)
	if err != nil {
		return err
	}
	db := dynamodb.NewFromConfig(cfg)
	rc := &aggregate.Recounter{
		DB: db, Table: o.table, Settle: o.settle, DryRun: o.dryRun,
		Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds},
		// A case the recount creates is protected as aggregation would
		// have protected it, from the list flagline protect apply stored.
		Protect: &protect.Table{DB: db, Table: o.table},
	}
	if o.failures {
		return recountFailures(ctx, &failureSource{Queue: sqs.NewFromConfig(cfg), QueueURL: o.queueURL, Streams: dynamodbstreams.NewFromConfig(cfg)}, rc, stdout)
	}
	return recountCases(ctx, rc, slices.Compact(slices.Sorted(slices.Values(ids))), stdout)
}

// Recounter is the recount of one case (aggregate.Recounter).
type Recounter interface {
	Recount(ctx context.Context, caseID string) (*aggregate.Recount, error)
	// RecountIncluding writes nothing unless every report id in want is
	// among the reports counted.
	RecountIncluding(ctx context.Context, caseID string, want []string) (*aggregate.Recount, error)
}

// recountCases recounts each case and prints the outcome; it goes on after
// a failed case and returns every failure.
func recountCases(ctx context.Context, rc Recounter, ids []string, stdout io.Writer) error {
	var errs []error
	for _, id := range ids {
		if err := recountOne(ctx, rc, id, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func recountOne(ctx context.Context, rc Recounter, id string, stdout io.Writer) error {
	return recountIncluding(ctx, rc, id, nil, stdout)
}

// recountIncluding recounts case id, requiring the reports want (a
// discarded batch's) among those it counts.
func recountIncluding(ctx context.Context, rc Recounter, id string, want []string, stdout io.Writer) error {
	res, err := rc.RecountIncluding(ctx, id, want)
	if err != nil {
		fmt.Fprintf(stdout, "case %s: not recounted: %v\n", id, err)
		return err
	}
	printRecount(stdout, res)
	return nil
}

// printRecount prints one case's outcome: a line, then before -> after for
// every count that changed.
func printRecount(w io.Writer, r *aggregate.Recount) {
	through := r.Through.UTC().Format(time.RFC3339)
	switch {
	case !r.Changed:
		fmt.Fprintf(w, "case %s: unchanged (%d reports through %s)\n", r.CaseID, r.After.Reports, through)
		return
	case r.Written:
		fmt.Fprintf(w, "case %s: recounted through %s\n", r.CaseID, through)
	default:
		fmt.Fprintf(w, "case %s: would change (dry run) through %s\n", r.CaseID, through)
	}
	if !r.Existed {
		fmt.Fprintf(w, "  (no case item yet: the recount creates it)\n")
		if r.After.Protected {
			fmt.Fprintf(w, "  protected   %s (%s)\n", r.After.ProtectedBy, alert.ProtectedNotice)
		}
	}
	b, a := r.Before, r.After
	line := func(name, before, after string) {
		if before != after {
			fmt.Fprintf(w, "  %-11s %s -> %s\n", name, before, after)
		}
	}
	num := func(n int) string { return fmt.Sprint(n) }
	set := func(s []string) string { return "[" + strings.Join(slices.Sorted(slices.Values(s)), " ") + "]" }
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	line("reports", num(b.Reports), num(a.Reports))
	line("sources", num(b.Sources), num(a.Sources))
	line("notifiers", num(b.Notifiers), num(a.Notifiers))
	line("countries", set(b.Countries), set(a.Countries))
	line("categories", set(b.Categories), set(a.Categories))
	line("first seen", at(b.FirstSeen), at(a.FirstSeen))
	line("last seen", at(b.LastSeen), at(a.LastSeen))
	line("level", num(b.Level), num(a.Level))
	line("severity", string(b.Severity), string(a.Severity))
}

// Queue is the part of the SQS client --failures uses.
type Queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Streams is the part of the DynamoDB Streams client --failures uses.
type Streams interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var (
	_ Queue   = (*sqs.Client)(nil)
	_ Streams = (*dynamodbstreams.Client)(nil)
)

type failureSource struct {
	Queue    Queue
	QueueURL string
	Streams  Streams
}

// failureVisibility hides a message from other readers while it is handled.
const failureVisibility = 15 * 60

// ErrRecordsGone: the stream no longer holds a discarded batch's records.
var ErrRecordsGone = errors.New("the stream no longer has these records (DynamoDB Streams keeps them 24 hours)")

// recountFailures recounts the cases of every on-failure record in the
// queue, and deletes each message whose cases were all recounted (none in a
// dry run: those messages are made visible again at once).
func recountFailures(ctx context.Context, src *failureSource, rc Recounter, stdout io.Writer) error {
	type message struct {
		receipt string
		cases   []string
		err     error
	}
	// reports are the report ids of the discarded batches, by case.
	reports := map[string][]string{}
	var msgs []message
	for {
		// Long polling asks every SQS server, so an empty answer means the
		// queue is empty; short polling samples some servers only
		// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
		out, err := src.Queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(src.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: failureVisibility,
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", src.QueueURL, err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			msg := message{receipt: aws.ToString(m.ReceiptHandle)}
			var info streampoll.FailureInfo
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &info); err != nil || info.DDBStreamBatchInfo.ShardID == "" {
				msg.err = fmt.Errorf("message %s is not an on-failure record of a DynamoDB stream batch", aws.ToString(m.MessageId))
			} else {
				var byCase map[string][]string
				byCase, msg.err = src.cases(ctx, info)
				msg.cases = slices.Sorted(maps.Keys(byCase))
				for id, reps := range byCase {
					reports[id] = append(reports[id], reps...)
				}
			}
			b := info.DDBStreamBatchInfo
			if msg.err != nil {
				fmt.Fprintf(stdout, "batch %s..%s of shard %s (arrived %s to %s): %v\n", b.StartSequenceNumber, b.EndSequenceNumber, b.ShardID, b.ApproximateArrivalOfFirstRecord, b.ApproximateArrivalOfLastRecord, msg.err)
			} else {
				fmt.Fprintf(stdout, "batch %s..%s of shard %s: %d reports' cases: %s\n", b.StartSequenceNumber, b.EndSequenceNumber, b.ShardID, b.BatchSize, strings.Join(msg.cases, " "))
			}
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		fmt.Fprintln(stdout, "the queue holds no on-failure records")
		return nil
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.cases...)
	}
	failed := map[string]error{}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		if err := recountIncluding(ctx, rc, id, reports[id], stdout); err != nil {
			failed[id] = err
		}
	}
	var errs []error
	deleted := 0
	for _, m := range msgs {
		ok := m.err == nil
		for _, id := range m.cases {
			if failed[id] != nil {
				ok = false
			}
		}
		if m.err != nil {
			errs = append(errs, m.err)
		}
		if !ok || isDryRun(rc) {
			// Back in the queue at once, for the next run.
			_, _ = src.Queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(src.QueueURL), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: 0})
			continue
		}
		if _, err := src.Queue.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(src.QueueURL), ReceiptHandle: aws.String(m.receipt)}); err != nil {
			errs = append(errs, fmt.Errorf("delete a handled message: %w", err))
			continue
		}
		deleted++
	}
	for _, err := range failed {
		errs = append(errs, err)
	}
	fmt.Fprintf(stdout, "%d on-failure records: %d handled and deleted, %d left in the queue\n", len(msgs), deleted, len(msgs)-deleted)
	if n := len(msgs) - deleted; n > 0 && !isDryRun(rc) {
		errs = append(errs, fmt.Errorf("%d on-failure records left in the queue", n))
	}
	return errors.Join(errs...)
}

func isDryRun(rc Recounter) bool {
	r, ok := rc.(*aggregate.Recounter)
	return ok && r.DryRun
}

// cases reads the batch's records from the stream, from its first sequence
// number to its last, and returns the report ids of its report inserts by
// case.
func (src *failureSource) cases(ctx context.Context, info streampoll.FailureInfo) (map[string][]string, error) {
	b := info.DDBStreamBatchInfo
	it, err := src.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(b.StreamArn), ShardId: aws.String(b.ShardID),
		ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(b.StartSequenceNumber),
	})
	if err != nil {
		return nil, streamErr(err)
	}
	end := aggregate.PadSeq(b.EndSequenceNumber)
	seen := map[string][]string{}
	iter := it.ShardIterator
	first := true
	for empty := 0; iter != nil && empty < 10; {
		out, err := src.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
		if err != nil {
			return nil, streamErr(err)
		}
		if len(out.Records) == 0 {
			empty++
		}
		for _, r := range out.Records {
			d := r.Dynamodb
			seq := aggregate.PadSeq(aws.ToString(d.SequenceNumber))
			if first && seq != aggregate.PadSeq(b.StartSequenceNumber) {
				// The batch's first record was trimmed already.
				return nil, ErrRecordsGone
			}
			first = false
			if seq > end {
				return seen, nil
			}
			if r.EventName != streamtypes.OperationTypeInsert {
				continue
			}
			typ, _ := d.NewImage[reportstore.AttrType].(*streamtypes.AttributeValueMemberS)
			id, _ := d.NewImage["case_id"].(*streamtypes.AttributeValueMemberS)
			rep, _ := d.NewImage["report_id"].(*streamtypes.AttributeValueMemberS)
			if typ != nil && typ.Value == reportstore.TypeReport && id != nil {
				ids := seen[id.Value]
				if rep != nil {
					ids = append(ids, rep.Value)
				}
				seen[id.Value] = ids
			}
			if seq == end {
				return seen, nil
			}
		}
		iter = out.NextShardIterator
	}
	if first {
		return nil, ErrRecordsGone
	}
	return nil, fmt.Errorf("the stream ended before the batch's last record %s", b.EndSequenceNumber)
}

// streamErr turns the Streams API's errors for data past the trim horizon or
// a shard that no longer exists into ErrRecordsGone
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
func streamErr(err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var gone *streamtypes.ResourceNotFoundException
	if errors.As(err, &trimmed) || errors.As(err, &gone) {
		return fmt.Errorf("%w: %v", ErrRecordsGone, err)
	}
	return fmt.Errorf("read the stream: %w", err)
}
