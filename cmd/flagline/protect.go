package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/protect"
)

func init() {
	commands["protect"] = command{summary: "store the humanitarian allow-list (content never sent for takedown)", run: runProtect}
}

const protectUsage = `usage: flagline protect apply --file humanitarian.yaml --table NAME [--dry-run]
       flagline protect show [--table NAME | --file humanitarian.yaml]
       flagline protect validate --file humanitarian.yaml

apply stores the humanitarian allow-list in the table: cases created after
it whose content is a listed source's (a domain, an account path, a
platform handle) are marked protected; their alerts say "humanitarian
source: do not request takedown", and takedown_requested on them is refused
unless the EU coordinator sends an override_reason. The plan (entries
added and removed) is printed first; with --dry-run nothing is changed.
The file replaces the stored list as a whole; applying it again changes
nothing. See humanitarian.example.yaml for the format.

show prints the stored list (--table), or what a file protects (--file),
one entry a line in canonical form. validate checks a file without AWS.

The file may also be given as the one argument instead of --file. AWS
credentials, region and endpoint come from the standard chain (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL for moto).

flags:
`

func runProtect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, protectUsage)
		return usageError{errors.New("missing subcommand: apply, show or validate")}
	}
	switch args[0] {
	case "apply", "show", "validate":
	case "-h", "--help", "help":
		fmt.Fprint(stderr, protectUsage)
		return flag.ErrHelp
	default:
		return usageError{fmt.Errorf("unknown subcommand %q: use apply, show or validate", args[0])}
	}
	o, err := parseProtectFlags(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "apply":
		l, err := protect.Load(o.file)
		if err != nil {
			return err
		}
		db, err := protectTable(ctx)
		if err != nil {
			return err
		}
		_, err = protect.Apply(ctx, db, o.table, l, o.dryRun, time.Now(), stdout)
		return err
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
	db, err := protectTable(ctx)
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
}

func parseProtectFlags(sub string, args []string, stderr io.Writer) (*protectOptions, error) {
	o := &protectOptions{}
	fs := flag.NewFlagSet("protect "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), protectUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.file, "file", "", "humanitarian allow-list `file`, e.g. humanitarian.yaml")
	if sub != "validate" {
		fs.StringVar(&o.table, "table", "", "`name` of the Flagline table; default $"+tableEnv)
	}
	if sub == "apply" {
		fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
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
	if needTable && o.table == "" {
		o.table = strings.TrimSpace(os.Getenv(tableEnv))
	}
	var missing []string
	if o.file == "" && sub != "show" {
		missing = append(missing, "--file")
	}
	if needTable && o.table == "" {
		missing = append(missing, "--table (or "+tableEnv+")")
	}
	if len(missing) > 0 {
		return nil, usageError{fmt.Errorf("missing %s", strings.Join(missing, ", "))}
	}
	return o, nil
}

func protectTable(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
