// Package sender delivers report bodies to a Flagline intake endpoint:
// POST {endpoint}/v1/sources/{source}/reports, signed the Standard Webhooks
// way, retried with the same webhook-id when the server or the network fails.
//
// The intake deduplicates on (source, webhook-id), so a retried delivery is
// never counted twice: the server answers duplicate: true instead.
package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flagline/flagline/shared/webhook"
)

// Defaults of a Client made by New.
const (
	DefaultTimeout    = 15 * time.Second
	DefaultMaxRetries = 4 // five attempts in all
	DefaultMaxWait    = 10 * time.Second
	DefaultBaseWait   = 500 * time.Millisecond
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// FieldError names one invalid field of a refused report.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Result is the server's final answer to one delivery.
type Result struct {
	// DeliveryID is the webhook-id the report was sent under.
	DeliveryID string
	// Attempts counts the requests made, retries included.
	Attempts int
	// Status is the HTTP status of the last answer; 0 if none came.
	Status int

	// Set on an accepted report (2xx).
	ReportID     string
	CaseID       string
	CanonicalURL string
	Duplicate    bool

	// Set on a refusal.
	ErrorCode    string
	ErrorMessage string
	Fields       []FieldError
	// RetryAfter is the last answer's Retry-After, or zero.
	RetryAfter time.Duration

	// Body is the last answer's body as received (at most 1 MiB).
	Body []byte

	retryAfterGiven bool
}

// Accepted reports whether the server took the report (2xx).
func (r Result) Accepted() bool { return r.Status >= 200 && r.Status < 300 }

// Retryable reports whether a refusal is temporary (a 429 or a 5xx): the
// same delivery may be accepted later.
func (r Result) Retryable() bool { return retryable(r.Status) }

// Err describes a refusal as "HTTP 422 invalid_field: url: …", or returns
// nil for an accepted report.
func (r Result) Err() error {
	if r.Accepted() {
		return nil
	}
	if r.Status == 0 {
		return errors.New("no answer")
	}
	head := "HTTP " + strconv.Itoa(r.Status)
	if r.ErrorCode != "" {
		head += " " + r.ErrorCode
	}
	detail := r.ErrorMessage
	if len(r.Fields) > 0 {
		parts := make([]string, len(r.Fields))
		for i, f := range r.Fields {
			parts[i] = f.Field + ": " + f.Message
		}
		detail = strings.Join(parts, "; ")
	}
	if detail != "" {
		head += ": " + detail
	}
	if r.RetryAfter > 0 {
		head += fmt.Sprintf(" (retry after %s)", r.RetryAfter)
	}
	return errors.New(head)
}

// Retry describes one retry about to happen, for progress messages.
type Retry struct {
	DeliveryID string
	Attempt    int // the attempt that failed, from 1
	Status     int // 0 after a network error
	Err        error
	Wait       time.Duration
}

// Client signs and posts reports of one source. Set its exported fields
// before the first Send; it is then safe for concurrent use.
type Client struct {
	// HTTP makes the requests; its Timeout bounds each attempt.
	HTTP *http.Client
	// MaxRetries is how many times a delivery is tried again after a 429,
	// a 5xx or a network error. Other answers are final.
	MaxRetries int
	// MaxWait caps one wait between attempts. An answer whose Retry-After
	// asks for longer is returned as it is rather than waited for.
	MaxWait time.Duration
	// BaseWait is the first backoff when the server gives no Retry-After;
	// it doubles on each retry, with jitter.
	BaseWait time.Duration
	// OnRetry, if set, is called before each wait.
	OnRetry func(Retry)
	// Now is the clock used to timestamp signatures; nil means time.Now.
	Now func() time.Time

	url    string
	secret webhook.Secret
}

// New returns a Client posting to the intake route of source under
// endpoint, an http or https base URL such as https://api.example.org/prod.
func New(endpoint, source string, secret webhook.Secret) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("endpoint must be an http:// or https:// URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("endpoint must have no user, query or fragment")
	}
	if !webhook.ValidSourceName(source) {
		return nil, errors.New("source must be lower-case letters, digits, - or _ (at most 63)")
	}
	return &Client{
		HTTP:       &http.Client{Timeout: DefaultTimeout},
		MaxRetries: DefaultMaxRetries,
		MaxWait:    DefaultMaxWait,
		BaseWait:   DefaultBaseWait,
		url:        strings.TrimRight(u.String(), "/") + "/v1/sources/" + source + "/reports",
		secret:     secret,
	}, nil
}

// URL is the address reports are posted to.
func (c *Client) URL() string { return c.url }

// NewDeliveryID returns a fresh random webhook-id: "msg_" and 32 hex digits.
func NewDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "msg_" + hex.EncodeToString(b)
}

// LineDeliveryID derives the webhook-id of line number line of a file named
// name: "msg_" and the first 24 hex digits of SHA-256("name|line|body").
// Sending the same file again gives the same ids, so the server recognises
// reports it already has.
func LineDeliveryID(name string, line int, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%d|", name, line)
	h.Write(body)
	return "msg_" + hex.EncodeToString(h.Sum(nil))[:24]
}

// Send posts body under webhook-id id, signing each attempt afresh, and
// retries a 429, a 5xx or a network error with exponential backoff. It
// returns the last answer; the error is non-nil only when no final answer
// came: the network failed on every attempt, or ctx ended.
func (c *Client) Send(ctx context.Context, id string, body []byte) (Result, error) {
	res := Result{DeliveryID: id}
	for attempt := 1; ; attempt++ {
		answer, err := c.post(ctx, id, body)
		res.Attempts = attempt
		if err != nil && ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err == nil {
			res = answer
			res.DeliveryID, res.Attempts = id, attempt
			if !retryable(res.Status) {
				return res, nil
			}
		}
		wait, ok := c.backoff(attempt, res, err == nil)
		if attempt > c.MaxRetries || !ok {
			if err != nil {
				return res, fmt.Errorf("no answer after %d attempt(s): %w", attempt, err)
			}
			return res, nil
		}
		if c.OnRetry != nil {
			r := Retry{DeliveryID: id, Attempt: attempt, Err: err, Wait: wait}
			if err == nil {
				r.Status = res.Status
			}
			c.OnRetry(r)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
	}
}

// retryable reports whether an answer may change if the same delivery is
// sent again: throttling and server failures.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// backoff returns the wait before the attempt after attempt, and false if
// the server asked for a longer wait than MaxWait. A Retry-After is obeyed
// as given (0 means at once); without one the wait doubles from BaseWait.
func (c *Client) backoff(attempt int, res Result, answered bool) (time.Duration, bool) {
	if answered && res.retryAfterGiven {
		return res.RetryAfter, res.RetryAfter <= c.MaxWait
	}
	d := c.BaseWait << min(attempt-1, 20)
	if d <= 0 || d > c.MaxWait {
		d = c.MaxWait
	}
	// Jitter over the upper half spreads out workers that failed together.
	if half := d / 2; half > 0 {
		d = half + mathrand.N(half+1)
	}
	return d, true
}

// post makes one signed attempt. An error means no answer came.
func (c *Client) post(ctx context.Context, id string, body []byte) (Result, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ts := now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flagline-send")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, c.secret.Sign(id, ts, body))

	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Result{}, fmt.Errorf("reading the answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	return parseAnswer(resp.StatusCode, resp.Header, data, ts), nil
}

// parseAnswer reads a receipt or an error body; a body that is not
// Flagline's JSON gives a Result with only the status and a short excerpt.
func parseAnswer(status int, h http.Header, data []byte, now time.Time) Result {
	res := Result{Status: status, Body: data}
	res.RetryAfter, res.retryAfterGiven = parseRetryAfter(h.Get("Retry-After"), now)
	var ans struct {
		ReportID     string `json:"report_id"`
		CaseID       string `json:"case_id"`
		CanonicalURL string `json:"canonical_url"`
		Duplicate    bool   `json:"duplicate"`
		Error        *struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Fields  []FieldError `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		if status < 200 || status >= 300 {
			res.ErrorMessage = excerpt(data, http.StatusText(status))
		}
		return res
	}
	res.ReportID, res.CaseID, res.CanonicalURL, res.Duplicate = ans.ReportID, ans.CaseID, ans.CanonicalURL, ans.Duplicate
	if ans.Error != nil {
		res.ErrorCode, res.ErrorMessage, res.Fields = ans.Error.Code, ans.Error.Message, ans.Error.Fields
	} else if status < 200 || status >= 300 {
		res.ErrorMessage = http.StatusText(status)
	}
	return res
}

// parseRetryAfter reads delay-seconds or an HTTP date, and whether the
// header held either.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(n, 0), 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// excerpt is the start of a non-JSON answer on one line, or fallback.
func excerpt(data []byte, fallback string) string {
	s := strings.Join(strings.Fields(string(data)), " ")
	if s == "" || !utf8.ValidString(s) {
		return fallback
	}
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}
