package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/protect"
)

func init() {
	commands["protect"] = command{summary: "store the humanitarian allow-list (content never sent for takedown)", run: runProtect}
}

const protectUsage = `usage: flagline protect apply --file humanitarian.yaml --table NAME [--dry-run] [--rate N]
       flagline protect show [--table NAME | --file humanitarian.yaml]
       flagline protect validate --file humanitarian.yaml

apply stores the humanitarian allow-list in the table: cases whose content
is a listed source's (a domain, an account path, a platform handle) are
marked protected; their alerts say "humanitarian source: do not request
takedown", and takedown_requested on them is refused unless the EU
coordinator sends an override_reason. The plan (entries added and removed)
is printed first; with --dry-run nothing is changed. The file replaces the
stored list as a whole. Cases created from then on are marked by the
aggregate function; the cases already in the table are marked by apply
itself, which reads them with a Scan paced at --rate items a second and
prints each case it marks (those whose takedown was already requested are
named, for the desk to withdraw it). A case is never unmarked. Applying
the same file again stores nothing and marks only what the last apply
missed (a case created while it ran). See humanitarian.example.yaml for
the format.

show prints the stored list (--table), or what a file protects (--file),
one entry a line in canonical form. validate checks a file without AWS.

The file may also be given as the one argument instead of --file. AWS
credentials, region and endpoint come from the standard chain (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL for moto).

flags:
`

func runProtect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "subcommand", protectUsage, stderr, "apply", "show", "validate")
	if err != nil {
		return err
	}
	o, err := parseProtectFlags(sub, args[1:], stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "apply":
		l, err := protect.Load(o.file)
		if err != nil {
			return err
		}
		db, err := dynamoDB(ctx)
		if err != nil {
			return err
		}
		if _, err := protect.Apply(ctx, db, o.table, l, o.dryRun, time.Now(), stdout); err != nil {
			return err
		}
		m := &marker{DB: db, Table: o.table, List: protect.NewMatcher(l.Rules), Rate: o.rate, DryRun: o.dryRun}
		res, err := m.Run(ctx)
		res.print(stdout, o.table, o.dryRun)
		if err != nil {
			return fmt.Errorf("mark the existing cases: %w (the list is stored and what was marked stays; apply again)", err)
		}
		return nil
	case "validate":
		l, err := protect.Load(o.file)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d entries, valid.\n", o.file, len(l.Rules))
		return nil
	}
	if o.file != "" {
		l, err := protect.Load(o.file)
		if err != nil {
			return err
		}
		printRules(stdout, l.Rules)
		return nil
	}
	db, err := dynamoDB(ctx)
	if err != nil {
		return err
	}
	s, err := protect.Read(ctx, db, o.table, true)
	if err != nil {
		return err
	}
	if s.Version == 0 {
		fmt.Fprintf(stdout, "No humanitarian list is stored in %s: no case is protected.\n", o.table)
		return nil
	}
	fmt.Fprintf(stdout, "Version %d, applied %s, %d entries:\n", s.Version, s.UpdatedAt.UTC().Format(time.RFC3339), len(s.Rules))
	printRules(stdout, s.Rules)
	return nil
}

func printRules(w io.Writer, rules []protect.Rule) {
	for _, n := range protect.Names(rules) {
		fmt.Fprintln(w, n)
	}
}

// protectOptions are the parsed flags of a protect subcommand.
type protectOptions struct {
	file, table string
	dryRun      bool
	rate        int
}

func parseProtectFlags(sub string, args []string, stderr io.Writer) (*protectOptions, error) {
	o := &protectOptions{}
	fs := newFlagSet("protect "+sub, protectUsage, stderr)
	fs.StringVar(&o.file, "file", "", "humanitarian allow-list `file`, e.g. humanitarian.yaml")
	if sub != "validate" {
		tableFlag(fs, &o.table)
	}
	if sub == "apply" {
		fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and the cases it would mark, and change nothing")
		fs.IntVar(&o.rate, "rate", defaultMarkRate, "most table items to read per second when marking the existing cases")
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 1:
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(1))}
	case fs.NArg() == 1 && o.file != "":
		return nil, usageError{fmt.Errorf("the file is given twice: --file %s and %s", o.file, fs.Arg(0))}
	case fs.NArg() == 1:
		o.file = fs.Arg(0)
	}
	if o.file != "" {
		if _, err := os.Stat(o.file); err != nil {
			return nil, usageError{fmt.Errorf("--file: %w", err)}
		}
	}
	needTable := sub == "apply" || (sub == "show" && o.file == "")
	var missing missingFlags
	missing.need(o.file != "" || sub == "show", "--file")
	missing.need(!needTable || resolveTable(&o.table), missingTable)
	if err := missing.err(); err != nil {
		return nil, err
	}
	if sub == "apply" && o.rate < 1 {
		return nil, usageError{errors.New("--rate must be at least 1")}
	}
	return o, nil
}

// defaultMarkRate is protect apply's --rate default, in items read per
// second: ten times reindex's, as the list is stored before the Scan and
// the cases it should protect wait for it (a million items: about 35
// minutes). The table is on demand (template.yaml), and 500 items of a
// few hundred bytes a second are some 50 eventually consistent read units.
const defaultMarkRate = 500

// MarkDB is the part of the DynamoDB client marking the existing cases
// uses.
type MarkDB interface {
	Scanner
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ MarkDB = (*dynamodb.Client)(nil)

// markAttributes are what marking reads of a case item.
var markAttributes = []string{"pk", "case_id", "canonical_url", "status", "protected", "protected_by", "override_reason", "due_kind"}

// markAttempts bounds the tries of one case's mark that a desk's action
// on the same case holds up: DynamoDB refuses an UpdateItem on an item a
// transaction is writing with TransactionConflictException, which the
// SDK's retryer does not retry
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
const markAttempts = 5

// marker marks protected the cases already in Table that List protects:
// the aggregate function marks a case only when it creates it, so a case
// created before its source was listed would otherwise stay open to a
// takedown request.
type marker struct {
	DB     MarkDB
	Table  string
	List   *protect.Matcher
	Rate   int
	DryRun bool

	// Now and Sleep pace the Scan; nil: the clock.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// markedCase is a case marking protected (or, dry run, would).
// StoppedClock: its takedown was requested, with no override, and its
// takedown deadline was stopped, so no desk is reminded of a takedown the
// notice says not to pursue (or, dry run, would be).
type markedCase struct {
	ID, Status, CanonicalURL, By string
	StoppedClock                 bool
}

// markResult is what marking did.
type markResult struct {
	Scanned, Cases int
	Marked         []markedCase
}

// Run scans the table and marks each matching case that is not protected
// yet. The mark is one UpdateItem on the condition that the case exists
// and is still unprotected, so a case marked meanwhile keeps its
// protected_by and a deleted one is not written back. It sets protected
// and protected_by, and for a case awaiting the answer to a takedown
// request made without the EU coordinator's override it also stops that
// takedown deadline (the escalate function would otherwise remind its
// desks of the takedown, then escalate it), on the condition that the case
// still awaits it. Run stops at the first error and returns what it did.
func (m *marker) Run(ctx context.Context) (markResult, error) {
	var res markResult
	if m.List.Len() == 0 {
		return res, nil
	}
	scan := &caseScan{DB: m.DB, Table: m.Table, Attributes: markAttributes, Rate: m.Rate, Now: m.Now, Sleep: m.Sleep}
	var err error
	res.Scanned, err = scan.Run(ctx, func(item map[string]types.AttributeValue) error {
		res.Cases++
		var c casestore.Case
		if err := attributevalue.UnmarshalMap(item, &c); err != nil {
			return fmt.Errorf("decode case item: %w", err)
		}
		if c.Protected {
			return nil
		}
		rule, ok := m.List.Match(c.CanonicalURL)
		if !ok {
			return nil
		}
		if c.ID == "" {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			if pk == nil {
				return errors.New("case item without case_id or pk")
			}
			c.ID = strings.TrimPrefix(pk.Value, casestore.Key(""))
		}
		mc := markedCase{ID: c.ID, Status: c.Status, CanonicalURL: c.CanonicalURL, By: rule.By()}
		if mc.Status == "" {
			mc.Status = casestore.StatusOpen
		}
		stop := c.Status == casestore.StatusTakedownRequested && c.OverrideReason == "" && c.DueKind == deadline.KindTakedown
		if m.DryRun {
			mc.StoppedClock = stop
			res.Marked = append(res.Marked, mc)
			return nil
		}
		marked, err := m.mark(ctx, c.ID, mc.By, stop)
		if err == nil && !marked && stop {
			// The case moved on since the Scan: mark it without the clock.
			marked, err = m.mark(ctx, c.ID, mc.By, false)
			stop = false
		}
		if err != nil || !marked {
			return err
		}
		mc.StoppedClock = stop
		res.Marked = append(res.Marked, mc)
		return nil
	})
	return res, err
}

// mark marks case id protected by by, and with stopClock stops its
// takedown deadline, on the conditions Run says. false: the conditions no
// longer hold (marked by another apply, deleted, or no longer awaiting the
// takedown's answer with stopClock).
func (m *marker) mark(ctx context.Context, id, by string, stopClock bool) (bool, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(m.Table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
			"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
		UpdateExpression:         aws.String("SET #protected = :true, protected_by = :by"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(#protected)"),
		ExpressionAttributeNames: map[string]string{"#protected": "protected"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true": &types.AttributeValueMemberBOOL{Value: true},
			":by":   &types.AttributeValueMemberS{Value: by},
		},
	}
	if stopClock {
		*in.UpdateExpression += " REMOVE " + strings.Join([]string{deadline.AttrDueAt, deadline.AttrDueShard, "#due_kind", deadline.AttrReminders}, ", ")
		*in.ConditionExpression += " AND #status = :requested AND attribute_not_exists(override_reason) AND #due_kind = :takedown"
		in.ExpressionAttributeNames["#status"] = "status"
		in.ExpressionAttributeNames["#due_kind"] = deadline.AttrDueKind
		in.ExpressionAttributeValues[":requested"] = &types.AttributeValueMemberS{Value: casestore.StatusTakedownRequested}
		in.ExpressionAttributeValues[":takedown"] = &types.AttributeValueMemberS{Value: deadline.KindTakedown}
	}
	for attempt := 0; ; attempt++ {
		_, err := m.DB.UpdateItem(ctx, in)
		var (
			ccf      *types.ConditionalCheckFailedException
			conflict *types.TransactionConflictException
		)
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &ccf):
			return false, nil
		case errors.As(err, &conflict) && attempt+1 < markAttempts:
			// A desk's action on the case is being written: try again.
			if err := ddbbatch.Sleep(ctx, ddbbatch.Backoff(attempt)); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("mark case %s protected: %w", id, err)
		}
	}
}

func (r markResult) print(w io.Writer, table string, dryRun bool) {
	verb := "Marked"
	if dryRun {
		verb = "Would mark"
	}
	fmt.Fprintf(w, "Existing cases in %s: read %d items, %d cases. %s %d protected.\n", table, r.Scanned, r.Cases, verb, len(r.Marked))
	requested, stopped := 0, 0
	for _, c := range r.Marked {
		fmt.Fprintf(w, "  %s  %-18s  %s  %s\n", c.ID, c.Status, c.CanonicalURL, c.By)
		if c.Status == casestore.StatusTakedownRequested {
			requested++
		}
		if c.StoppedClock {
			stopped++
		}
	}
	if requested > 0 {
		fmt.Fprintf(w, "%d of them already have a takedown requested: the requesting desk should withdraw it and record the case as a false positive.\n", requested)
	}
	if stopped > 0 {
		verb := "Stopped"
		if dryRun {
			verb = "Would stop"
		}
		fmt.Fprintf(w, "%s the takedown deadline of %d: no reminder or escalation will chase those takedowns.\n", verb, stopped)
	}
}
