package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/outcome"
	"github.com/flagline/flagline/shared/protect"
	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["dev"] = command{
		summary: "run Flagline locally: moto_server, the template's resources and its HTTP API",
		run:     runDev,
	}
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Once Ctrl-C has been pressed, work abandoned at the end of the drain
	// fails with context.Canceled; that is the stop the user asked for, not
	// an error to show them.
	devLog := slog.New(&stoppingFilter{Handler: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), stopping: ctx.Done()})
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:3000", "address to serve the HTTP API on")
	tpl := fs.String("template", "template.yaml", "the SAM template to run")
	motoPort := fs.Int("moto-port", 0, "loopback port for moto_server (0: a free one); fix it to point `sam local` at it with env.json")
	contactsFile := fs.String("contacts", "contacts.example.yaml", "contact directory to subscribe, each contact point to a local inbox (\"\" for none)")
	humanitarianFile := fs.String("humanitarian", "humanitarian.example.yaml", "humanitarian allow-list to store in the table, as flagline protect apply does; by default the one beside the template (\"\" for none)")
	params := paramFlag{}
	fs.Var(params, "param", "override a template parameter, `Name=Value`, as sam deploy --parameter-overrides does (repeatable)")
	scheduleEvery := fs.Duration("schedule-every", 0, "run every scheduled function at this interval (e.g. 2s) instead of its rate; 0: the template's rate")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *scheduleEvery < 0 {
		return usageError{fmt.Errorf("-schedule-every %v: not positive", *scheduleEvery)}
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

	// Outcome webhooks to the sources (shared/outcome): endpoints as
	// {"<source>":"<url>"}; locally http to loopback is allowed.
	endpoints := os.Getenv(outcome.EnvEndpoints)
	if endpoints != "" {
		if _, err := outcome.ParseEndpoints(endpoints, outcome.Policy{Local: true}); err != nil {
			return usageError{fmt.Errorf("%s: %w", outcome.EnvEndpoints, err)}
		}
	}

	var dir *contacts.Directory
	if *contactsFile != "" {
		d, err := contacts.Load(*contactsFile)
		if err != nil {
			return err
		}
		dir = d
	}
	var humanitarian *protect.List
	if *humanitarianFile != "" {
		path := *humanitarianFile
		if !flagSet(fs, "humanitarian") {
			path = filepath.Join(filepath.Dir(*tpl), path)
		}
		l, err := protect.Load(path)
		if err != nil {
			return err
		}
		humanitarian = l
	}

	fmt.Fprintln(stderr, "flagline dev: starting moto_server and the local API …")
	opts := devstack.Options{
		Template: *tpl,
		Addr:     *addr,
		Env:      map[string]string{webhook.EnvSecrets: secrets, outcome.EnvEndpoints: endpoints},
		Contacts: dir,
		Log:      devLog,
		MotoPort: *motoPort,
		Params:   params,
		// A positive interval replaces every schedule's rate.
		ScheduleEvery: *scheduleEvery,
		// The example allow-list, as the example contact directory.
		Humanitarian: humanitarian,
	}
	opts.Functions(devLog)
	box := inbox.New(0)
	opts.Mux = func(m *http.ServeMux) {
		h := box.Handler()
		m.Handle("GET "+inbox.PagePath, h)
		m.Handle("GET "+inbox.JSONPath, h)
	}
	stack, err := devstack.Start(ctx, opts)
	if errors.Is(err, samtemplate.ErrInvalidParameter) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	defer stack.Close()
	printOverrides(stdout, stack.Template(), params, *scheduleEvery, stack.Schedules)

	fmt.Fprintf(stdout, "moto_server (local AWS): %s\n", stack.Moto.URL)
	for _, id := range slices.Sorted(maps.Keys(stack.Locals.Refs)) {
		fmt.Fprintf(stdout, "resource %-26s %s\n", id, stack.Locals.Refs[id])
	}
	for _, r := range stack.Routes {
		fmt.Fprintf(stdout, "route    %-40s → %s\n", r.Key(), r.Function)
	}
	for _, m := range stack.Mappings {
		fmt.Fprintf(stdout, "stream   %-40s → %s\n", fmt.Sprintf("batches of %d", m.BatchSize), m.Name)
	}
	for _, id := range slices.Sorted(maps.Keys(stack.Inboxes)) {
		fmt.Fprintf(stdout, "inbox    %s\n", id)
	}
	// Local tokens, made for this run: printing them is what makes the
	// case API usable locally. A deployment shows a token only to whoever
	// runs flagline contacts token create.
	for _, id := range slices.Sorted(maps.Keys(stack.Tokens)) {
		fmt.Fprintf(stdout, "token    %s %s\n", id, stack.Tokens[id])
	}
	fmt.Fprintf(stdout, "API: %s\n\n", stack.URL)
	if demoSecret != "" {
		fmt.Fprintf(stdout, "source demo, secret %s (made for this run only)\n", demoSecret)
		fmt.Fprintf(stdout, "send a report:\n\n  FLAGLINE_SECRET='%s' go run ./cmd/flagline send --endpoint %s --source demo --url 'https://m.facebook.com/groups/123/posts/456/?mibextid=x' --country IT\n\n", demoSecret, stack.URL)
	} else {
		fmt.Fprintf(stdout, "sources from %s; send with: go run ./cmd/flagline send --endpoint %s --source NAME --url URL (secret in FLAGLINE_SECRET)\n\n", webhook.EnvSecrets, stack.URL)
	}
	fmt.Fprintf(stdout, "inbox: %s%s (JSON: %s%s)\n", stack.URL, inbox.PagePath, stack.URL, inbox.JSONPath)
	if id := firstKey(stack.Tokens); id != "" {
		fmt.Fprintf(stdout, "case API tokens (this run only): %s%s; list %s's cases:\n\n  curl -H 'Authorization: Bearer %s' %s/v1/cases\n\n",
			stack.URL, devstack.TokensPath, id, stack.Tokens[id], stack.URL)
	}
	fmt.Fprintln(stdout, "Ctrl-C stops everything.")
	poller := &inbox.Poller{
		SQS: sqs.NewFromConfig(stack.AWS), Queues: stack.Inboxes, Inbox: box, Log: devLog,
		OnAlert: func(a inbox.Alert) { fmt.Fprintln(stdout, inbox.Line(a)) },
	}
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		_ = poller.Run(ctx, 250*time.Millisecond)
	}()
	<-ctx.Done()
	<-polled
	fmt.Fprintln(stderr, "flagline dev: stopping: finishing requests and stream batches in hand …")
	stack.Close()
	fmt.Fprintln(stderr, "flagline dev: stopped")
	return nil
}

// paramFlag collects repeated -param Name=Value flags.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want Name=Value", v)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("parameter %s given twice", name)
	}
	p[name] = value
	return nil
}

// printOverrides prints the parameter overrides and schedules in effect
// (a NoEcho parameter's value masked).
func printOverrides(w io.Writer, tpl *samtemplate.Template, params map[string]string, every time.Duration, schedules []devstack.ScheduledFunction) {
	for _, name := range slices.Sorted(maps.Keys(params)) {
		p, err := tpl.DeclaredParameter(name)
		if err != nil {
			continue // Start has checked every name
		}
		def := "no default"
		if p.HasDefault {
			def = "template default " + p.Shown(p.Default)
		}
		fmt.Fprintf(w, "param    %s = %s (%s)\n", name, p.Shown(params[name]), def)
	}
	if every > 0 && len(schedules) == 0 {
		fmt.Fprintf(w, "schedule every %v: the template has no scheduled function\n", every)
	}
	for _, sf := range schedules {
		if sf.Disabled {
			fmt.Fprintf(w, "schedule %-40s → %s (disabled in the template)\n", sf.Expression, sf.Function)
			continue
		}
		fmt.Fprintf(w, "schedule %-40s → %s\n", fmt.Sprintf("every %v (template: %s)", sf.Every, sf.Expression), sf.Function)
	}
}

// firstKey is m's smallest key, "" when m is empty.
func firstKey(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	return slices.Min(slices.Collect(maps.Keys(m)))
}

// stoppingFilter drops log records caused by cancellation once stopping is
// closed; everything else passes to Handler.
type stoppingFilter struct {
	slog.Handler
	stopping <-chan struct{}
	canceled bool // an attribute added by WithAttrs carries a cancellation
}

func (f *stoppingFilter) Handle(ctx context.Context, r slog.Record) error {
	select {
	case <-f.stopping:
		canceled := f.canceled
		r.Attrs(func(a slog.Attr) bool {
			canceled = canceled || isCancellation(a.Value)
			return !canceled
		})
		if canceled {
			return nil
		}
	default:
	}
	return f.Handler.Handle(ctx, r)
}

func (f *stoppingFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	canceled := f.canceled
	for _, a := range attrs {
		canceled = canceled || isCancellation(a.Value)
	}
	return &stoppingFilter{Handler: f.Handler.WithAttrs(attrs), stopping: f.stopping, canceled: canceled}
}

func (f *stoppingFilter) WithGroup(name string) slog.Handler {
	return &stoppingFilter{Handler: f.Handler.WithGroup(name), stopping: f.stopping, canceled: f.canceled}
}

func isCancellation(v slog.Value) bool {
	err, ok := v.Resolve().Any().(error)
	return ok && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
