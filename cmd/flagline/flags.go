package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The command line plumbing the subcommands share: one way to parse flags
// and to turn mistakes into exit statuses (flag.ErrHelp: 0, usageError: 2),
// one --table flag with its $TABLE_NAME default, one AWS configuration.

// subcommand returns args[0] when it is one of subs. "-h", "--help" and
// "help" print usage and return flag.ErrHelp; no subcommand prints usage
// too. what names the word in the messages ("subcommand", "token
// subcommand").
func subcommand(args []string, what, usage string, stderr io.Writer, subs ...string) (string, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return "", usageError{fmt.Errorf("missing %s: %s", what, orList(subs))}
	}
	switch sub := args[0]; {
	case sub == "-h" || sub == "--help" || sub == "help":
		fmt.Fprint(stderr, usage)
		return "", flag.ErrHelp
	case !slices.Contains(subs, sub):
		return "", usageError{fmt.Errorf("unknown %s %q: use %s", what, sub, orList(subs))}
	default:
		return sub, nil
	}
}

// orList joins "a", "b", "c" as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// newFlagSet returns the flag set of "flagline <name>": its errors and its
// help (usage, then every flag) go to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args: a help request is flag.ErrHelp (exit 0), any
// other mistake a usageError (exit 2). The flag package has already printed
// the help, or the mistake and the help, to the flag set's output.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// noArgs refuses what is left after the flags: every value of these
// commands needs its flag.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q; every value needs its flag", fs.Arg(0))}
	}
	return nil
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// tableFlag defines --table, the name of the Flagline table, into table;
// resolveTable gives it its default.
func tableFlag(fs *flag.FlagSet, table *string) {
	fs.StringVar(table, "table", "", "`name` of the Flagline table; default $"+tableEnv)
}

// missingTable is how a missing --table is listed among missing flags.
const missingTable = "--table (or " + tableEnv + ")"

// resolveTable fills an empty --table from $TABLE_NAME (the functions'
// variable) and reports whether a table is named.
func resolveTable(table *string) bool {
	return flagOrEnv(table, tableEnv)
}

// flagOrEnv fills a flag's empty value from the environment variable env,
// trimmed, and reports whether it has a value.
func flagOrEnv(v *string, env string) bool {
	if *v == "" {
		*v = strings.TrimSpace(os.Getenv(env))
	}
	return *v != ""
}

// missingFlags collects, in order, the required flags a command line lacks.
type missingFlags []string

// need adds name unless given.
func (m *missingFlags) need(given bool, name string) {
	if !given {
		*m = append(*m, name)
	}
}

// err is the usage error naming them all, or nil.
func (m missingFlags) err() error {
	if len(m) == 0 {
		return nil
	}
	return usageError{fmt.Errorf("missing %s", strings.Join(m, ", "))}
}

// awsConfig loads the AWS configuration from the standard chain
// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, …).
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// dynamoDB is a DynamoDB client from the standard chain, for the commands
// that use the table only.
func dynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}
