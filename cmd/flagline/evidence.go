package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flagline/flagline/internal/evidence"
)

func init() {
	commands["evidence"] = command{summary: "export a case as an evidence bundle, or verify one", run: runEvidence}
}

const evidenceUsage = `usage: flagline evidence export --case ID [--table NAME] [--out FILE]
       flagline evidence verify [--bundle-hash HEX] FILE

export writes the evidence bundle of a case: the case, every report's
received time and SHA-256 of its raw body (the notifier's name and email
only while the report item keeps them), and the timeline as a hash chain,
sealed by a bundle_hash. Without --out it goes to standard output. The
bundle may hold personal data: --out creates the file readable by you
only, and never overwrites one.

verify recomputes every hash of a bundle ("-" reads standard input) and
exits 0 with a summary when it is intact, 1 naming the first part that
was changed otherwise. A bundle proves it is unchanged since its
bundle_hash was computed: keep the bundle_hash that export prints apart
from the file, and give it to --bundle-hash.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

flags:
`

type evidenceOptions struct {
	caseID     string
	table      string
	out        string
	file       string
	bundleHash string
}

func parseEvidenceFlags(sub string, args []string, stderr io.Writer) (*evidenceOptions, error) {
	o := &evidenceOptions{}
	fs := newFlagSet("evidence "+sub, evidenceUsage, stderr)
	if sub == "export" {
		fs.StringVar(&o.caseID, "case", "", "`id` of the case (required)")
		tableFlag(fs, &o.table)
		fs.StringVar(&o.out, "out", "", "`file` to create; default standard output")
	} else {
		fs.StringVar(&o.bundleHash, "bundle-hash", "", "the bundle_hash `hex` recorded at export; the bundle must have it")
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if sub == "verify" {
		if fs.NArg() != 1 {
			return nil, usageError{errors.New("give exactly one bundle FILE (or - for standard input)")}
		}
		o.file = fs.Arg(0)
		o.bundleHash = strings.ToLower(strings.TrimSpace(o.bundleHash))
		return o, nil
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	var missing missingFlags
	missing.need(strings.TrimSpace(o.caseID) != "", "--case")
	missing.need(resolveTable(&o.table), missingTable)
	if err := missing.err(); err != nil {
		return nil, err
	}
	return o, nil
}

func runEvidence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "subcommand", evidenceUsage, stderr, "export", "verify")
	if err != nil {
		return err
	}
	o, err := parseEvidenceFlags(sub, args[1:], stderr)
	if err != nil {
		return err
	}
	if sub == "verify" {
		return verifyEvidence(o, os.Stdin, stdout)
	}
	db, err := dynamoDB(ctx)
	if err != nil {
		return err
	}
	return exportEvidence(ctx, db, o, stdout, stderr)
}

func exportEvidence(ctx context.Context, db evidence.DB, o *evidenceOptions, stdout, stderr io.Writer) error {
	b, err := evidence.Export(ctx, db, o.table, o.caseID)
	if err != nil {
		return err
	}
	data, err := b.Encode()
	if err != nil {
		return err
	}
	summary := stdout
	if o.out == "" {
		if _, err := stdout.Write(data); err != nil {
			return err
		}
		summary = stderr
	} else if err := writeNew(o.out, data); err != nil {
		return err
	}
	notifiers := 0
	for _, r := range b.Reports {
		if r.Notifier != nil {
			notifiers++
		}
	}
	fmt.Fprintf(summary, "Exported case %s: %d reports (%d with the notifier's personal data), %d timeline events.\n", b.Case.CaseID, len(b.Reports), notifiers, len(b.Timeline))
	if n := b.Case.ReportCount; n > len(b.Reports) {
		fmt.Fprintf(summary, "The case counted %d reports; the other %d report items have expired (or are not yet in the index).\n", n, n-len(b.Reports))
	}
	fmt.Fprintf(summary, "bundle_hash %s\nKeep the bundle_hash apart from the file; check the file with flagline evidence verify --bundle-hash %s FILE.\n", b.BundleHash, b.BundleHash)
	return nil
}

// writeNew creates file name readable by its owner only (a bundle may hold
// notifiers' personal data) and never replaces an existing one.
func writeNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func verifyEvidence(o *evidenceOptions, stdin io.Reader, stdout io.Writer) error {
	r := stdin
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	s, err := evidence.Verify(r)
	if err != nil {
		return fmt.Errorf("%s: %w", o.file, err)
	}
	if o.bundleHash != "" && o.bundleHash != s.BundleHash {
		return fmt.Errorf("%s: %w: its bundle_hash is %s, not the recorded %s: it was exported again or re-sealed after a change", o.file, evidence.ErrAltered, s.BundleHash, o.bundleHash)
	}
	fmt.Fprintf(stdout, "%s: intact. Case %s: %d reports (%d with the notifier's personal data), %d timeline events, exported at %s.\nbundle_hash %s\n",
		o.file, s.CaseID, s.Reports, s.Notifiers, s.Events, s.ExportedAt, s.BundleHash)
	return nil
}
