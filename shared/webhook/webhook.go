// Package webhook verifies Standard Webhooks signatures on incoming reports
// and holds the signing secrets of each source (reporting form).
//
// Verification uses the Standard Webhooks reference library: HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>", a space-separated list of
// "v1,<base64>" signatures of which any one suffices (so a source can rotate
// its secret), a five-minute tolerance either way, and a constant-time compare.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// MaxIDLength bounds the webhook-id header, which becomes part of a DynamoDB key.
const MaxIDLength = 128

// Errors callers branch on.
var (
	ErrUnknownSource = errors.New("unknown source")
	ErrMissing       = errors.New("webhook-id, webhook-timestamp and webhook-signature headers are required")
	ErrMalformed     = errors.New("signature headers are malformed")
	ErrStale         = errors.New("webhook-timestamp is more than 5 minutes away from now")
	ErrSignature     = errors.New("no signature matches")
)

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidSourceName reports whether name can name a source: lower-case letters,
// digits, '-' and '_', at most 63 characters. It appears in URLs and keys.
func ValidSourceName(name string) bool { return sourceName.MatchString(name) }

// Secret is one parsed signing secret.
type Secret struct{ wh *standardwebhooks.Webhook }

// ParseSecret parses a "whsec_<base64>" secret. The key must be 24 to 64
// bytes, as the specification recommends.
func ParseSecret(s string) (Secret, error) {
	if !strings.HasPrefix(s, "whsec_") {
		return Secret{}, errors.New("secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		return Secret{}, errors.New("secret is not whsec_ followed by standard base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("secret key is %d bytes; it must be 24 to 64", len(key))
	}
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		return Secret{}, err
	}
	return Secret{wh: wh}, nil
}

// NewSecret makes a fresh random secret in "whsec_<base64>" form.
func NewSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header value for a delivery.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	sig, _ := s.wh.Sign(id, ts, body) // the library's sign never fails
	return sig
}

// Headers are the three signature headers of one delivery.
type Headers struct{ ID, Timestamp, Signature string }

// Verify checks that at least one of secrets signed body under h, and that the
// timestamp is within tolerance of the clock. It never says which check of a
// signature failed beyond the sentinel errors above.
func Verify(secrets []Secret, body []byte, h Headers) error {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return ErrMissing
	}
	if len(h.ID) > MaxIDLength || !printable(h.ID) {
		return fmt.Errorf("%w: webhook-id must be 1 to %d printable ASCII characters", ErrMalformed, MaxIDLength)
	}
	hdr := http.Header{
		"Webhook-Id":        {h.ID},
		"Webhook-Timestamp": {h.Timestamp},
		"Webhook-Signature": {h.Signature},
	}
	for _, s := range secrets {
		err := s.wh.Verify(body, hdr)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
			return ErrStale
		case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
			return fmt.Errorf("%w: webhook-timestamp must be integer Unix seconds", ErrMalformed)
		}
	}
	return ErrSignature
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Sources maps a source name to its active secrets.
type Sources map[string][]Secret

// ParseSources parses the FLAGLINE_WEBHOOK_SECRETS form:
// {"source":["whsec_…","whsec_…"]}. Errors name the source, never a secret.
func ParseSources(data string) (Sources, error) {
	var raw map[string][]string
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		return nil, errors.New(`webhook secrets must be a JSON object such as {"demo":["whsec_…"]}`)
	}
	out := make(Sources, len(raw))
	for _, name := range sortedKeys(raw) {
		secrets, err := parseSourceSecrets(name, raw[name])
		if err != nil {
			return nil, err
		}
		out[name] = secrets
	}
	return out, nil
}

func parseSourceSecrets(name string, list []string) ([]Secret, error) {
	if !ValidSourceName(name) {
		return nil, fmt.Errorf("source name %q must be lower-case letters, digits, - or _", name)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("source %q has no secret", name)
	}
	secrets := make([]Secret, 0, len(list))
	for i, s := range list {
		sec, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("source %q secret #%d: %w", name, i+1, err)
		}
		secrets = append(secrets, sec)
	}
	return secrets, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
