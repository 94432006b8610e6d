// Package webhook verifies Standard Webhooks signatures on incoming reports
// and holds the signing secrets of each source (reporting form).
//
// Verification follows the Standard Webhooks specification exactly as its
// reference library (github.com/standard-webhooks/standard-webhooks/libraries/go)
// implements it: HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>", a
// space-separated list of "v1,<base64>" signatures of which any one suffices
// (so a source can rotate its secret), a five-minute tolerance either way, and
// a constant-time compare.
//
// It does not call the reference library: on the intake's hot path, the
// library's http.Header look-ups, fmt.Sprintf of the signed content, string
// splitting and a fresh HMAC for each secret cost about 20 allocations per
// secret and several times the HMAC itself. Here a pool of keyed HMACs per
// secret makes verification allocation-free (BenchmarkVerify measures
// both). The tests keep the library as the reference and cross-check the
// two both ways, including a fuzz target (FuzzVerifyMatchesReference).
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MaxIDLength bounds the webhook-id header, which becomes part of a DynamoDB key.
const MaxIDLength = 128

// tolerance is how far webhook-timestamp may be from the clock, either way.
const tolerance = 5 * time.Minute

// Errors callers branch on.
var (
	ErrUnknownSource = errors.New("unknown source")
	ErrMissing       = errors.New("webhook-id, webhook-timestamp and webhook-signature headers are required")
	ErrMalformed     = errors.New("signature headers are malformed")
	ErrStale         = errors.New("webhook-timestamp is more than 5 minutes away from now")
	ErrSignature     = errors.New("no signature matches")
)

// ValidSourceName reports whether name can name a source: lower-case letters,
// digits, '-' and '_', at most 63 characters, not starting with '-' or '_'
// (what ^[a-z0-9][a-z0-9_-]{0,62}$ matches). It appears in URLs and keys. A
// loop rather than a regexp: compiling one at package init costs every cold
// start of the intake 0.2 ms and 700 allocations.
func ValidSourceName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] == '-' || name[0] == '_' {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Secret is one parsed signing secret. Copies share one pool of HMAC states,
// so verification allocates nothing once the pool is warm; Secret is safe for
// concurrent use.
type Secret struct{ k *secretKey }

type secretKey struct {
	key  []byte
	macs sync.Pool // of *macState
}

// macState is one HMAC-SHA256 keyed with a secret, with scratch space for the
// signed prefix and the results. Calls through hash.Hash make their slice
// arguments escape, so these buffers live here rather than on the stack.
type macState struct {
	mac    hash.Hash
	prefix [MaxIDLength + 1 + 20 + 1]byte // "<id>.<timestamp>."
	sum    [sha256.Size]byte
	b64    [sigLen]byte
}

// sigLen is the length of a v1 signature: padded standard base64 of the
// 32-byte HMAC-SHA256.
const sigLen = (sha256.Size + 2) / 3 * 4

// newMAC makes an HMAC-SHA256 keyed with key; tests count the signatures
// computed by wrapping it.
var newMAC = func(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

func newSecretKey(key []byte) *secretKey {
	k := &secretKey{key: key}
	k.macs.New = func() any { return &macState{mac: newMAC(k.key)} }
	return k
}

// ParseSecret parses a "whsec_<base64>" secret. The key must be 24 to 64
// bytes, as the specification recommends.
//
// The reference library also takes the base64 without "whsec_"; Flagline
// does not, wherever a secret comes from (inline JSON or SSM). The prefix is
// what tells a signing secret from any other base64 pasted into the wrong
// parameter (a password, another service's key), and every secret Flagline
// hands out (`flagline secret`) has it. A sender whose library is given the
// same whsec_ string signs with the same key either way.
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
	return Secret{k: newSecretKey(key)}, nil
}

// NewSecret makes a fresh random secret in "whsec_<base64>" form.
func NewSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header value for a delivery:
// "v1,<base64>", exactly what the reference library's Sign returns.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	m := s.k.get()
	defer s.k.put(m)
	m.sign(id, ts.Unix(), body)
	return "v1," + string(m.b64[:])
}

func (k *secretKey) get() *macState  { return k.macs.Get().(*macState) }
func (k *secretKey) put(m *macState) { k.macs.Put(m) }

// sign sets m.b64 to the base64 HMAC of "<id>.<ts>.<body>". The timestamp is
// written as the library writes it (%d of the parsed value), so "+0170…" or
// "0170…" sign as "170…".
func (m *macState) sign(id string, ts int64, body []byte) {
	p := append(m.prefix[:0], id...) // a longer id than Verify accepts (Sign only) grows p
	p = append(p, '.')
	p = strconv.AppendInt(p, ts, 10)
	p = append(p, '.')
	m.mac.Reset()
	m.mac.Write(p)
	m.mac.Write(body)
	base64.StdEncoding.Encode(m.b64[:], m.mac.Sum(m.sum[:0]))
}

// Headers are the three signature headers of one delivery.
type Headers struct{ ID, Timestamp, Signature string }

// Verify checks that at least one of secrets signed body under h, and that the
// timestamp is within tolerance of the clock. It never says which check of a
// signature failed beyond the sentinel errors above.
//
// The checks and their order are the reference library's: the timestamp
// must be integer Unix seconds (strconv.ParseInt) within five minutes of now;
// then each space-separated "v1,<sig>" entry of h.Signature is compared in
// constant time (hmac.Equal) with the expected signature under each secret in
// turn. SourceSecrets.Verify is the same check trying first the secret that
// last verified.
func Verify(secrets []Secret, body []byte, h Headers) error {
	_, err := verifyFrom(secrets, 0, body, h)
	return err
}

// verifyFrom is Verify trying secrets[first] first, then the others in
// listed order; it returns the index of the secret that verified. first
// must be a valid index when secrets is not empty.
func verifyFrom(secrets []Secret, first int, body []byte, h Headers) (int, error) {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return 0, ErrMissing
	}
	if len(h.ID) > MaxIDLength || !printable(h.ID) {
		return 0, fmt.Errorf("%w: webhook-id must be 1 to %d printable ASCII characters", ErrMalformed, MaxIDLength)
	}
	if len(secrets) == 0 {
		return 0, ErrSignature // no secret to check the headers against
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: webhook-timestamp must be integer Unix seconds", ErrMalformed)
	}
	now, at := time.Now(), time.Unix(ts, 0)
	if now.Sub(at) > tolerance || at.After(now.Add(tolerance)) {
		return 0, ErrStale
	}
	if secrets[first].k.verify(h.ID, ts, body, h.Signature) {
		return first, nil
	}
	for i, s := range secrets {
		if i != first && s.k.verify(h.ID, ts, body, h.Signature) {
			return i, nil
		}
	}
	return 0, ErrSignature
}

// SourceSecrets are the active secrets of one source (two during a
// rotation), as a Store gives them, with a hint of which one verified the
// source's last delivery. A sender signs with one secret at a time, so
// trying that one first makes a source whose signing secret is not listed
// first (still on the old one, or already on the new one) cost one HMAC a
// delivery instead of two, after its first delivery in each execution
// environment.
//
// The hint only orders the attempts: a delivery is accepted exactly when
// Verify over the same secrets would accept it, and a forged one is still
// checked against every secret. It lives in memory and starts at the first
// secret whenever the store reads the secrets again. SourceSecrets is safe
// for concurrent use.
type SourceSecrets struct {
	list []Secret
	last atomic.Uint32 // index in list of the secret that last verified
}

// NewSourceSecrets holds the given secrets of one source, tried in the given
// order until one verifies.
func NewSourceSecrets(secrets ...Secret) *SourceSecrets {
	return &SourceSecrets{list: slices.Clip(secrets)}
}

// Sign is the webhook-signature header value of a delivery Flagline sends
// to the source (shared/outcome): one "v1,<base64>" per active secret,
// space separated, as the specification allows during a rotation; the
// source's receiver verifies with whichever secret it holds.
func (s *SourceSecrets) Sign(id string, ts time.Time, body []byte) string {
	if s == nil {
		return ""
	}
	sigs := make([]string, 0, len(s.list))
	for _, sec := range s.list {
		sigs = append(sigs, sec.Sign(id, ts, body))
	}
	return strings.Join(sigs, " ")
}

// Len is the number of secrets; none for a nil *SourceSecrets.
func (s *SourceSecrets) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Verify is Verify over the source's secrets, trying first the one that
// verified the source's last delivery.
func (s *SourceSecrets) Verify(body []byte, h Headers) error {
	first := int(s.last.Load())
	if first >= len(s.list) {
		first = 0 // the hint is an index into this list only; never trust it past its end
	}
	i, err := verifyFrom(s.list, first, body, h)
	if err == nil && i != first {
		// Written only when it changes, so concurrent deliveries signed
		// with the same secret only read the shared word.
		s.last.Store(uint32(i))
	}
	return err
}

// verify reports whether any v1 entry of the signature header is this key's
// signature of the delivery.
func (k *secretKey) verify(id string, ts int64, body []byte, header string) bool {
	m := k.get()
	defer k.put(m)
	m.sign(id, ts, body)
	var sig [sigLen]byte
	for rest := header; ; {
		entry, tail, more := strings.Cut(rest, " ")
		// "v1,<sig>[,…]": the reference library splits the entry on commas
		// and compares the second field.
		if version, s, found := strings.Cut(entry, ","); found && version == "v1" {
			s, _, _ = strings.Cut(s, ",")
			// hmac.Equal is false for any other length too (lengths are
			// not secret); copying to the stack saves a []byte allocation.
			if len(s) == sigLen && hmac.Equal(sig[:copy(sig[:], s)], m.b64[:]) {
				return true
			}
		}
		if !more {
			return false
		}
		rest = tail
	}
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
type Sources map[string]*SourceSecrets

// ParseSources parses the FLAGLINE_WEBHOOK_SECRETS form:
// {"source":["whsec_…","whsec_…"]}. Errors name the source, never a secret.
func ParseSources(data string) (Sources, error) {
	var raw map[string][]string
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		return nil, errors.New(`webhook secrets must be a JSON object such as {"demo":["whsec_…"]}`)
	}
	out := make(Sources, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		secrets, err := parseSourceSecrets(name, raw[name])
		if err != nil {
			return nil, err
		}
		out[name] = secrets
	}
	return out, nil
}

func parseSourceSecrets(name string, list []string) (*SourceSecrets, error) {
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
	return NewSourceSecrets(secrets...), nil
}
