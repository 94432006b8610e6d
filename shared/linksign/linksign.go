// Package linksign signs the one-click links of alert emails. A link names
// a case, the contact point it was sent to, what it does (view the case,
// acknowledge, take the lead) and when it expires; its signature is an
// HMAC-SHA256 of those four under a per-deployment key, so a link works only
// for the desk it was mailed to, only for what it says, and only until it
// expires. Changing any part, or signing with another key, fails Verify.
//
// A link is a capability for one contact point, like the links of
// password-reset mails: whoever holds the email may act as that desk on
// that case, for that action, for Validity. It never authorises more.
package linksign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validity is how long a link in an alert email works.
const Validity = 7 * 24 * time.Hour

// Actions a link may name.
const (
	View        = "view"
	Acknowledge = "acknowledge"
	ClaimLead   = "claim_lead"
)

// Query parameter names of a signed link.
const (
	ParamContactPoint = "cp"
	ParamExpires      = "exp"
	ParamSignature    = "sig"
)

// Key sizes: at least a SHA-256 output, at most its block.
const (
	MinKeyBytes = sha256.Size
	MaxKeyBytes = sha256.BlockSize
)

var (
	// ErrForged: the signature does not match the link (altered, made up,
	// or signed with another key).
	ErrForged = errors.New("link signature is not valid")
	// ErrExpired: a genuine link past its expiry.
	ErrExpired = errors.New("link has expired")
)

// Key signs and verifies links. The zero Key holds no key and verifies
// nothing.
type Key struct{ k []byte }

// ParseKey parses a key in standard base64, as NewKey makes them.
func ParseKey(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return Key{}, errors.New("link key is not standard base64")
	}
	if len(b) < MinKeyBytes || len(b) > MaxKeyBytes {
		return Key{}, fmt.Errorf("link key is %d bytes; want %d to %d", len(b), MinKeyBytes, MaxKeyBytes)
	}
	return Key{k: b}, nil
}

// NewKey returns a fresh random key (32 bytes) in standard base64.
func NewKey() string {
	b := make([]byte, MinKeyBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.k) == 0 }

// Link is what a signed link says.
type Link struct {
	CaseID       string
	ContactPoint string
	Action       string
	Expires      time.Time
}

// message is what is signed: a version, then each field on its own line.
// None of the fields may hold a newline (Sign and Verify refuse them), so
// no two links sign the same bytes.
func (l Link) message() []byte {
	return []byte("flagline-link-v1\n" + l.CaseID + "\n" + l.ContactPoint + "\n" + l.Action + "\n" + strconv.FormatInt(l.Expires.Unix(), 10))
}

func (l Link) wellFormed() bool {
	for _, f := range []string{l.CaseID, l.ContactPoint, l.Action} {
		if f == "" || strings.ContainsAny(f, "\n\r") {
			return false
		}
	}
	return true
}

// Sign returns the signature of l (base64url, no padding). A link with an
// empty field or a newline in one cannot be signed: Sign returns "".
func (k Key) Sign(l Link) string {
	if k.IsZero() || !l.wellFormed() {
		return ""
	}
	m := hmac.New(sha256.New, k.k)
	m.Write(l.message())
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks sig against l at now: ErrForged when it does not match
// (checked in constant time, and before the expiry, so a forged link is
// never told apart by its date), ErrExpired when l expired at or before now.
func (k Key) Verify(l Link, sig string, now time.Time) error {
	want := k.Sign(l)
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if want == "" || err != nil {
		return ErrForged
	}
	w, _ := base64.RawURLEncoding.DecodeString(want)
	if !hmac.Equal(w, got) {
		return ErrForged
	}
	if !now.Before(l.Expires) {
		return ErrExpired
	}
	return nil
}

// Query is the signed link's query string: cp, exp (Unix seconds) and sig.
func (k Key) Query(l Link) url.Values {
	return url.Values{
		ParamContactPoint: {l.ContactPoint},
		ParamExpires:      {strconv.FormatInt(l.Expires.Unix(), 10)},
		ParamSignature:    {k.Sign(l)},
	}
}

// FromQuery reads the contact point, expiry and signature of a link to
// caseID for action from its query parameters. Missing or malformed
// parameters give ErrForged.
func FromQuery(caseID, action string, q url.Values) (Link, string, error) {
	cp, exp, sig := q.Get(ParamContactPoint), q.Get(ParamExpires), q.Get(ParamSignature)
	if cp == "" || exp == "" || sig == "" {
		return Link{}, "", ErrForged
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return Link{}, "", ErrForged
	}
	return Link{CaseID: caseID, ContactPoint: cp, Action: action, Expires: time.Unix(unix, 0).UTC()}, sig, nil
}

// Paths of the links, relative to the dashboard base URL: the case page,
// and the confirm page of an action (a GET shows it; its button POSTs to
// the same URL).
func PagePath(caseID string) string { return "/cases/" + url.PathEscape(caseID) }

// ActionPath is the path of an action link.
func ActionPath(caseID, action string) string { return PagePath(caseID) + "/" + action }

// URL is the full signed link for l under base (the dashboard URL, no
// trailing slash needed): the case page for View, else the action's
// confirm page.
func (k Key) URL(base string, l Link) string {
	path := PagePath(l.CaseID)
	if l.Action != View {
		path = ActionPath(l.CaseID, l.Action)
	}
	return strings.TrimRight(base, "/") + path + "?" + k.Query(l).Encode()
}
