package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Clients are the AWS clients Apply uses.
type Clients struct {
	SNS      TopicAPI
	DynamoDB TableAPI
}

// Target is what the directory is applied to.
type Target struct {
	// TopicARN is the alerts topic. Every subscription on it is managed:
	// one that no contact point declares is removed.
	TopicARN string
	// Table is the Flagline table that keeps the directory entries; empty
	// to leave the table alone.
	Table string
	// DLQARN is the SQS queue that keeps what SNS could not deliver; empty
	// for none.
	DLQARN string
}

// Check checks the form of the target's ARNs.
func (t Target) Check() error {
	if err := CheckTopicARN(t.TopicARN); err != nil {
		return fmt.Errorf("topic %q: %w", t.TopicARN, err)
	}
	if t.DLQARN != "" {
		if err := CheckQueueARN(t.DLQARN); err != nil {
			return fmt.Errorf("dead-letter queue %q: %w", t.DLQARN, err)
		}
	}
	return nil
}

// Plan is what Apply would change, and after Apply what it did.
type Plan struct {
	Target        Target
	ContactPoints int
	Subscriptions []SubscriptionChange
	// Entries is empty when the target has no table.
	Entries []EntryChange

	stored       *storedDirectory
	desired      []string // ids of the file's contact points
	rewriteIndex bool     // the index lists other ids than the file's
}

// NewPlan reads the topic's subscriptions and the table's directory entries
// and plans the changes that make them match d. It changes nothing.
func NewPlan(ctx context.Context, c Clients, t Target, d *Directory) (*Plan, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	current, err := CurrentSubscriptions(ctx, c.SNS, t.TopicARN)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Target:        t,
		ContactPoints: len(d.ContactPoints),
		Subscriptions: DiffSubscriptions(current, d.Subscriptions(t.DLQARN)),
	}
	for _, cp := range d.ContactPoints {
		p.desired = append(p.desired, cp.ID)
	}
	slices.Sort(p.desired)
	if t.Table == "" {
		return p, nil
	}
	p.stored, err = readStored(ctx, c.DynamoDB, t.Table, p.desired)
	if err != nil {
		return nil, err
	}
	p.Entries = DiffEntries(p.stored.entries, d.ContactPoints)
	indexed := slices.Sorted(slices.Values(p.stored.indexed))
	p.rewriteIndex = p.stored.version == 0 || !slices.Equal(indexed, p.desired)
	return p, nil
}

func (p *Plan) desiredIDs() []string { return slices.Clone(p.desired) }

// Count returns how many subscriptions the plan gives action a.
func (p *Plan) Count(a Action) int {
	n := 0
	for _, c := range p.Subscriptions {
		if c.Action == a {
			n++
		}
	}
	return n
}

// EntryCount returns how many directory entries the plan gives action a.
func (p *Plan) EntryCount(a Action) int {
	n := 0
	for _, c := range p.Entries {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Empty reports whether the plan changes nothing. Pending subscriptions
// are not changes: nothing can be done to them.
func (p *Plan) Empty() bool {
	return p.Count(Create)+p.Count(Update)+p.Count(Delete) == 0 &&
		p.EntryCount(Create)+p.EntryCount(Update)+p.EntryCount(Delete) == 0 &&
		!p.rewriteIndex
}

// WriteTo prints the plan for an operator: one line per change, then the
// counts. Addresses are printed in full: operators need to see them, and
// the directory holds no secrets (URLs with credentials are refused).
func (p *Plan) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Topic %s", p.Target.TopicARN)
	if p.Target.DLQARN != "" {
		fmt.Fprintf(&b, ", dead-letter queue %s", p.Target.DLQARN)
	}
	fmt.Fprintf(&b, "\n%s, %s", plural(p.ContactPoints, "contact point"), plural(len(p.Subscriptions)-p.undeclared(), "endpoint"))
	if p.Target.Table != "" {
		fmt.Fprintf(&b, ", entries in table %s", p.Target.Table)
	}
	b.WriteString("\n\n")

	lines := 0
	for _, c := range p.Subscriptions {
		if l := c.line(); l != "" {
			b.WriteString(l + "\n")
			lines++
		}
	}
	for _, c := range p.Entries {
		if l := c.line(); l != "" {
			b.WriteString(l + "\n")
			lines++
		}
	}
	for _, c := range p.Subscriptions {
		if l := c.unauthenticatedLine(); l != "" {
			b.WriteString(l + "\n")
			lines++
		}
	}
	if p.rewriteIndex && p.EntryCount(Create)+p.EntryCount(Update)+p.EntryCount(Delete) == 0 {
		// Entry changes rewrite the index anyway; alone, it is worth a line.
		fmt.Fprintf(&b, "~ write directory index %s/%s: [%s]\n", IndexKey, IndexSortKey, strings.Join(p.desired, " "))
		lines++
	}
	if lines > 0 {
		b.WriteByte('\n')
	}

	fmt.Fprintf(&b, "Plan: %d to create, %d to update, %d to delete, %d unchanged",
		p.Count(Create), p.Count(Update), p.Count(Delete), p.Count(Unchanged))
	if n := p.Count(Pending); n > 0 {
		fmt.Fprintf(&b, ", %d pending confirmation", n)
	}
	if n := p.Unauthenticated(); n > 0 {
		fmt.Fprintf(&b, ", %d confirmed without authentication", n)
	}
	b.WriteString(".\n")
	if p.Target.Table != "" {
		fmt.Fprintf(&b, "Directory: %d to add, %d to change, %d to remove, %d unchanged.\n",
			p.EntryCount(Create), p.EntryCount(Update), p.EntryCount(Delete), p.EntryCount(Unchanged))
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func (p *Plan) undeclared() int {
	n := 0
	for _, c := range p.Subscriptions {
		if !c.Declared() {
			n++
		}
	}
	return n
}

// line is the plan line of a subscription change; "" for unchanged.
func (c SubscriptionChange) line() string {
	s := c.subject()
	who := "(not in the directory)"
	if c.Declared() {
		who = "(" + c.Want.ContactPoint + ")"
	}
	switch c.Action {
	case Create:
		// The dead-letter queue, the same for all, is in the heading.
		return fmt.Sprintf("+ create %s %s %s filter %s", s.Protocol, s.Endpoint, who, s.FilterPolicy)
	case Update:
		var diffs []string
		for _, name := range c.Changed {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", attrLabel[name], show(c.Have.attribute(name)), show(c.Want.attribute(name))))
		}
		return fmt.Sprintf("~ update %s %s %s %s", s.Protocol, s.Endpoint, who, strings.Join(diffs, "; "))
	case Delete:
		return fmt.Sprintf("- delete %s %s %s %s", s.Protocol, s.Endpoint, who, s.ARN)
	case Pending:
		if c.Declared() {
			return fmt.Sprintf("? pending %s %s %s: awaiting confirmation by its owner; SNS allows no change until then (apply again once confirmed)", s.Protocol, s.Endpoint, who)
		}
		return fmt.Sprintf("? pending %s %s %s: awaiting confirmation; it cannot be unsubscribed before it is confirmed, and lapses if it never is", s.Protocol, s.Endpoint, who)
	}
	return ""
}

// Unauthenticated counts the declared subscriptions confirmed without
// authentication.
func (p *Plan) Unauthenticated() int {
	n := 0
	for _, c := range p.Subscriptions {
		if c.unauthenticatedLine() != "" {
			n++
		}
	}
	return n
}

// unauthenticatedLine warns of a declared subscription that was confirmed
// by opening its link; "" for any other.
func (c SubscriptionChange) unauthenticatedLine() string {
	if !c.Declared() || !c.Have.Unauthenticated || (c.Action != Unchanged && c.Action != Update) {
		return ""
	}
	return fmt.Sprintf("! unauthenticated %s %s (%s) %s: confirmed by opening its link, so the unsubscribe link in any of its alert emails removes it; "+
		"unsubscribe it (aws sns unsubscribe --subscription-arn %s), apply again, and confirm the new link with flagline contacts confirm",
		c.Have.Protocol, c.Have.Endpoint, c.Want.ContactPoint, c.Have.ARN, c.Have.ARN)
}

var attrLabel = map[string]string{
	attrFilterPolicyScope:  "scope",
	attrFilterPolicy:       "filter",
	attrRedrivePolicy:      "redrive",
	attrRawMessageDelivery: "raw delivery",
}

func show(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// line is the plan line of an entry change; "" for unchanged.
func (c EntryChange) line() string {
	switch c.Action {
	case Create:
		l := fmt.Sprintf("+ add contact %s: %s [%s]", c.ID, c.Want.Name, strings.Join(c.Want.Countries, " "))
		if c.Want.GroupWait != 0 {
			l += " group_wait " + showDuration(c.Want.GroupWait)
		}
		if c.Want.GroupInterval != 0 {
			l += " group_interval " + showDuration(c.Want.GroupInterval)
		}
		return l
	case Update:
		// A grouping setting shows its old and new values: it changes no
		// filter policy, so no subscription line shows it.
		changed := slices.Clone(c.Changed)
		for i, name := range changed {
			switch name {
			case "group_wait":
				changed[i] = fmt.Sprintf("group_wait %s -> %s", showGroupSetting(c.Have.GroupWait), showGroupSetting(c.Want.GroupWait))
			case "group_interval":
				changed[i] = fmt.Sprintf("group_interval %s -> %s", showGroupSetting(c.Have.GroupInterval), showGroupSetting(c.Want.GroupInterval))
			}
		}
		return fmt.Sprintf("~ change contact %s (%s)", c.ID, strings.Join(changed, ", "))
	case Delete:
		return fmt.Sprintf("- remove contact %s", c.ID)
	}
	return ""
}

// showGroupSetting is a grouping setting in a plan line; "default" for
// the deployment's.
func showGroupSetting(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return showDuration(d)
}

// Apply makes the plan's changes: it subscribes and updates first, so that
// an endpoint being replaced keeps receiving alerts until its successor
// exists; it unsubscribes and writes the table only if all of that worked.
// Changes made are marked Done, and a later plan picks up what is left.
func (p *Plan) Apply(ctx context.Context, c Clients) error {
	return p.apply(ctx, c, time.Now())
}

func (p *Plan) apply(ctx context.Context, c Clients, now time.Time) error {
	var errs []error
	for _, a := range []Action{Create, Update} {
		for i := range p.Subscriptions {
			if ch := &p.Subscriptions[i]; ch.Action == a {
				if err := ctx.Err(); err != nil {
					return errors.Join(append(errs, err)...)
				}
				if err := applySubscription(ctx, c.SNS, p.Target.TopicARN, ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("not deleting %d subscription(s) nor writing the directory table until every subscription is in place", p.Count(Delete)))
		return errors.Join(errs...)
	}
	for i := range p.Subscriptions {
		if ch := &p.Subscriptions[i]; ch.Action == Delete {
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := applySubscription(ctx, c.SNS, p.Target.TopicARN, ch); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if p.Target.Table == "" {
		return nil
	}
	return writeEntries(ctx, c.DynamoDB, p.Target.Table, p, now)
}

// Options control Apply.
type Options struct {
	// DryRun plans and prints, and changes nothing.
	DryRun bool
	// Out, if not nil, receives the plan and then what was done.
	Out io.Writer
}

// Apply reconciles the topic's subscriptions and the table's directory
// entries with d: it plans, prints the plan to o.Out, and applies it
// unless o.DryRun. The plan returned records what was done; with an error
// it may be partly applied, and applying again finishes the job.
func Apply(ctx context.Context, c Clients, t Target, d *Directory, o Options) (*Plan, error) {
	p, err := NewPlan(ctx, c, t, d)
	if err != nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if _, err := p.WriteTo(out); err != nil {
		return p, fmt.Errorf("print plan: %w", err)
	}
	switch {
	case p.Empty():
		fmt.Fprintln(out, "No changes: the topic and the directory match the file.")
		return p, nil
	case o.DryRun:
		fmt.Fprintln(out, "Dry run: nothing was changed.")
		return p, nil
	}
	err = p.Apply(ctx, c)
	fmt.Fprintln(out, p.summary())
	if err == nil {
		for _, note := range p.notes() {
			fmt.Fprintln(out, note)
		}
	}
	return p, err
}

// summary says what was done.
func (p *Plan) summary() string {
	done := func(a Action) int {
		n := 0
		for _, c := range p.Subscriptions {
			if c.Action == a && c.Done {
				n++
			}
		}
		return n
	}
	s := fmt.Sprintf("Applied: %d created, %d updated, %d deleted", done(Create), done(Update), done(Delete))
	if p.Target.Table != "" {
		n := map[Action]int{}
		for _, c := range p.Entries {
			if c.Done {
				n[c.Action]++
			}
		}
		s += fmt.Sprintf("; directory: %d added, %d changed, %d removed", n[Create], n[Update], n[Delete])
	}
	return s + "."
}

// notes are what an operator should know after an apply.
func (p *Plan) notes() []string {
	var notes []string
	confirm := 0
	for _, c := range p.Subscriptions {
		if c.Action == Create && (c.Want.Protocol == Email || c.Want.Protocol == HTTPS) {
			confirm++
		}
	}
	if confirm > 0 {
		notes = append(notes, strconv.Itoa(confirm)+" new email/https subscription(s) receive nothing until their owners confirm them (SNS sends the confirmation request). "+
			"Ask each email owner to forward the confirmation link to you without opening it, and confirm it with: flagline contacts confirm 'LINK'.")
	}
	if p.Count(Create)+p.Count(Update) > 0 {
		notes = append(notes, "SNS can take up to 15 minutes to enforce new or changed filter policies.")
	}
	return notes
}
