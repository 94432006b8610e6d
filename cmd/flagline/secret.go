package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["secret"] = command{
		summary: "print a new random webhook signing secret (whsec_…)",
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			fs := flag.NewFlagSet("secret", flag.ContinueOnError)
			fs.SetOutput(stderr)
			if err := fs.Parse(args); err != nil {
				return err
			}
			_, err := fmt.Fprintln(stdout, webhook.NewSecret())
			return err
		},
	}
}
