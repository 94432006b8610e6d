package contacts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
)

// TopicAPI is the part of the SNS client that reconciliation uses.
type TopicAPI interface {
	ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, opts ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error)
	GetSubscriptionAttributes(ctx context.Context, in *sns.GetSubscriptionAttributesInput, opts ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error)
	Subscribe(ctx context.Context, in *sns.SubscribeInput, opts ...func(*sns.Options)) (*sns.SubscribeOutput, error)
	SetSubscriptionAttributes(ctx context.Context, in *sns.SetSubscriptionAttributesInput, opts ...func(*sns.Options)) (*sns.SetSubscriptionAttributesOutput, error)
	Unsubscribe(ctx context.Context, in *sns.UnsubscribeInput, opts ...func(*sns.Options)) (*sns.UnsubscribeOutput, error)
}

var _ TopicAPI = (*sns.Client)(nil)

// PendingConfirmation is the SubscriptionArn SNS lists for a subscription
// whose owner has not yet confirmed it (email, https). It has no ARN yet,
// so it can be neither changed nor unsubscribed.
const PendingConfirmation = "PendingConfirmation"

// Subscription is one subscription on the topic, as it is (read from SNS)
// or as the directory wants it.
type Subscription struct {
	// ARN is empty for a wanted subscription that does not exist yet.
	ARN      string
	Protocol Protocol
	Endpoint string
	// ContactPoint is the id of the contact point that declares it (wanted
	// subscriptions only).
	ContactPoint       string
	FilterPolicy       string
	FilterPolicyScope  string
	RedrivePolicy      string
	RawMessageDelivery bool
	// Pending: awaiting confirmation by the endpoint's owner.
	Pending bool
	// Unauthenticated: confirmed by opening its confirmation link rather
	// than by `flagline contacts confirm`, so anyone holding one of its
	// alert emails can unsubscribe it with the link at the foot
	// (ConfirmationWasAuthenticated false;
	// https://docs.aws.amazon.com/sns/latest/api/API_GetSubscriptionAttributes.html).
	Unauthenticated bool
}

func (s Subscription) key() string { return string(s.Protocol) + " " + s.Endpoint }

// rawCapable: RawMessageDelivery is an attribute of these protocols only.
func rawCapable(p Protocol) bool { return p == SQS || p == HTTPS || p == "http" || p == "firehose" }

// Subscriptions are the subscriptions the directory wants: one per contact
// point and endpoint. dlqARN, if not empty, is every subscription's
// dead-letter queue.
func (d *Directory) Subscriptions(dlqARN string) []Subscription {
	var out []Subscription
	for _, cp := range d.ContactPoints {
		for _, ep := range cp.Endpoints {
			out = append(out, Subscription{
				Protocol:          ep.Protocol,
				Endpoint:          ep.Address,
				ContactPoint:      cp.ID,
				FilterPolicy:      FilterPolicy(cp, ep.Protocol),
				FilterPolicyScope: ScopeMessageAttributes,
				RedrivePolicy:     RedrivePolicy(dlqARN),
			})
		}
	}
	return out
}

// CurrentSubscriptions lists the topic's subscriptions with the attributes
// reconciliation compares. Pending ones have no ARN and no attributes.
func CurrentSubscriptions(ctx context.Context, api TopicAPI, topicARN string) ([]Subscription, error) {
	var out []Subscription
	p := sns.NewListSubscriptionsByTopicPaginator(api, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions of %s: %w", topicARN, err)
		}
		for _, s := range page.Subscriptions {
			sub := Subscription{
				ARN:      aws.ToString(s.SubscriptionArn),
				Protocol: Protocol(aws.ToString(s.Protocol)),
				Endpoint: aws.ToString(s.Endpoint),
			}
			if sub.ARN == PendingConfirmation {
				sub.ARN, sub.Pending = "", true
				out = append(out, sub)
				continue
			}
			if !strings.HasPrefix(sub.ARN, "arn:") {
				continue // e.g. "Deleted": on its way out
			}
			attrs, err := api.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(sub.ARN)})
			if err != nil {
				var apiErr smithy.APIError
				if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFound" {
					continue // unsubscribed since it was listed
				}
				return nil, fmt.Errorf("get attributes of %s: %w", sub.ARN, err)
			}
			a := attrs.Attributes
			sub.FilterPolicy = a["FilterPolicy"]
			sub.FilterPolicyScope = a["FilterPolicyScope"]
			sub.RedrivePolicy = a["RedrivePolicy"]
			sub.RawMessageDelivery = a["RawMessageDelivery"] == "true"
			sub.Pending = a["PendingConfirmation"] == "true"
			sub.Unauthenticated = !sub.Pending && a["ConfirmationWasAuthenticated"] == "false"
			out = append(out, sub)
		}
	}
	return out, nil
}

// Action is what a plan does to one subscription or directory entry.
type Action string

// Actions.
const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
	// Pending: awaiting confirmation; left alone, as SNS allows nothing else.
	Pending Action = "pending"
)

// Subscription attributes an update may set, in the order they are set:
// the scope before the policy, as the policy is validated against it.
const (
	attrFilterPolicyScope  = "FilterPolicyScope"
	attrFilterPolicy       = "FilterPolicy"
	attrRedrivePolicy      = "RedrivePolicy"
	attrRawMessageDelivery = "RawMessageDelivery"
)

// SubscriptionChange is one line of the plan for the topic.
type SubscriptionChange struct {
	Action Action
	// Want is the subscription the directory declares (not for Delete, nor
	// for a pending subscription the directory no longer declares). After
	// a create, its ARN is the new subscription's.
	Want Subscription
	// Have is the subscription as it is (not for Create).
	Have Subscription
	// Changed names the attributes an update sets, in order.
	Changed []string
	// Done is set once the change has been made.
	Done bool
}

// Declared reports whether the directory declares the subscription.
func (c SubscriptionChange) Declared() bool { return c.Want.Protocol != "" }

// DiffSubscriptions plans the topic: what to create, update and delete so
// that current becomes desired. It reads nothing and changes nothing.
func DiffSubscriptions(current, desired []Subscription) []SubscriptionChange {
	have := map[string]Subscription{}
	var changes []SubscriptionChange
	for _, s := range current {
		if _, dup := have[s.key()]; dup {
			// SNS keeps one per protocol and endpoint; drop any extra.
			changes = append(changes, extra(s))
			continue
		}
		have[s.key()] = s
	}
	wanted := map[string]bool{}
	for _, w := range desired {
		wanted[w.key()] = true
		h, ok := have[w.key()]
		switch {
		case !ok:
			changes = append(changes, SubscriptionChange{Action: Create, Want: w})
		case h.Pending:
			changes = append(changes, SubscriptionChange{Action: Pending, Want: w, Have: h})
		default:
			if changed := differences(h, w); len(changed) > 0 {
				changes = append(changes, SubscriptionChange{Action: Update, Want: w, Have: h, Changed: changed})
			} else {
				changes = append(changes, SubscriptionChange{Action: Unchanged, Want: w, Have: h})
			}
		}
	}
	for k, h := range have {
		if !wanted[k] {
			changes = append(changes, extra(h))
		}
	}
	slices.SortFunc(changes, func(a, b SubscriptionChange) int {
		return cmp.Or(
			-cmp.Compare(b2i(a.Declared()), b2i(b.Declared())), // declared first
			cmp.Compare(a.Want.ContactPoint, b.Want.ContactPoint),
			cmp.Compare(a.subject().Protocol, b.subject().Protocol),
			cmp.Compare(a.subject().Endpoint, b.subject().Endpoint),
			cmp.Compare(a.Have.ARN, b.Have.ARN),
		)
	})
	return changes
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// extra is the change for a subscription nobody declares.
func extra(h Subscription) SubscriptionChange {
	if h.Pending {
		return SubscriptionChange{Action: Pending, Have: h}
	}
	return SubscriptionChange{Action: Delete, Have: h}
}

// subject is the subscription the change is about.
func (c SubscriptionChange) subject() Subscription {
	if c.Declared() {
		return c.Want
	}
	return c.Have
}

// differences names the attributes of have that differ from want.
func differences(have, want Subscription) []string {
	var changed []string
	scope := cmp.Or(have.FilterPolicyScope, ScopeMessageAttributes)
	if !SameFilterPolicy(have.FilterPolicy, want.FilterPolicy) || scope != want.FilterPolicyScope {
		if scope != want.FilterPolicyScope {
			changed = append(changed, attrFilterPolicyScope)
		}
		changed = append(changed, attrFilterPolicy)
	}
	if !SameJSON(have.RedrivePolicy, want.RedrivePolicy) {
		changed = append(changed, attrRedrivePolicy)
	}
	if rawCapable(want.Protocol) && have.RawMessageDelivery != want.RawMessageDelivery {
		changed = append(changed, attrRawMessageDelivery)
	}
	return changed
}

// attribute is the value want gives the named attribute.
func (s Subscription) attribute(name string) string {
	switch name {
	case attrFilterPolicyScope:
		return s.FilterPolicyScope
	case attrFilterPolicy:
		return s.FilterPolicy
	case attrRedrivePolicy:
		return s.RedrivePolicy
	case attrRawMessageDelivery:
		return fmt.Sprint(s.RawMessageDelivery)
	}
	return ""
}

// subscribeAttributes are the attributes a new subscription is made with.
func (s Subscription) subscribeAttributes() map[string]string {
	a := map[string]string{
		attrFilterPolicyScope: s.FilterPolicyScope,
		attrFilterPolicy:      s.FilterPolicy,
	}
	if s.RedrivePolicy != "" {
		a[attrRedrivePolicy] = s.RedrivePolicy
	}
	if rawCapable(s.Protocol) {
		a[attrRawMessageDelivery] = fmt.Sprint(s.RawMessageDelivery)
	}
	return a
}

// applySubscription makes one change on the topic.
func applySubscription(ctx context.Context, api TopicAPI, topicARN string, c *SubscriptionChange) error {
	switch c.Action {
	case Create:
		out, err := api.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn:              aws.String(topicARN),
			Protocol:              aws.String(string(c.Want.Protocol)),
			Endpoint:              aws.String(c.Want.Endpoint),
			Attributes:            c.Want.subscribeAttributes(),
			ReturnSubscriptionArn: true,
		})
		if err != nil {
			return fmt.Errorf("subscribe %s (%s): %w", c.Want.key(), c.Want.ContactPoint, err)
		}
		c.Want.ARN = aws.ToString(out.SubscriptionArn)
	case Update:
		for _, name := range c.Changed {
			_, err := api.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{
				SubscriptionArn: aws.String(c.Have.ARN),
				AttributeName:   aws.String(name),
				AttributeValue:  aws.String(c.Want.attribute(name)),
			})
			if err != nil {
				return fmt.Errorf("set %s of %s (%s): %w", name, c.Want.key(), c.Have.ARN, err)
			}
		}
		c.Want.ARN = c.Have.ARN
	case Delete:
		if _, err := api.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(c.Have.ARN)}); err != nil {
			return fmt.Errorf("unsubscribe %s (%s): %w", c.Have.key(), c.Have.ARN, err)
		}
	default:
		return nil
	}
	c.Done = true
	return nil
}
