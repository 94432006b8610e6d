package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/apigw"
	"github.com/flagline/flagline/shared/devstack"
	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["dev"] = command{
		summary: "run Flagline locally: moto_server, the template's resources and its HTTP API",
		run:     runDev,
	}
}

// httpHandlers are the in-process handlers of the template's HTTP functions,
// built exactly as each function's main builds them.
var httpHandlers = map[string]devstack.HTTPFactory{
	"IngestFunction": func(cfg aws.Config, env map[string]string) (apigw.Handler, error) {
		h, err := intake.FromEnv(cfg, devstack.Getenv(env), devLogger("IngestFunction"))
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	},
}

var devLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func devLogger(function string) *slog.Logger { return devLog.With("function", function) }

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:3000", "address to serve the HTTP API on")
	tpl := fs.String("template", "template.yaml", "the SAM template to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	secrets := os.Getenv(webhook.EnvSecrets)
	demoSecret := ""
	if secrets == "" {
		demoSecret = webhook.NewSecret()
		secrets = fmt.Sprintf(`{"demo":[%q]}`, demoSecret)
	} else if _, err := webhook.ParseSources(secrets); err != nil {
		return usageError{fmt.Errorf("%s: %w", webhook.EnvSecrets, err)}
	}

	fmt.Fprintln(stderr, "flagline dev: starting moto_server and the local API …")
	stack, err := devstack.Start(ctx, devstack.Options{
		Template: *tpl,
		Addr:     *addr,
		Env:      map[string]string{webhook.EnvSecrets: secrets},
		HTTP:     httpHandlers,
		Log:      devLog,
	})
	if err != nil {
		return err
	}
	defer stack.Close()

	fmt.Fprintf(stdout, "moto_server (local AWS): %s\n", stack.Moto.URL)
	for id, name := range stack.Resources.Names {
		fmt.Fprintf(stdout, "resource %-14s %s\n", id, name)
	}
	for _, r := range stack.Routes {
		fmt.Fprintf(stdout, "route    %-40s → %s\n", r.Key(), r.Function)
	}
	fmt.Fprintf(stdout, "API: %s\n\n", stack.URL)
	if demoSecret != "" {
		fmt.Fprintf(stdout, "source demo, secret %s (made for this run only)\n", demoSecret)
		fmt.Fprintf(stdout, "send a report:\n\n  FLAGLINE_SECRET='%s' go run ./cmd/flagline send --endpoint %s --source demo --url 'https://m.facebook.com/groups/123/posts/456/?mibextid=x' --country IT\n\n", demoSecret, stack.URL)
	} else {
		fmt.Fprintf(stdout, "sources from %s; send with: go run ./cmd/flagline send --endpoint %s --source NAME --url URL (secret in FLAGLINE_SECRET)\n\n", webhook.EnvSecrets, stack.URL)
	}
	fmt.Fprintln(stdout, "Ctrl-C stops everything.")
	<-ctx.Done()
	fmt.Fprintln(stderr, "flagline dev: stopping …")
	return nil
}
