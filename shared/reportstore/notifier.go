package reportstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/flagline/flagline/shared/report"
)

// ErrNoNotifierKey: no key to pseudonymise notifiers with, so no report can
// be stored (intake answers 503).
var ErrNoNotifierKey = errors.New("no notifier key")

// NotifierKey keys notifier pseudonyms: the pseudonym of an email is the
// first 8 bytes, in hex, of HMAC-SHA256(key, lower-cased email). Cases count
// distinct notifiers by pseudonym without holding an address. Unkeyed, a
// pseudonym could be reversed by hashing a list of likely addresses; keyed
// with a secret of the deployment it cannot, by anyone without the key.
//
// The key must stay the same for the life of a deployment's cases: another
// key gives every notifier another pseudonym, so open cases would count a
// notifier again. A copy shares one pool of keyed HMACs, so hashing
// allocates nothing once the pool is warm; NotifierKey is safe for
// concurrent use. The zero NotifierKey holds no key.
type NotifierKey struct{ k *notifierKey }

type notifierKey struct {
	key  []byte
	macs sync.Pool // of *notifierMAC
}

// notifierMAC is one keyed HMAC with scratch space: calls through hash.Hash
// make their arguments escape, so the buffers live here, not on the stack.
type notifierMAC struct {
	mac   hash.Hash
	lower [MaxEmailBytes]byte
	sum   [sha256.Size]byte
}

// MaxEmailBytes bounds what a pseudonym reads of an email; longer input is
// refused by validation.
const MaxEmailBytes = 4 * report.MaxEmail

// Bounds of a notifier key, in bytes: at least the HMAC-SHA256 output size
// (RFC 2104 §3: less weakens the function), at most its block size.
const (
	MinNotifierKeyBytes = sha256.Size
	MaxNotifierKeyBytes = sha256.BlockSize
)

// ParseNotifierKey parses a key in standard base64 (what NewNotifierKey
// gives). Errors never contain the key.
func ParseNotifierKey(s string) (NotifierKey, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return NotifierKey{}, errors.New("notifier key is not standard base64")
	}
	if len(key) < MinNotifierKeyBytes || len(key) > MaxNotifierKeyBytes {
		return NotifierKey{}, fmt.Errorf("notifier key is %d bytes; it must be %d to %d", len(key), MinNotifierKeyBytes, MaxNotifierKeyBytes)
	}
	k := &notifierKey{key: key}
	k.macs.New = func() any { return &notifierMAC{mac: hmac.New(sha256.New, k.key)} }
	return NotifierKey{k: k}, nil
}

// NewNotifierKey makes a fresh random key in the form ParseNotifierKey reads.
func NewNotifierKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.StdEncoding.EncodeToString(key)
}

// IsZero reports whether k holds no key.
func (k NotifierKey) IsZero() bool { return k.k == nil }

// NotifierKey implements NotifierKeySource for a fixed key.
func (k NotifierKey) NotifierKey(context.Context) (NotifierKey, error) {
	if k.IsZero() {
		return NotifierKey{}, ErrNoNotifierKey
	}
	return k, nil
}

// NotifierKeySource gives the notifier key to store a report with: a fixed
// NotifierKey, or one read from SSM Parameter Store and kept fresh.
type NotifierKeySource interface {
	NotifierKey(ctx context.Context) (NotifierKey, error)
}

// NotifierHash is the pseudonym of a notifier's email under k: 16 hex
// characters, the same for the same address whatever its ASCII case.
func (k NotifierKey) NotifierHash(email string) string {
	var buf [2 * notifierHashBytes]byte
	return string(k.appendNotifierHash(buf[:0], email))
}

// notifierHashBytes is how much of the HMAC a pseudonym keeps.
const notifierHashBytes = 8

func (k NotifierKey) appendNotifierHash(dst []byte, email string) []byte {
	m := k.k.macs.Get().(*notifierMAC)
	defer k.k.macs.Put(m)
	n := copy(m.lower[:], email)
	for i := range n {
		if c := m.lower[i]; c >= 'A' && c <= 'Z' {
			m.lower[i] = c + 'a' - 'A'
		}
	}
	m.mac.Reset()
	m.mac.Write(m.lower[:n])
	return hex.AppendEncode(dst, m.mac.Sum(m.sum[:0])[:notifierHashBytes])
}
