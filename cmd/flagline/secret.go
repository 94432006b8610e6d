package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["secret"] = command{
		summary: "print a new random webhook signing secret (whsec_…), or with --notifier-key a notifier key",
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			fs := flag.NewFlagSet("secret", flag.ContinueOnError)
			fs.SetOutput(stderr)
			notifierKey := fs.Bool("notifier-key", false, "print a key for notifier pseudonyms (base64, for the SecureString /flagline/<stage>/notifier-key)")
			if err := fs.Parse(args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
			}
			s := webhook.NewSecret()
			if *notifierKey {
				s = reportstore.NewNotifierKey()
			}
			_, err := fmt.Fprintln(stdout, s)
			return err
		},
	}
}
