package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
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
       flagline contacts validate --file contacts.yaml

apply reconciles the alerts topic with the contact directory file, like
kubectl apply with pruning: it subscribes every endpoint the file declares
with its filter policy, updates subscriptions whose filter policy or
dead-letter queue differ, and unsubscribes every subscription on the topic
that the file does not declare: the topic belongs to the file. It also
stores one entry per contact point in the table (and removes entries of
contact points no longer in the file). The plan is printed first; with
--dry-run nothing is changed. Applying the same file again changes nothing.

Subscriptions awaiting confirmation (email, https) can be neither changed
nor removed; they are listed as pending. The dead-letter queue must be in
the topic's account and region, and its policy must let the topic send to it.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

validate checks the file and prints nothing else; it needs no AWS access.

flags:
`

func runContacts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, contactsUsage)
		return usageError{errors.New("missing subcommand: apply or validate")}
	}
	switch args[0] {
	case "apply":
		return runContactsApply(ctx, args[1:], stdout, stderr)
	case "validate":
		return runContactsValidate(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stderr, contactsUsage)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q: use apply or validate", args[0])}
}

// contactsOptions are the parsed flags of "flagline contacts apply".
type contactsOptions struct {
	file   string
	target contacts.Target
	dryRun bool
}

func newContactsFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("contacts "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), contactsUsage)
		fs.PrintDefaults()
	}
	return fs
}

func parseContactsApplyFlags(args []string, stderr io.Writer) (*contactsOptions, error) {
	o := &contactsOptions{}
	fs := newContactsFlags("apply", stderr)
	fs.StringVar(&o.file, "file", "", "contact directory `file` (required), e.g. contacts.yaml")
	fs.StringVar(&o.target.TopicARN, "topic-arn", "", "`ARN` of the alerts topic; default $"+topicEnv)
	fs.StringVar(&o.target.Table, "table", "", "`name` of the Flagline table; default $"+tableEnv)
	fs.StringVar(&o.target.DLQARN, "dlq-arn", "", "`ARN` of the SQS dead-letter queue of every subscription; default $"+dlqEnv+" (none if unset)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q; every value needs its flag", fs.Arg(0))}
	}
	for _, f := range []struct {
		v   *string
		env string
	}{{&o.target.TopicARN, topicEnv}, {&o.target.Table, tableEnv}, {&o.target.DLQARN, dlqEnv}} {
		if *f.v == "" {
			*f.v = strings.TrimSpace(os.Getenv(f.env))
		}
	}
	var missing []string
	if o.file == "" {
		missing = append(missing, "--file")
	}
	if o.target.TopicARN == "" {
		missing = append(missing, "--topic-arn (or "+topicEnv+")")
	}
	if o.target.Table == "" {
		missing = append(missing, "--table (or "+tableEnv+")")
	}
	if len(missing) > 0 {
		return nil, usageError{fmt.Errorf("missing %s", strings.Join(missing, ", "))}
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
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// The topic's ARN names its region: use it rather than fail.
		cfg.Region = strings.Split(o.target.TopicARN, ":")[3]
	}
	clients := contacts.Clients{SNS: sns.NewFromConfig(cfg), DynamoDB: dynamodb.NewFromConfig(cfg)}
	_, err = contacts.Apply(ctx, clients, o.target, dir, contacts.Options{DryRun: o.dryRun, Out: stdout})
	return err
}

func runContactsValidate(args []string, stdout, stderr io.Writer) error {
	fs := newContactsFlags("validate", stderr)
	file := fs.String("file", "", "contact directory `file` (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
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
