package alert

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/casestore"
)

// GroupDigest is one message listing a desk's held copies.
type GroupDigest struct {
	ContactPoint string
	// ID is the digest's alert id (DigestID).
	ID    string
	Items []Held
	// Remaining is how many held copies wait for the next digest.
	Remaining int
	// Wait and Interval are the desk's grouping settings, said in the
	// email.
	Wait, Interval time.Duration
}

// Severity is the worst severity the digest lists (low with none): SMS
// filter policies compare it with each desk's minimum, so a digest
// reaches a desk's phones only when one of its cases would have.
func (d *GroupDigest) Severity() casestore.Severity {
	best := 0
	for _, x := range d.Items {
		best = max(best, slices.Index(casestore.Severities, x.Severity))
	}
	return casestore.Severities[best]
}

// GroupPayload is the JSON message of a digest for https and SQS
// subscribers: every case it lists, once.
type GroupPayload struct {
	AlertID      string `json:"alert_id"`
	ContactPoint string `json:"contact_point"`
	Kind         Kind   `json:"kind"`
	Severity     string `json:"severity"`
	CaseCount    int    `json:"case_count"`
	Cases        []Held `json:"cases"`
	// Remaining is how many more cases the next digest lists.
	Remaining int    `json:"remaining"`
	Subject   string `json:"subject"`
	Email     string `json:"email"`
	SMS       string `json:"sms"`
}

// RenderGroup builds a digest's texts: a subject saying how many cases
// and the worst severity (plain ASCII, at most MaxSubject), an email
// listing each case once with its level change, an SMS of one segment
// saying how many and the worst, and the JSON payload. When it lists a
// protected case, the subject and the SMS say ProtectedNotice, the email
// says it under each such case, and the JSON marks each case's
// protected, as the copy alone would have.
func RenderGroup(d *GroupDigest) (Message, error) {
	n := len(d.Items)
	worst := d.Severity()
	cp := ASCII(d.ContactPoint)
	counts := kindCounts(d.Items)
	protected := 0
	for _, x := range d.Items {
		if x.Protected {
			protected++
		}
	}
	var m Message
	if protected == 0 {
		m.Subject = truncate(fmt.Sprintf("[Flagline] Digest: %s for %s (%s), worst %s", plural(n, "case"), cp, counts, worst), MaxSubject, "...")
		m.SMS = truncate(fmt.Sprintf("Flagline: %s for %s, worst %s. See email.", plural(n, "case"), cp, worst), 160, "...")
		if !fits(m.SMS) {
			m.SMS = fmt.Sprintf("Flagline: %s, worst %s. See email.", plural(n, "case"), worst)
		}
	} else {
		// The notice never gives way: the counts go first, then the desk
		// (the last forms fit whatever the desk's name, with up to
		// MaxGroupCases cases).
		notice := "; " + ProtectedNotice
		for _, s := range []string{
			fmt.Sprintf("[Flagline] Digest: %s for %s (%s), worst %s", plural(n, "case"), cp, counts, worst),
			fmt.Sprintf("[Flagline] Digest: %s for %s, worst %s", plural(n, "case"), cp, worst),
			fmt.Sprintf("[Flagline] Digest: %s, worst %s", plural(n, "case"), worst),
		} {
			if m.Subject = s + notice; len(m.Subject) <= MaxSubject {
				break
			}
		}
		for _, s := range []string{
			fmt.Sprintf("Flagline: %s for %s, worst %s", plural(n, "case"), cp, worst),
			fmt.Sprintf("Flagline: %s, worst %s", plural(n, "case"), worst),
		} {
			if m.SMS = fmt.Sprintf("%s; %d protected (%s). See email.", s, protected, ProtectedNotice); fits(m.SMS) {
				break
			}
		}
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("DIGEST: %s FOR %s", strings.ToUpper(plural(n, "case")), strings.ToUpper(cp))
	line("")
	line("These alerts were held and are sent together (first held %s; grouping: wait %s, then at most one message per %s).",
		minute(d.Items[0].HeldAt), d.Wait, d.Interval)
	line("Worst severity: %s. %s.", worst, counts)
	if protected > 0 {
		line("%d protected (%s): marked PROTECTED below.", protected, ProtectedNotice)
	}
	line("")
	for _, x := range d.Items {
		change := fmt.Sprintf("level %d", x.Level)
		switch {
		case x.Kind == KindReopened:
			change = "reopened, level " + strconv.Itoa(x.Level)
		case x.Kind == KindProtected:
			change = "now protected, level " + strconv.Itoa(x.Level)
		case x.FromLevel > 0 && x.FromLevel != x.Level:
			change = fmt.Sprintf("level %d -> %d", x.FromLevel, x.Level)
		}
		for_ := ""
		if x.SilencedFor != "" {
			for_ = "  [for " + ASCII(x.SilencedFor) + ", silenced]"
		}
		line("- [%s] case %s  %s, %s, %s, %s, %s%s", x.Severity, ASCII(x.CaseID), x.Kind, change,
			orNone(listLabel(asciiList(x.Countries), 6)), ASCII(x.Category), plural(x.Reports, "report"), for_)
		line("  %s", truncateBytes(ASCII(x.CanonicalURL), maxURLBytes, "..."))
		if x.Protected {
			by := ""
			if x.ProtectedBy != "" {
				by = ": " + truncate(oneLine(x.ProtectedBy), maxPlatformRunes, "...")
			}
			line("  %s%s.", protectedHeadline, by)
		}
	}
	if d.Remaining > 0 {
		line("")
		line("%s more held: they follow in the next digest.", plural(d.Remaining, "case"))
	}
	line("")
	line("Alert id: %s", d.ID)
	m.Email = b.String()
	p := GroupPayload{
		AlertID: d.ID, ContactPoint: d.ContactPoint, Kind: KindDigest, Severity: string(worst),
		CaseCount: n, Cases: d.Items, Remaining: d.Remaining, Subject: m.Subject, Email: m.Email, SMS: m.SMS,
	}
	if p.Cases == nil {
		p.Cases = []Held{}
	}
	body, err := marshal(p)
	if err != nil {
		return Message{}, fmt.Errorf("render digest %s: %w", d.ID, err)
	}
	m.Default = string(body)
	return m, nil
}

// kindCounts says how many of each kind: "3 new, 9 update".
func kindCounts(items []Held) string {
	var parts []string
	for _, k := range Kinds {
		if n := len(slices.DeleteFunc(slices.Clone(items), func(x Held) bool { return x.Kind != k })); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}

// GroupPublishInput is the SNS Publish of a digest to its desk:
// contact_point (its filter policies match it), kind digest, alert_id,
// severity (the worst: SMS filter policies), level (the highest), case_id
// (the first listed), country (every country listed) and AttrSMSType
// Transactional. A message over MaxMessageBytes gives ErrTooLarge.
func GroupPublishInput(topicARN string, d *GroupDigest, m Message) (*sns.PublishInput, error) {
	body, err := m.JSON()
	if err != nil {
		return nil, fmt.Errorf("digest %s: message: %w", d.ID, err)
	}
	var countries []string
	level := 0
	for _, x := range d.Items {
		level = max(level, x.Level)
		for _, c := range x.Countries {
			if !slices.Contains(countries, c) {
				countries = append(countries, c)
			}
		}
	}
	slices.Sort(countries)
	cs, err := marshal(nonNil(countries))
	if err != nil {
		return nil, err
	}
	attrs := map[string]snstypes.MessageAttributeValue{
		AttrContactPoint: str(d.ContactPoint),
		AttrKind:         str(string(KindDigest)),
		AttrAlertID:      str(d.ID),
		AttrSeverity:     str(string(d.Severity())),
		AttrCountry:      {DataType: aws.String("String.Array"), StringValue: aws.String(string(cs))},
		AttrLevel:        {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(level))},
		AttrSMSType:      str(SMSTypeTransactional),
	}
	if len(d.Items) > 0 {
		attrs[AttrCaseID] = str(d.Items[0].CaseID)
	}
	size := len(body) + len(m.Subject)
	for name, v := range attrs {
		size += len(name) + len(*v.DataType) + len(*v.StringValue)
	}
	if size > MaxMessageBytes {
		return nil, fmt.Errorf("%w: digest %s is %d bytes", ErrTooLarge, d.ID, size)
	}
	return &sns.PublishInput{
		TopicArn:          aws.String(topicARN),
		Message:           aws.String(body),
		MessageStructure:  aws.String("json"),
		Subject:           aws.String(m.Subject),
		MessageAttributes: attrs,
	}, nil
}
