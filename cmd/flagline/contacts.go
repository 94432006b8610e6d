package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/contacts"
)

func init() {
	commands["contacts"] = command{summary: "reconcile the contact directory into SNS subscriptions", run: runContacts}
}

// Environment variables read when the flags are not given; the functions'
// configuration uses the same names.
const (
	topicEnv = "ALERTS_TOPIC_ARN"
	tableEnv = "TABLE_NAME"
	dlqEnv   = "SUBSCRIPTION_DLQ_ARN"
)

const contactsUsage = `usage: flagline contacts apply --file contacts.yaml --topic-arn ARN --table NAME [--dlq-arn ARN] [--dry-run]
       flagline contacts confirm [--topic-arn ARN] 'CONFIRMATION-LINK' (or TOKEN, or - to read it from stdin)
       flagline contacts validate --file contacts.yaml
       flagline contacts token create|list|revoke --contact-point ID (see flagline contacts token -h)

apply reconciles the alerts topic with the contact directory file, like
kubectl apply with pruning: it subscribes every endpoint the file declares
with its filter policy, updates subscriptions whose filter policy or
dead-letter queue differ, and unsubscribes every subscription on the topic
that the file does not declare: the topic belongs to the file. It also
stores one entry per contact point in the table (and removes entries of
contact points no longer in the file). The plan is printed first; with
--dry-run nothing is changed. Applying the same file again changes nothing.

Subscriptions awaiting confirmation (email, https) can be neither changed
nor removed; they are listed as pending. Subscriptions confirmed by opening
their link are listed as unauthenticated: the unsubscribe link in any of
their alert emails removes them. The dead-letter queue must be in the
topic's account and region, and its policy must let the topic send to it.

confirm confirms an email (or https) subscription from the confirmation
link its owner forwarded unopened (quote it: it contains "&"), with
AuthenticateOnUnsubscribe, so that unsubscribing it needs AWS credentials.
It fails if the subscription was already confirmed by opening the link.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

validate checks the file and prints nothing else; it needs no AWS access.

flags:
`

func runContacts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "subcommand", contactsUsage, stderr, "apply", "confirm", "validate", "token")
	if err != nil {
		return err
	}
	switch sub {
	case "apply":
		return runContactsApply(ctx, args[1:], stdout, stderr)
	case "confirm":
		return runContactsConfirm(ctx, args[1:], os.Stdin, stdout, stderr)
	case "validate":
		return runContactsValidate(args[1:], stdout, stderr)
	default:
		return runContactsToken(ctx, args[1:], stdout, stderr)
	}
}

// contactsOptions are the parsed flags of "flagline contacts apply".
type contactsOptions struct {
	file   string
	target contacts.Target
	dryRun bool
}

func parseContactsApplyFlags(args []string, stderr io.Writer) (*contactsOptions, error) {
	o := &contactsOptions{}
	fs := newFlagSet("contacts apply", contactsUsage, stderr)
	fs.StringVar(&o.file, "file", "", "contact directory `file` (required), e.g. contacts.yaml")
	fs.StringVar(&o.target.TopicARN, "topic-arn", "", "`ARN` of the alerts topic; default $"+topicEnv)
	tableFlag(fs, &o.target.Table)
	fs.StringVar(&o.target.DLQARN, "dlq-arn", "", "`ARN` of the SQS dead-letter queue of every subscription; default $"+dlqEnv+" (none if unset)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	flagOrEnv(&o.target.DLQARN, dlqEnv)
	var missing missingFlags
	missing.need(o.file != "", "--file")
	missing.need(flagOrEnv(&o.target.TopicARN, topicEnv), "--topic-arn (or "+topicEnv+")")
	missing.need(resolveTable(&o.target.Table), missingTable)
	if err := missing.err(); err != nil {
		return nil, err
	}
	if err := o.target.Check(); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

func runContactsApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseContactsApplyFlags(args, stderr)
	if err != nil {
		return err
	}
	dir, err := loadDirectory(o.file, stderr)
	if err != nil {
		return err
	}
	cfg, err := topicAWSConfig(ctx, o.target.TopicARN)
	if err != nil {
		return err
	}
	clients := contacts.Clients{SNS: sns.NewFromConfig(cfg), DynamoDB: dynamodb.NewFromConfig(cfg)}
	_, err = contacts.Apply(ctx, clients, o.target, dir, contacts.Options{DryRun: o.dryRun, Out: stdout})
	return err
}

// parseContactsConfirmArgs reads the flags and the link (or token) of
// "flagline contacts confirm". The topic is --topic-arn, else
// $ALERTS_TOPIC_ARN, else the link's.
func parseContactsConfirmArgs(args []string, stdin io.Reader, stderr io.Writer) (topicARN string, c contacts.Confirmation, err error) {
	fs := newFlagSet("contacts confirm", contactsUsage, stderr)
	fs.StringVar(&topicARN, "topic-arn", "", "`ARN` of the alerts topic; default $"+topicEnv+", else the link's")
	if err := parseFlags(fs, args); err != nil {
		return "", c, err
	}
	switch {
	case fs.NArg() == 0:
		return "", c, usageError{errors.New("missing the confirmation link (quoted) or its token")}
	case fs.NArg() > 1:
		return "", c, usageError{fmt.Errorf("unexpected argument %q: quote the link, it contains \"&\"", fs.Arg(1))}
	}
	text := fs.Arg(0)
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return "", c, fmt.Errorf("read the link from stdin: %w", err)
		}
		text = string(b)
	}
	if c, err = contacts.ParseConfirmation(text); err != nil {
		return "", c, usageError{err}
	}
	if !flagOrEnv(&topicARN, topicEnv) {
		topicARN = c.TopicARN
	}
	if topicARN == "" {
		return "", c, usageError{errors.New("missing --topic-arn (or " + topicEnv + "): a bare token does not name its topic")}
	}
	if err := contacts.CheckTopicARN(topicARN); err != nil {
		return "", c, usageError{fmt.Errorf("topic %q: %w", topicARN, err)}
	}
	return topicARN, c, nil
}

func runContactsConfirm(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	topicARN, c, err := parseContactsConfirmArgs(args, stdin, stderr)
	if err != nil {
		return err
	}
	cfg, err := topicAWSConfig(ctx, topicARN)
	if err != nil {
		return err
	}
	return confirmSubscription(ctx, sns.NewFromConfig(cfg), topicARN, c, stdout)
}

// confirmSubscription confirms and says what it did, and what to do when
// the link had been opened first.
func confirmSubscription(ctx context.Context, api contacts.ConfirmAPI, topicARN string, c contacts.Confirmation, stdout io.Writer) error {
	got, err := contacts.Confirm(ctx, api, topicARN, c)
	switch {
	case errors.Is(err, contacts.ErrUnauthenticated):
		return fmt.Errorf("%w\nThe link was opened before (by its owner or a mail scanner), so the unsubscribe link in any alert email removes it. "+
			"Unsubscribe it (aws sns unsubscribe --subscription-arn %s), run flagline contacts apply again, and ask for the new link unopened", err, got.ARN)
	case err != nil:
		return err
	case !got.Checked:
		fmt.Fprintf(stdout, "Confirmed %s, which SNS does not show yet: check it with flagline contacts apply --dry-run (no \"unauthenticated\" line).\n", got.ARN)
	default:
		fmt.Fprintf(stdout, "Confirmed %s %s (%s) with authentication: unsubscribing it needs AWS credentials.\n", got.Protocol, got.Endpoint, got.ARN)
	}
	return nil
}

func runContactsValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("contacts validate", contactsUsage, stderr)
	file := fs.String("file", "", "contact directory `file` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *file == "" {
		return usageError{errors.New("missing --file")}
	}
	dir, err := loadDirectory(*file, stderr)
	if err != nil {
		return err
	}
	n := 0
	for _, cp := range dir.ContactPoints {
		n += len(cp.Endpoints)
	}
	fmt.Fprintf(stdout, "%s: %d contact points, %d endpoints, valid.\n", *file, len(dir.ContactPoints), n)
	return nil
}

// topicAWSConfig is the AWS configuration for the alerts topic: when none
// names a region, the topic's ARN does, and that is used rather than fail.
// The ARN was checked before.
func topicAWSConfig(ctx context.Context, topicARN string) (aws.Config, error) {
	cfg, err := awsConfig(ctx)
	if err == nil && cfg.Region == "" {
		cfg.Region = strings.Split(topicARN, ":")[3]
	}
	return cfg, err
}

// loadDirectory loads and validates the file and prints its warnings.
func loadDirectory(path string, stderr io.Writer) (*contacts.Directory, error) {
	dir, err := contacts.Load(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usageError{fmt.Errorf("--file: %w", err)}
		}
		return nil, err
	}
	for _, w := range dir.Warnings() {
		fmt.Fprintf(stderr, "flagline contacts: warning: %s\n", w)
	}
	return dir, nil
}
