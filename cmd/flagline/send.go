package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/webhook"
)

func init() {
	commands["send"] = command{summary: "sign and post reports to an intake endpoint", run: runSend}
}

// defaultEndpoint is the local dev server of "flagline dev".
const defaultEndpoint = "http://127.0.0.1:3000"

// secretEnv names the environment variable read when --secret is not given.
const secretEnv = "FLAGLINE_SECRET"

// stdin is read by --file -; tests replace it.
var stdin io.Reader = os.Stdin

// categories are the report categories the intake accepts.
var categories = []string{
	"smuggling_offer", "forged_documents", "transport", "accommodation",
	"recruitment", "threat_to_life", "other",
}

// reportFlags are the flags that build a single report; they have no
// meaning with --file.
var reportFlags = []string{
	"url", "category", "explanation", "country", "notifier-name",
	"notifier-email", "platform", "language",
}

const sendUsage = `usage: flagline send --source NAME [--endpoint URL] [--secret whsec_…] --url URL [report flags]
       flagline send --source NAME [--endpoint URL] [--secret whsec_…] --file reports.jsonl

Signs reports with the source's secret (Standard Webhooks) and posts them to
{endpoint}/v1/sources/{source}/reports.

The secret is taken from --secret or, if that is not given, from the
FLAGLINE_SECRET environment variable. Prefer the variable: it keeps the
secret out of shell history and process lists. The secret is never printed.

One report: built from the report flags (good_faith is always true) and sent
under a fresh random webhook-id. The server's JSON answer is printed on
stdout as one line (pipe it to jq); the exit status is 0 if the report was
accepted, 1 if not.

Many reports, with --file (- for stdin): each non-blank line of a JSON Lines
file is one report body, sent as it is. A line's webhook-id is
msg_ + the first 24 hex digits of SHA-256("<file base name>|<line number>|<line>"),
so sending the same file again, after an interruption say, is safe: reports
the server already has come back with "duplicate": true and are not counted
twice. A line that is edited or moved becomes a new delivery. Answers are
printed on stdout in file order, one JSON line each:
{"line":N,"status":202,"webhook_id":…,"attempts":…, …the server's answer…};
a summary goes to stderr. The exit status is 1 if any line was refused or
failed.

A 429, a 5xx or a network error is retried with the same webhook-id, signed
afresh, after the server's Retry-After or an exponential backoff (at most
10s a wait). Other refusals are final.

flags:
`

// sendOptions are the parsed flags of "flagline send".
type sendOptions struct {
	endpoint, source, secret, file string
	concurrency, maxRetries        int
	timeout                        time.Duration
	progress                       bool
	report                         reportBody
	set                            map[string]bool // flags given explicitly
}

// reportBody is the JSON body of a single report.
type reportBody struct {
	URL         string   `json:"url"`
	Category    string   `json:"category"`
	Explanation string   `json:"explanation"`
	Notifier    notifier `json:"notifier"`
	GoodFaith   bool     `json:"good_faith"`
	Countries   []string `json:"countries,omitempty"`
	Platform    string   `json:"platform,omitempty"`
	Language    string   `json:"language,omitempty"`
}

type notifier struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// listFlag is a repeatable flag; a value may also list items with commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseSendFlags(args, stderr)
	if err != nil {
		return err
	}
	client, err := newSendClient(opts)
	if err != nil {
		return err
	}
	if warning := plainHTTPWarning(opts.endpoint); warning != "" {
		fmt.Fprintln(stderr, warning)
	}
	if opts.file != "" {
		return sendFile(ctx, client, opts, stdout, stderr)
	}
	return sendOne(ctx, client, opts, stdout, stderr)
}

func parseSendFlags(args []string, stderr io.Writer) (*sendOptions, error) {
	o := &sendOptions{set: map[string]bool{}}
	var countries listFlag
	fs := newFlagSet("send", sendUsage, stderr)
	fs.StringVar(&o.endpoint, "endpoint", defaultEndpoint, "base `URL` of the intake (the default is the local dev server of flagline dev)")
	fs.StringVar(&o.source, "source", "", "`name` of the source the secret belongs to (required)")
	fs.StringVar(&o.secret, "secret", "", "signing `secret` whsec_…; default $"+secretEnv+", which is safer")
	fs.StringVar(&o.file, "file", "", "JSON Lines `file` of report bodies to send, - for stdin")
	fs.IntVar(&o.concurrency, "concurrency", 4, "reports in flight at once, with --file")
	fs.BoolVar(&o.progress, "progress", false, "show a progress bar on stderr with --file (default: when stderr is a terminal)")
	fs.IntVar(&o.maxRetries, "max-retries", sender.DefaultMaxRetries, "retries of one delivery after a 429, a 5xx or a network error")
	fs.DurationVar(&o.timeout, "timeout", sender.DefaultTimeout, "time limit of one request")
	fs.StringVar(&o.report.URL, "url", "", "`URL` of the content reported (required without --file)")
	fs.StringVar(&o.report.Category, "category", "smuggling_offer", "report category: "+strings.Join(categories, ", "))
	fs.StringVar(&o.report.Explanation, "explanation", "Reported with flagline send", "why the content advertises migrant smuggling")
	fs.Var(&countries, "country", "ISO 3166 alpha-2 `code` (or EU) of a country concerned; repeat for more")
	fs.StringVar(&o.report.Notifier.Name, "notifier-name", "Flagline CLI", "`name` of the person or body reporting")
	fs.StringVar(&o.report.Notifier.Email, "notifier-email", "cli@flagline.invalid", "`email` of the person or body reporting")
	fs.StringVar(&o.report.Platform, "platform", "", "`platform` the content is on (optional)")
	fs.StringVar(&o.report.Language, "language", "", "`language` of the content (optional)")

	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	o.report.Countries = countries
	o.report.GoodFaith = true

	if err := noArgs(fs); err != nil {
		return nil, err
	}
	if o.source == "" {
		return nil, usageError{errors.New("--source is required")}
	}
	if !webhook.ValidSourceName(o.source) {
		return nil, usageError{errors.New("--source must be lower-case letters, digits, - or _ (at most 63)")}
	}
	if o.secret == "" {
		o.secret = os.Getenv(secretEnv)
		if o.secret == "" {
			return nil, usageError{errors.New("--secret is required (or set " + secretEnv + ")")}
		}
		o.set["env-secret"] = true
	}
	if o.timeout <= 0 {
		return nil, usageError{errors.New("--timeout must be positive")}
	}
	if o.maxRetries < 0 {
		return nil, usageError{errors.New("--max-retries must be 0 or more")}
	}
	if o.file != "" {
		for _, name := range reportFlags {
			if o.set[name] {
				return nil, usageError{fmt.Errorf("--%s cannot be combined with --file: each line of the file is a whole report", name)}
			}
		}
		if o.concurrency < 1 || o.concurrency > 64 {
			return nil, usageError{errors.New("--concurrency must be 1 to 64")}
		}
		return o, nil
	}
	if o.set["concurrency"] {
		return nil, usageError{errors.New("--concurrency applies only with --file")}
	}
	if o.report.URL == "" {
		return nil, usageError{errors.New("--url is required (or give --file)")}
	}
	if !slices.Contains(categories, o.report.Category) {
		return nil, usageError{fmt.Errorf("--category must be one of %s", strings.Join(categories, ", "))}
	}
	return o, nil
}

// newSendClient checks the secret and endpoint and builds the client. Its
// errors name the flag, never the secret's value.
func newSendClient(o *sendOptions) (*sender.Client, error) {
	secret, err := webhook.ParseSecret(o.secret)
	if err != nil {
		where := "--secret"
		if o.set["env-secret"] {
			where = secretEnv
		}
		return nil, usageError{fmt.Errorf("%s: %w", where, err)}
	}
	client, err := sender.New(o.endpoint, o.source, secret)
	if err != nil {
		return nil, usageError{fmt.Errorf("--endpoint: %w", err)}
	}
	client.HTTP.Timeout = o.timeout
	client.MaxRetries = o.maxRetries
	return client, nil
}

// plainHTTPWarning warns when reports, which carry the notifier's contact
// details, would cross a network unencrypted.
func plainHTTPWarning(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return ""
	}
	return "flagline send: warning: --endpoint is plain http; reports travel unencrypted"
}

// sendOne sends the report built from the flags.
func sendOne(ctx context.Context, client *sender.Client, o *sendOptions, stdout, stderr io.Writer) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o.report); err != nil {
		return err
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))

	client.OnRetry = func(r sender.Retry) {
		why := "HTTP " + strconv.Itoa(r.Status)
		if r.Err != nil {
			why = r.Err.Error()
		}
		fmt.Fprintf(stderr, "flagline send: %s; retrying in %s (attempt %d of %d)\n",
			why, r.Wait.Round(time.Millisecond), r.Attempt+1, client.MaxRetries+1)
	}
	res, err := client.Send(ctx, sender.NewDeliveryID(), body)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before an answer came; the report may or may not have been stored: %w", err)
		}
		if errors.Is(err, syscall.ECONNREFUSED) && o.endpoint == defaultEndpoint {
			return fmt.Errorf("%w (is the local dev server running? start it with: flagline dev)", err)
		}
		return err
	}
	if line, ok := compactJSON(res.Body); ok {
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return err
		}
	}
	return res.Err()
}

// compactJSON returns a JSON answer on one line, or false if it is not JSON.
func compactJSON(data []byte) ([]byte, bool) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimSpace(data)); err != nil || buf.Len() == 0 {
		return nil, false
	}
	return buf.Bytes(), true
}

// fileLine is one report of a JSON Lines file.
type fileLine struct {
	no   int
	id   string
	body []byte
}

// readReportLines reads the non-blank lines of r, without their line ends
// (and a leading byte order mark), and derives their webhook-ids from name.
func readReportLines(r io.Reader, name string) ([]fileLine, error) {
	var lines []fileLine
	br := bufio.NewReader(r)
	for no := 1; ; no++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("line %d: %w", no, err)
		}
		body := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if no == 1 {
			body = bytes.TrimPrefix(body, []byte("\ufeff"))
		}
		if len(bytes.TrimSpace(body)) > 0 {
			lines = append(lines, fileLine{no: no, id: sender.LineDeliveryID(name, no, body), body: body})
		}
		if err != nil { // io.EOF
			return lines, nil
		}
	}
}

// sendOutcome is the end of one line's delivery.
type sendOutcome struct {
	res  sender.Result
	err  error
	done bool
}

// tally counts outcomes for the summary.
type tally struct{ sent, accepted, duplicates, refused, failed int }

func (t *tally) add(o sendOutcome) {
	t.sent++
	switch {
	case o.err != nil || o.res.Retryable() || o.res.Status == 0:
		t.failed++
	case o.res.Accepted():
		t.accepted++
		if o.res.Duplicate {
			t.duplicates++
		}
	default:
		t.refused++
	}
}

// sendFile sends each line of --file through a bounded pool of workers and
// prints the answers in line order as they become ready.
func sendFile(ctx context.Context, client *sender.Client, o *sendOptions, stdout, stderr io.Writer) error {
	var in io.Reader
	name := "-"
	if o.file == "-" {
		in = stdin
	} else {
		f, err := os.Open(o.file)
		if err != nil {
			return usageError{fmt.Errorf("--file: %w", err)}
		}
		defer f.Close()
		in, name = f, filepath.Base(o.file)
	}
	lines, err := readReportLines(in, name)
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.file, err)
	}

	var bar *progressbar.ProgressBar
	if show := isTerminal(stderr); (o.set["progress"] && o.progress) || (!o.set["progress"] && show) {
		bar = progressbar.NewOptions(len(lines),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(),
		)
		_ = bar.RenderBlank()
	}

	type done struct {
		i int
		sendOutcome
	}
	jobs := make(chan int)
	results := make(chan done)
	var wg sync.WaitGroup
	for range min(o.concurrency, len(lines)) {
		wg.Go(func() {
			for i := range jobs {
				res, err := client.Send(ctx, lines[i].id, lines[i].body)
				results <- done{i, sendOutcome{res: res, err: err, done: true}}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range lines {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	out := &errWriter{w: stdout}
	outcomes := make([]sendOutcome, len(lines))
	var t tally
	next := 0
	emit := func() {
		if bar != nil {
			_ = bar.Clear()
		}
		o := outcomes[next]
		out.Write(answerLine(lines[next], o))
		t.add(o)
		next++
	}
	for d := range results {
		outcomes[d.i] = d.sendOutcome
		for next < len(lines) && outcomes[next].done {
			emit()
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	// After an interruption, lines never sent leave gaps.
	notSent := 0
	for next < len(lines) {
		if outcomes[next].done {
			emit()
		} else {
			notSent++
			next++
		}
	}
	if bar != nil {
		_ = bar.Clear()
	}

	fmt.Fprintf(stderr, "sent %d: accepted %d (%d duplicates), refused %d, failed %d\n",
		t.sent, t.accepted, t.duplicates, t.refused, t.failed)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "interrupted: %d line(s) not sent; run the same command again to resume (lines already stored come back as duplicates)\n", notSent)
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case out.err != nil:
		return fmt.Errorf("writing answers: %w", out.err)
	case t.refused+t.failed > 0:
		return fmt.Errorf("%d of %d report(s) not accepted", t.refused+t.failed, t.sent)
	}
	return nil
}

// answerLine is the JSON line printed for one line of the file: the line
// number, status, webhook-id and attempts, then the members of the server's
// answer as received, or an "error" member when no usable answer came.
func answerLine(l fileLine, o sendOutcome) []byte {
	status := o.res.Status
	if o.err != nil {
		status = 0
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"line":%d,"status":%d,"webhook_id":%s,"attempts":%d`,
		l.no, status, quoteJSON(o.res.DeliveryID), o.res.Attempts)
	answer, ok := compactJSON(o.res.Body)
	switch {
	case o.err != nil:
		code := "not_delivered"
		if errors.Is(o.err, context.Canceled) || errors.Is(o.err, context.DeadlineExceeded) {
			code = "interrupted"
		}
		fmt.Fprintf(&b, `,"error":{"code":%q,"message":%s}}`, code, quoteJSON(o.err.Error()))
	case ok && len(answer) > 2 && answer[0] == '{':
		b.WriteByte(',')
		b.Write(answer[1:])
	case ok && string(answer) == "{}":
		b.WriteByte('}')
	default:
		msg := "the answer is not a JSON object"
		if err := o.res.Err(); err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(&b, `,"error":{"code":"unexpected_answer","message":%s}}`, quoteJSON(msg))
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func quoteJSON(s string) string {
	q, _ := json.Marshal(s) // a string always encodes
	return string(q)
}

// errWriter keeps the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
