package contacts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
)

// ConfirmAPI is the part of the SNS client that confirming uses.
type ConfirmAPI interface {
	ConfirmSubscription(ctx context.Context, in *sns.ConfirmSubscriptionInput, opts ...func(*sns.Options)) (*sns.ConfirmSubscriptionOutput, error)
	GetSubscriptionAttributes(ctx context.Context, in *sns.GetSubscriptionAttributesInput, opts ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error)
}

var _ ConfirmAPI = (*sns.Client)(nil)

// Errors of confirming.
var (
	// ErrNotConfirmation: the text is neither an SNS confirmation link nor
	// a token.
	ErrNotConfirmation = errors.New("not an SNS subscription confirmation link or token")
	// ErrOtherTopic: the link confirms a subscription to another topic.
	ErrOtherTopic = errors.New("the link confirms a subscription to another topic")
	// ErrUnauthenticated: the subscription is confirmed, but without
	// authentication (its link was opened before), so an unsubscribe link
	// in any alert email removes it.
	ErrUnauthenticated = errors.New("confirmed without authentication")
)

// Confirmation is what a subscription's confirmation link carries. An
// email endpoint gets
//
//	https://sns.<region>.amazonaws.com/confirmation.html?TopicArn=…&Token=…&Endpoint=…
//
// and an https endpoint a SubscribeURL
//
//	https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&TopicArn=…&Token=…
//
// (https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html).
// The token is valid for three days
// (https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html).
type Confirmation struct {
	// TopicARN is empty when only a token was given.
	TopicARN string
	Token    string
	// Endpoint is the address the link was sent to, when it says.
	Endpoint string
}

// ParseConfirmation reads a whole confirmation link (as the contact point
// forwarded it) or the bare token. A link must be an https link to an SNS
// endpoint (sns.<region>.amazonaws.com, or .amazonaws.com.cn) carrying a
// topic ARN and a token. Flagline never opens the link: opening it is
// what confirms the subscription without authentication.
func ParseConfirmation(s string) (Confirmation, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Confirmation{}, fmt.Errorf("%w: empty", ErrNotConfirmation)
	}
	if !strings.Contains(s, "://") {
		// A token: SNS's are long hexadecimal strings; accept any run of
		// letters and digits, and nothing that could be part of a URL.
		for _, r := range s {
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				return Confirmation{}, fmt.Errorf("%w: a token is letters and digits only", ErrNotConfirmation)
			}
		}
		return Confirmation{Token: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Confirmation{}, fmt.Errorf("%w: %v", ErrNotConfirmation, err)
	}
	host := u.Hostname()
	if u.Scheme != "https" || !strings.HasPrefix(host, "sns.") ||
		!(strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")) {
		return Confirmation{}, fmt.Errorf("%w: not an https link to sns.<region>.amazonaws.com", ErrNotConfirmation)
	}
	q := u.Query()
	if a := q.Get("Action"); a != "" && a != "ConfirmSubscription" {
		return Confirmation{}, fmt.Errorf("%w: the link's action is %s", ErrNotConfirmation, a)
	}
	c := Confirmation{TopicARN: q.Get("TopicArn"), Token: q.Get("Token"), Endpoint: q.Get("Endpoint")}
	if c.Token == "" {
		return Confirmation{}, fmt.Errorf("%w: the link has no Token (quote the whole link: it contains \"&\")", ErrNotConfirmation)
	}
	if err := CheckTopicARN(c.TopicARN); err != nil {
		return Confirmation{}, fmt.Errorf("%w: TopicArn %q: %v", ErrNotConfirmation, c.TopicARN, err)
	}
	return c, nil
}

// Confirmed is a subscription as confirming left it.
type Confirmed struct {
	ARN      string
	Protocol string
	Endpoint string
	// Checked: SNS's attributes were read back; when false (SNS did not
	// know the subscription yet), Authenticated is unknown.
	Checked       bool
	Authenticated bool
}

// Confirm confirms the subscription the token names with
// AuthenticateOnUnsubscribe=true, in a request signed with the caller's
// credentials: then only the topic owner and the subscription owner can
// unsubscribe the endpoint, and the unsubscribe link at the foot of every
// alert email no longer works
// (https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html).
// It then reads ConfirmationWasAuthenticated back
// (https://docs.aws.amazon.com/sns/latest/api/API_GetSubscriptionAttributes.html):
// a subscription whose link was opened first is already confirmed without
// authentication, and Confirm returns ErrUnauthenticated with it.
func Confirm(ctx context.Context, api ConfirmAPI, topicARN string, c Confirmation) (Confirmed, error) {
	if err := CheckTopicARN(topicARN); err != nil {
		return Confirmed{}, fmt.Errorf("topic %q: %w", topicARN, err)
	}
	if c.TopicARN != "" && c.TopicARN != topicARN {
		return Confirmed{}, fmt.Errorf("%w: %s, not %s", ErrOtherTopic, c.TopicARN, topicARN)
	}
	out, err := api.ConfirmSubscription(ctx, &sns.ConfirmSubscriptionInput{
		TopicArn:                  aws.String(topicARN),
		Token:                     aws.String(c.Token),
		AuthenticateOnUnsubscribe: aws.String("true"),
	})
	if err != nil {
		// The token is never printed: until it expires it confirms the
		// subscription for whoever holds it.
		return Confirmed{}, fmt.Errorf("confirm subscription to %s: %w", topicARN, err)
	}
	got := Confirmed{ARN: aws.ToString(out.SubscriptionArn), Endpoint: c.Endpoint}
	attrs, err := api.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: out.SubscriptionArn})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFound" {
			// SNS is eventually consistent; the plan shows it later.
			return got, nil
		}
		return got, fmt.Errorf("read back %s: %w", got.ARN, err)
	}
	a := attrs.Attributes
	got.Checked = true
	got.Protocol = a["Protocol"]
	if a["Endpoint"] != "" {
		got.Endpoint = a["Endpoint"]
	}
	got.Authenticated = a["ConfirmationWasAuthenticated"] == "true"
	if !got.Authenticated {
		return got, fmt.Errorf("%s %s (%s): %w", got.Protocol, got.Endpoint, got.ARN, ErrUnauthenticated)
	}
	return got, nil
}
