// Package contacts is the contact directory as code: a YAML file lists the
// national contact points and the EU coordinator, and Apply reconciles the
// alerts topic's subscriptions (and the directory entries in the table) with
// it, like kubectl apply with pruning. The topic is managed entirely by the
// file: a subscription no contact point declares is removed.
//
// Delivery is SNS's job. The alert function reads the stored directory,
// picks the contact points whose countries a case concerns, and publishes
// one message per recipient with a "contact_point" attribute and a
// "severity"; each subscription's filter policy picks its own contact
// point's messages, and SMS subscriptions only those at or above the
// contact point's SMS threshold.
package contacts

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/yamlfile"
)

// Protocol is an SNS subscription protocol.
type Protocol string

// Protocols a contact point's endpoint may use.
const (
	Email Protocol = "email"
	SMS   Protocol = "sms"
	HTTPS Protocol = "https"
	SQS   Protocol = "sqs"
)

// DefaultSMSMinSeverity is the SMS threshold when a contact point sets none:
// a text message wakes someone up, so only urgent cases send one.
const DefaultSMSMinSeverity = casestore.High

// Bounds of a contact point's grouping settings. A group_wait of 0s sends
// a desk's held alerts at the next flush; a group_interval needs at least
// a second between two digests.
const (
	MinGroupWait     = 0
	MaxGroupWait     = time.Hour
	MinGroupInterval = time.Second
	MaxGroupInterval = time.Hour
)

// NoGroupWait is what an explicit `group_wait: 0s` is stored as. A zero
// GroupWait means "the deployment's default", so "do not wait" needs a
// value of its own: the shortest positive wait, which makes a desk's held
// alerts due at once, so they go out at the next flush.
const NoGroupWait = time.Nanosecond

// Coordinator is the pseudo-country of the EU-level coordinator: alerts for
// cases without a country, and critical ones, carry it.
const Coordinator = "EU"

// Countries are the codes a contact point may answer for: the ISO 3166-1
// alpha-2 codes of the EU and EEA states, and Coordinator.
var Countries = []string{
	// EU member states
	"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR",
	"HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
	// the other EEA states
	"IS", "LI", "NO",
	Coordinator,
}

// Directory is a validated contact directory.
type Directory struct {
	ContactPoints []ContactPoint
}

// ContactPoint is one entry of the directory: a body that acts on alerts
// for some countries, and where its alerts go. The same struct is the
// directory entry stored in the table (with its key and type added).
type ContactPoint struct {
	// ID is unique, [a-z0-9-].
	ID   string `dynamodbav:"id"`
	Name string `dynamodbav:"name"`
	// Countries are ISO codes, or Coordinator.
	Countries []string `dynamodbav:"countries,stringset"`
	// SMSMinSeverity: SMS endpoints get only alerts at or above it.
	SMSMinSeverity casestore.Severity `dynamodbav:"sms_min_severity"`
	Endpoints      []Endpoint         `dynamodbav:"endpoints"`
	// GroupWait and GroupInterval override the deployment's (template
	// parameters GroupWait and GroupInterval) for this contact point; zero
	// means the default. An explicit group_wait of 0s is NoGroupWait.
	GroupWait     time.Duration `dynamodbav:"group_wait,omitempty"`
	GroupInterval time.Duration `dynamodbav:"group_interval,omitempty"`
}

// Endpoint is one address of a contact point, as SNS subscribes it.
type Endpoint struct {
	Protocol Protocol `dynamodbav:"protocol"`
	// Address is the email address, E.164 number, URL or queue ARN.
	Address string `dynamodbav:"endpoint"`
}

func (e Endpoint) String() string { return string(e.Protocol) + " " + e.Address }

// ValidationError lists every problem found in a directory file, each
// naming the entry it is about.
type ValidationError = yamlfile.ValidationError

// The file's schema. It is kept apart from ContactPoint so that the file
// can say "- email: x" while the code says Endpoint{Email, "x"}.
type fileYAML struct {
	ContactPoints []contactPointYAML `yaml:"contact_points"`
}

type contactPointYAML struct {
	ID             string         `yaml:"id"`
	Name           string         `yaml:"name"`
	Countries      []string       `yaml:"countries"`
	SMSMinSeverity string         `yaml:"sms_min_severity"`
	Endpoints      []endpointYAML `yaml:"endpoints"`
	// GroupWait and GroupInterval are Go durations ("30s", "5m"); nil
	// when the entry leaves them to the deployment.
	GroupWait     *string `yaml:"group_wait"`
	GroupInterval *string `yaml:"group_interval"`
}

// endpointYAML has one key set: its protocol.
type endpointYAML struct {
	Email *string `yaml:"email"`
	SMS   *string `yaml:"sms"`
	HTTPS *string `yaml:"https"`
	SQS   *string `yaml:"sqs"`
}

// Load reads, decodes and validates a directory file.
func Load(path string) (*Directory, error) {
	return yamlfile.Load(path, "contact directory", Parse)
}

// Parse decodes and validates a directory. Decoding is strict: an unknown
// or repeated key is an error, so a typo cannot silently drop a setting.
func Parse(data []byte) (*Directory, error) {
	f, err := yamlfile.Decode[fileYAML](data)
	if err != nil {
		return nil, err
	}
	var problems []string
	if len(f.ContactPoints) == 0 {
		// An empty directory would unsubscribe everyone.
		return nil, &ValidationError{Problems: []string{"no contact_points: the directory must list at least one contact point"}}
	}
	d := &Directory{}
	ids := map[string]int{}
	owners := map[Endpoint]string{}
	for i, in := range f.ContactPoints {
		where := fmt.Sprintf("contact_points[%d]", i)
		if in.ID != "" {
			where += " (" + in.ID + ")"
		}
		cp, errs := in.contactPoint()
		for _, e := range errs {
			problems = append(problems, where+": "+e)
		}
		if cp.ID != "" {
			if j, ok := ids[cp.ID]; ok {
				problems = append(problems, fmt.Sprintf("%s: duplicate id, also used by contact_points[%d]", where, j))
			}
			ids[cp.ID] = i
		}
		for _, ep := range cp.Endpoints {
			// SNS keeps one subscription per protocol and address on a
			// topic, so one address cannot carry two filter policies.
			if other, ok := owners[ep]; ok {
				problems = append(problems, fmt.Sprintf("%s: endpoint %s is also declared by %s; an address can belong to one contact point only", where, ep, other))
				continue
			}
			owners[ep] = cp.ID
		}
		d.ContactPoints = append(d.ContactPoints, cp)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return d, nil
}

// The patterns are compiled at first use, not at package init: the
// functions that read a stored directory never validate one, and the
// bounded repetitions of the ARN patterns ({1,256}) cost half a
// millisecond and 1,700 allocations of every cold start to compile.
var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`) })

// contactPoint converts and checks one entry. It returns what it could
// convert and every problem found.
func (in contactPointYAML) contactPoint() (ContactPoint, []string) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	cp := ContactPoint{ID: in.ID, Name: strings.TrimSpace(in.Name)}
	switch {
	case in.ID == "":
		add("id is missing")
	case len(in.ID) > 64 || !idPattern().MatchString(in.ID):
		add("id %q: use lower-case letters, digits and single hyphens (at most 64)", in.ID)
	}
	if cp.Name == "" {
		add("name is missing")
	} else if len(cp.Name) > 200 {
		add("name is longer than 200 characters")
	}

	if len(in.Countries) == 0 {
		add("countries is empty: list the ISO codes of the states it answers for, or EU for the coordinator")
	}
	seen := map[string]bool{}
	for _, c := range in.Countries {
		switch {
		case seen[c]:
			add("country %s is listed twice", c)
			continue
		case slices.Contains(Countries, c):
		case c == "EL":
			add("country EL: use the ISO code GR for Greece")
			continue
		case slices.Contains(Countries, strings.ToUpper(c)):
			add("country %q: write ISO codes in upper case (%s)", c, strings.ToUpper(c))
			continue
		default:
			add("country %q is not an EU or EEA member state's ISO 3166 alpha-2 code, nor EU", c)
			continue
		}
		seen[c] = true
		cp.Countries = append(cp.Countries, c)
	}

	cp.SMSMinSeverity = DefaultSMSMinSeverity
	if in.SMSMinSeverity != "" {
		cp.SMSMinSeverity = casestore.Severity(in.SMSMinSeverity)
		if !slices.Contains(casestore.Severities, cp.SMSMinSeverity) {
			add("sms_min_severity %q: use one of low, medium, high, critical", in.SMSMinSeverity)
		}
	}

	if in.GroupWait != nil {
		d, err := groupDuration(*in.GroupWait, MinGroupWait, MaxGroupWait)
		switch {
		case err != nil:
			add("group_wait %q: %v", *in.GroupWait, err)
		case d == 0:
			cp.GroupWait = NoGroupWait
		default:
			cp.GroupWait = d
		}
	}
	if in.GroupInterval != nil {
		d, err := groupDuration(*in.GroupInterval, MinGroupInterval, MaxGroupInterval)
		if err != nil {
			add("group_interval %q: %v", *in.GroupInterval, err)
		}
		cp.GroupInterval = d
	}

	if len(in.Endpoints) == 0 {
		add("endpoints is empty: give at least one email, sms, https or sqs endpoint")
	}
	for j, e := range in.Endpoints {
		ep, err := e.endpoint()
		if err != nil {
			add("endpoints[%d]: %v", j, err)
			continue
		}
		if slices.Contains(cp.Endpoints, ep) {
			add("endpoints[%d]: %s is listed twice", j, ep)
			continue
		}
		cp.Endpoints = append(cp.Endpoints, ep)
	}
	return cp, problems
}

// groupDuration parses a grouping setting and checks it is within
// [lo, hi].
func groupDuration(text string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil {
		return 0, errors.New("not a duration: write a number and a unit, as in 30s, 5m or 1h")
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("use %s to %s", showDuration(lo), showDuration(hi))
	}
	return d, nil
}

// showDuration writes a grouping setting as contacts.yaml would: 30s, 5m,
// 1h30m; NoGroupWait as 0s.
func showDuration(d time.Duration) string {
	if d == NoGroupWait {
		d = 0
	}
	s := d.String()
	// time.Duration writes 5m0s and 1h0m0s; the file says 5m and 1h.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (e endpointYAML) endpoint() (Endpoint, error) {
	var set []Endpoint
	for _, c := range []struct {
		p Protocol
		v *string
	}{{Email, e.Email}, {SMS, e.SMS}, {HTTPS, e.HTTPS}, {SQS, e.SQS}} {
		if c.v != nil {
			set = append(set, Endpoint{c.p, strings.TrimSpace(*c.v)})
		}
	}
	if len(set) != 1 {
		return Endpoint{}, errors.New("give exactly one of email, sms, https, sqs, with a value")
	}
	ep := set[0]
	var err error
	switch ep.Protocol {
	case Email:
		err = checkEmail(ep.Address)
	case SMS:
		err = checkPhone(ep.Address)
	case HTTPS:
		err = checkWebhook(ep.Address)
	case SQS:
		err = CheckQueueARN(ep.Address)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s %q: %w", ep.Protocol, ep.Address, err)
	}
	return ep, nil
}

func checkEmail(addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return errors.New("not a plain email address (name@domain, no display name or angle brackets)")
	}
	_, domain, _ := strings.Cut(addr, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return errors.New("the domain needs a dot (name@authority.example)")
	}
	return nil
}

var e164 = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`) })

func checkPhone(number string) error {
	if e164().MatchString(number) {
		return nil
	}
	if number != "" && strings.Trim(number, "0123456789") == "" {
		// YAML reads an unquoted +39… as a number and drops the +.
		return errors.New(`not an E.164 number: it needs its leading + and, in YAML, quotes (sms: "+39…")`)
	}
	return errors.New("not an E.164 number (+, country code and number, 8 to 15 digits, no spaces)")
}

func checkWebhook(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https":
		return errors.New("webhooks must use https: alerts carry case details")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("the URL has no host")
	case u.User != nil:
		// It would be printed in every plan and stored in the table.
		return errors.New("credentials in the URL are not supported: they would be printed and stored")
	case u.Fragment != "":
		return errors.New("the URL must not have a #fragment")
	}
	return nil
}

var queueARN = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws(-[a-z]+)*:sqs:[a-z]+(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$`)
})

// CheckQueueARN checks the form of an SQS queue ARN
// (arn:aws:sqs:<region>:<account>:<name>) that can subscribe to a standard
// topic.
func CheckQueueARN(arn string) error {
	if !queueARN().MatchString(arn) {
		return errors.New("not an SQS queue ARN (arn:aws:sqs:<region>:<12-digit account>:<queue name>)")
	}
	if strings.HasSuffix(arn, ".fifo") {
		return errors.New("a FIFO queue cannot subscribe to the alerts topic, which is a standard topic")
	}
	return nil
}

var topicARN = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws(-[a-z]+)*:sns:[a-z]+(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)
})

// CheckTopicARN checks the form of a standard SNS topic ARN.
func CheckTopicARN(arn string) error {
	if !topicARN().MatchString(arn) {
		return errors.New("not a standard SNS topic ARN (arn:aws:sns:<region>:<12-digit account>:<topic name>)")
	}
	return nil
}

// Warnings are things in a valid directory that are probably mistakes.
func (d *Directory) Warnings() []string {
	for _, cp := range d.ContactPoints {
		if slices.Contains(cp.Countries, Coordinator) {
			return nil
		}
	}
	return []string{"no contact point answers for EU: alerts about cases without a country reach nobody"}
}
