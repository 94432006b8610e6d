// Package evidence exports a case as a bundle whose integrity anyone can
// check, and checks one: "flagline evidence export" and "flagline evidence
// verify".
//
// A bundle holds the case, every report of the case (received time and the
// SHA-256 of the raw body; the notifier's name and email only while the
// report item still keeps them) and the case's timeline as a hash chain.
//
// # Canonical encoding
//
// Every hash is a lowercase hex SHA-256 over the RFC 8785 JSON
// Canonicalization Scheme (JCS) encoding of a JSON object: UTF-8, no
// insignificant whitespace, object members sorted by the UTF-16 code units
// of their names, strings with the minimal escaping, numbers (all integers
// here) in plain decimal. Optional members with no value (an empty string,
// a zero count, no list, no notifier) are left out, never written as "",
// 0, [] or null; "reports" and "timeline" are always present, as [] when
// empty. The encoder is jsontext's
// Value.Canonicalize, from the encoding/json v2 prototype the module
// already uses.
//
// # Hashes
//
//   - The head: SHA-256 of the object {"case", "format", "reports"}.
//   - Timeline entry n (seq n, from 1): hash = SHA-256 of the entry with
//     every member except "hash"; its prev_hash is entry n-1's hash, and
//     the first entry's prev_hash is the head. A changed entry, a removed,
//     inserted or reordered one, and a changed case or report all break the
//     chain where they happened.
//   - bundle_hash: SHA-256 of the whole bundle with every member except
//     "bundle_hash".
//
// The file is the JCS encoding of the bundle and one newline, nothing more,
// so that a bundle has exactly one byte sequence and a change of any byte
// is refused: either a hash no longer matches or the bytes are not that
// encoding of what they hold.
//
// A bundle proves that it is unchanged since bundle_hash was computed; who
// holds the bundle_hash printed at export (a case note, a letter to a
// court) anchors it.
package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/flagline/flagline/shared/casestore"
)

// Format names this layout of a bundle.
const Format = "flagline-evidence/1"

// Bundle is the evidence of one case.
type Bundle struct {
	Format     string   `json:"format"`
	Case       Case     `json:"case"`
	Reports    []Report `json:"reports"`
	Timeline   []Event  `json:"timeline"`
	ExportedAt string   `json:"exported_at"`
	BundleHash string   `json:"bundle_hash,omitzero"`
}

// Case is the case item as it was at export. Times are RFC 3339 in UTC.
type Case struct {
	CaseID        string   `json:"case_id"`
	CanonicalURL  string   `json:"canonical_url,omitzero"`
	Platform      string   `json:"platform,omitzero"`
	Status        string   `json:"status"`
	StatusAt      string   `json:"status_at,omitzero"`
	Lead          string   `json:"lead,omitzero"`
	LeadSince     string   `json:"lead_since,omitzero"`
	Severity      string   `json:"severity,omitzero"`
	Level         int      `json:"level"`
	ReportCount   int      `json:"report_count"`
	SourceCount   int      `json:"source_count"`
	NotifierCount int      `json:"notifier_count"`
	FirstSeen     string   `json:"first_seen,omitzero"`
	LastSeen      string   `json:"last_seen,omitzero"`
	Countries     []string `json:"countries,omitzero"`
	Categories    []string `json:"categories,omitzero"`
	Explanations  []string `json:"explanations,omitzero"`
	ReopenCount   int      `json:"reopen_count,omitzero"`
}

// Report is one report of the case: when it was received and the SHA-256
// of the exact bytes received, so that a copy of the body kept elsewhere
// can be matched to it.
type Report struct {
	ReportID   string `json:"report_id"`
	Source     string `json:"source"`
	ReceivedAt string `json:"received_at"`
	BodySHA256 string `json:"body_sha256"`
	// Notifier is the reporter's personal data, present only while the
	// report item keeps it (until its expiry).
	Notifier *Notifier `json:"notifier,omitzero"`
}

// Notifier is who reported, and until when Flagline keeps it.
type Notifier struct {
	Name      string `json:"name,omitzero"`
	Email     string `json:"email,omitzero"`
	KeptUntil string `json:"kept_until"`
}

// Event is one timeline event, a link of the chain: the event as the case
// API shows it (casestore.Event's JSON: at, type, actor and the fields its
// type carries, with omitempty as encoding/json v1 reads it), numbered and
// chained. A field casestore.Event gains later is in the bundles exported
// after it, and bundles without it still verify.
type Event struct {
	Seq int `json:"seq"`
	casestore.Event
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash,omitzero"`
}

// canonical is the JCS encoding of v. casestore.Event's omitempty members
// are left out as encoding/json (v1) leaves them out (a zero level too).
func canonical(v any) ([]byte, error) {
	b, err := jsonv2.Marshal(v, jsonv1.OmitEmptyWithLegacySemantics(true))
	if err != nil {
		return nil, err
	}
	val := jsontext.Value(b)
	if err := val.Canonicalize(); err != nil {
		return nil, err
	}
	return val, nil
}

func hashOf(v any) (string, error) {
	b, err := canonical(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// headHash is the hash of the case and reports section, the first event's
// prev_hash.
func (b *Bundle) headHash() (string, error) {
	return hashOf(struct {
		Format  string   `json:"format"`
		Case    Case     `json:"case"`
		Reports []Report `json:"reports"`
	}{b.Format, b.Case, b.Reports})
}

func eventHash(e Event) (string, error) {
	e.Hash = ""
	return hashOf(e)
}

func (b *Bundle) contentHash() (string, error) {
	c := *b
	c.BundleHash = ""
	return hashOf(&c)
}

// Seal numbers the timeline and sets every prev_hash, hash and the
// bundle_hash.
func (b *Bundle) Seal() error {
	prev, err := b.headHash()
	if err != nil {
		return fmt.Errorf("seal bundle: %w", err)
	}
	for i := range b.Timeline {
		e := &b.Timeline[i]
		e.Seq = i + 1
		e.PrevHash = prev
		if e.Hash, err = eventHash(*e); err != nil {
			return fmt.Errorf("seal bundle: %w", err)
		}
		prev = e.Hash
	}
	if b.BundleHash, err = b.contentHash(); err != nil {
		return fmt.Errorf("seal bundle: %w", err)
	}
	return nil
}

// Encode is the bundle's file: its canonical encoding and a newline.
func (b *Bundle) Encode() ([]byte, error) {
	out, err := canonical(b)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// ErrAltered: the bundle is not as it was exported. The error's text names
// the first part that does not match.
var ErrAltered = errors.New("evidence bundle refused")

// MaxBundleBytes bounds what Verify reads.
const MaxBundleBytes = 256 << 20

// Summary is what Verify found in an intact bundle.
type Summary struct {
	CaseID     string
	Reports    int
	Notifiers  int // reports that still carry the notifier's data
	Events     int
	ExportedAt string
	BundleHash string
}

func altered(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrAltered}, args...)...)
}

// Verify reads a bundle file and recomputes every hash. An intact bundle
// gives its summary; anything else gives an error wrapping ErrAltered that
// names the first part that does not match: the case and reports section,
// a timeline entry (changed, removed, inserted or reordered), the bundle
// hash, bytes that are not the bundle's canonical encoding, or data after
// the bundle. A read error is returned as it is.
func Verify(r io.Reader) (Summary, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBundleBytes+1))
	if err != nil {
		return Summary{}, fmt.Errorf("read bundle: %w", err)
	}
	if len(data) > MaxBundleBytes {
		return Summary{}, altered("larger than %d bytes", MaxBundleBytes)
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	raw, err := dec.ReadValue()
	if err != nil {
		return Summary{}, altered("not a JSON document: %v", err)
	}
	end := int(dec.InputOffset())
	if rest := data[end:]; !bytes.Equal(rest, []byte("\n")) {
		if len(rest) == 0 {
			return Summary{}, altered("the final newline is missing")
		}
		return Summary{}, altered("trailing data after the bundle at byte %d", end+1)
	}
	var b Bundle
	if err := jsonv2.Unmarshal(raw, &b, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Summary{}, altered("not a %s bundle: %v", Format, err)
	}
	if b.Format != Format {
		return Summary{}, altered("format is %q, want %q", b.Format, Format)
	}

	prev, err := b.headHash()
	if err != nil {
		return Summary{}, altered("case and reports: %v", err)
	}
	for i, e := range b.Timeline {
		where := fmt.Sprintf("timeline entry %d (seq %d, %s at %s)", i+1, e.Seq, e.Type, e.At.Format(time.RFC3339Nano))
		if e.Seq != i+1 {
			return Summary{}, altered("%s: found at position %d: an entry was removed, inserted or reordered", where, i+1)
		}
		if e.PrevHash != prev {
			if i == 0 {
				return Summary{}, altered("the case or a report was changed: their hash is not the prev_hash of %s", where)
			}
			return Summary{}, altered("%s: prev_hash is not the hash of entry %d: an entry was removed, inserted or reordered", where, i)
		}
		h, err := eventHash(e)
		if err != nil {
			return Summary{}, altered("%s: %v", where, err)
		}
		if h != e.Hash {
			return Summary{}, altered("%s was changed: its content does not match its hash", where)
		}
		prev = e.Hash
	}
	h, err := b.contentHash()
	if err != nil {
		return Summary{}, altered("%v", err)
	}
	if h != b.BundleHash {
		if len(b.Timeline) == 0 {
			return Summary{}, altered("bundle_hash does not match the content: the case, a report, exported_at or bundle_hash was changed")
		}
		return Summary{}, altered("bundle_hash does not match the content: exported_at or bundle_hash was changed, or timeline entries were removed from the end")
	}
	want, err := canonical(&b)
	if err != nil {
		return Summary{}, altered("%v", err)
	}
	if !bytes.Equal(raw, want) {
		at := 0
		for at < len(raw) && at < len(want) && raw[at] == want[at] {
			at++
		}
		return Summary{}, altered("byte %d differs from the bundle's canonical encoding (RFC 8785): the bytes were changed", at+1)
	}
	s := Summary{CaseID: b.Case.CaseID, Reports: len(b.Reports), Events: len(b.Timeline), ExportedAt: b.ExportedAt, BundleHash: b.BundleHash}
	for _, r := range b.Reports {
		if r.Notifier != nil {
			s.Notifiers++
		}
	}
	return s, nil
}
