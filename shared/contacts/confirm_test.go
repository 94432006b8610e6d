package contacts

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const testToken = "2336412f37fb687f5d51e6e2425c464de257e9a829aa2d84c5a7249b36788ba5"

func TestParseConfirmation(t *testing.T) {
	tests := []struct {
		name, in string
		want     Confirmation
		err      error
	}{
		{
			name: "email link",
			in:   "https://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + testTopic + "&Token=" + testToken + "&Endpoint=referrals@polpost.it.example",
			want: Confirmation{TopicARN: testTopic, Token: testToken, Endpoint: "referrals@polpost.it.example"},
		},
		{
			name: "https SubscribeURL",
			in:   "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=" + testToken,
			want: Confirmation{TopicARN: testTopic, Token: testToken},
		},
		{
			name: "link pasted with spaces and a newline",
			in:   "  https://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + testTopic + "&Token=" + testToken + "\n",
			want: Confirmation{TopicARN: testTopic, Token: testToken},
		},
		{name: "bare token", in: " " + testToken + "\n", want: Confirmation{Token: testToken}},
		{name: "empty", in: "  ", err: ErrNotConfirmation},
		{name: "token with a space", in: "abc def", err: ErrNotConfirmation},
		{name: "token with URL characters", in: "abc&Token=def", err: ErrNotConfirmation},
		{name: "http link", in: "http://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + testTopic + "&Token=" + testToken, err: ErrNotConfirmation},
		{name: "not SNS", in: "https://sns.eu-west-1.amazonaws.com.evil.example/confirmation.html?TopicArn=" + testTopic + "&Token=" + testToken, err: ErrNotConfirmation},
		{name: "another host of AWS", in: "https://sqs.eu-west-1.amazonaws.com/?TopicArn=" + testTopic + "&Token=" + testToken, err: ErrNotConfirmation},
		{name: "unsubscribe link", in: "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + testTopic + ":x", err: ErrNotConfirmation},
		{name: "no token", in: "https://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + testTopic, err: ErrNotConfirmation},
		{name: "no topic", in: "https://sns.eu-west-1.amazonaws.com/confirmation.html?Token=" + testToken, err: ErrNotConfirmation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfirmation(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

// subscribeEmail subscribes an email address on the fake topic, pending
// as SNS leaves it, and returns it.
func subscribeEmail(t *testing.T, f *fakeSNS) *fakeSub {
	t.Helper()
	f.add("email", "referrals@polpost.it.example", true, map[string]string{"FilterPolicy": `{"country":["IT"]}`})
	return f.byEndpoint("referrals@polpost.it.example")
}

func TestConfirmAuthenticates(t *testing.T) {
	f := &fakeSNS{}
	sub := subscribeEmail(t, f)
	got, err := Confirm(context.Background(), f, testTopic, Confirmation{TopicARN: testTopic, Token: sub.token})
	if err != nil {
		t.Fatal(err)
	}
	want := Confirmed{ARN: sub.arn, Protocol: "email", Endpoint: "referrals@polpost.it.example", Checked: true, Authenticated: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if sub.pending || !sub.authenticated {
		t.Errorf("subscription pending=%v authenticated=%v: want confirmed with AuthenticateOnUnsubscribe", sub.pending, sub.authenticated)
	}
	// A bare token works the same, with the topic from the caller.
	f2 := &fakeSNS{}
	sub2 := subscribeEmail(t, f2)
	if got, err := Confirm(context.Background(), f2, testTopic, Confirmation{Token: sub2.token}); err != nil || !got.Authenticated {
		t.Errorf("bare token: %+v, %v", got, err)
	}
}

func TestConfirmAfterTheLinkWasOpened(t *testing.T) {
	// The desk (or its mail scanner) opened the link: SNS confirmed the
	// subscription without authentication, and the token cannot change it.
	f := &fakeSNS{}
	sub := subscribeEmail(t, f)
	f.click(sub)
	got, err := Confirm(context.Background(), f, testTopic, Confirmation{TopicARN: testTopic, Token: sub.token})
	if !errors.Is(err, ErrUnauthenticated) || got.Authenticated || !got.Checked || got.ARN != sub.arn {
		t.Fatalf("got %+v, %v; want ErrUnauthenticated", got, err)
	}
	if !strings.Contains(err.Error(), "referrals@polpost.it.example") || !strings.Contains(err.Error(), sub.arn) {
		t.Errorf("error does not name the subscription: %v", err)
	}
}

func TestConfirmRefusals(t *testing.T) {
	f := &fakeSNS{}
	sub := subscribeEmail(t, f)
	other := "arn:aws:sns:eu-west-1:123456789012:other"
	if _, err := Confirm(context.Background(), f, testTopic, Confirmation{TopicARN: other, Token: sub.token}); !errors.Is(err, ErrOtherTopic) {
		t.Errorf("link for another topic: %v", err)
	}
	if f.calls["ConfirmSubscription"] != 0 {
		t.Errorf("a link for another topic was sent to SNS")
	}
	_, err := Confirm(context.Background(), f, testTopic, Confirmation{Token: testToken})
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("unknown token: %v (the token must not be shown)", err)
	}
	if !sub.pending {
		t.Errorf("an unknown token confirmed the subscription")
	}
	if _, err := Confirm(context.Background(), f, "not-an-arn", Confirmation{Token: sub.token}); err == nil {
		t.Errorf("bad topic ARN accepted")
	}
}

func TestPlanReportsUnauthenticatedSubscriptions(t *testing.T) {
	f := newFakes()
	d := testDirectory(t)
	apply(t, f, d, Options{})
	email := f.sns.byEndpoint("referrals@polpost.it.example")
	if email == nil || !email.pending {
		t.Fatalf("email subscription %+v: want pending", email)
	}
	f.sns.click(email)

	p, out := apply(t, f, d, Options{DryRun: true})
	if p.Unauthenticated() != 1 {
		t.Errorf("Unauthenticated() = %d, want 1", p.Unauthenticated())
	}
	for _, line := range []string{
		"! unauthenticated email referrals@polpost.it.example (it-polpost) " + email.arn + ": confirmed by opening its link",
		"aws sns unsubscribe --subscription-arn " + email.arn,
		", 1 confirmed without authentication.\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("dry run lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "! unauthenticated sms") || strings.Contains(out, "! unauthenticated sqs") {
		t.Errorf("other protocols reported:\n%s", out)
	}

	// Confirmed with authentication: nothing to report.
	g := newFakes()
	apply(t, g, d, Options{})
	email = g.sns.byEndpoint("referrals@polpost.it.example")
	if _, err := Confirm(context.Background(), g.sns, testTopic, Confirmation{Token: email.token}); err != nil {
		t.Fatal(err)
	}
	p, out = apply(t, g, d, Options{DryRun: true})
	if p.Unauthenticated() != 0 || strings.Contains(out, "unauthenticated") || strings.Contains(out, "without authentication") {
		t.Errorf("authenticated subscription reported:\n%s", out)
	}
}
