package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["secret"] = command{
		summary: "print a new random webhook signing secret (whsec_…), or with --notifier-key / --link-key a key",
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			fs := flag.NewFlagSet("secret", flag.ContinueOnError)
			fs.SetOutput(stderr)
			notifierKey := fs.Bool("notifier-key", false, "print a key for notifier pseudonyms (base64, for the SecureString /flagline/<stage>/notifier-key)")
			linkKey := fs.Bool("link-key", false, "print a key for the signed links of alert emails (base64, for the SecureString /flagline/<stage>/link-key)")
			if err := parseFlags(fs, args); err != nil {
				return err
			}
			if *notifierKey && *linkKey {
				return usageError{fmt.Errorf("--notifier-key and --link-key: choose one")}
			}
			if fs.NArg() > 0 {
				return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
			}
			s := webhook.NewSecret()
			if *notifierKey {
				s = reportstore.NewNotifierKey()
			}
			if *linkKey {
				s = linksign.NewKey()
			}
			_, err := fmt.Fprintln(stdout, s)
			return err
		},
	}
}
