package aggregate

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// Bounds of what a case item keeps, whatever its history. Every case item is
// rewritten on each batch that touches it and both stream readers receive its
// old and new image on every change, so it must stay a few kilobytes: with
// these bounds aggregation's attributes of a case take at most
// CaseBytes(shards) (measured as DynamoDB counts item size, attribute names
// plus values:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html),
// against the 400 KB item limit.
//
//   - canonical_url: at most canon.MaxLen (2048) bytes; platform: a host name.
//   - categories and countries: closed vocabularies (report.Categories, 7
//     values; report.IsCountry, the 30 EU/EEA states and EU); anything else is
//     not kept.
//   - explanations: MaxExplanations, each at most MaxExplanationRunes and
//     MaxExplanationBytes.
//   - applied: one mark (at most MarkBytes) per stream shard that wrote the
//     case within MarkRetention; never fewer (see keepMarks). A table's
//     stream has about one open shard per table partition and each shard is
//     replaced every few hours, so a case reported from every partition of
//     a table of P partitions keeps a few times P marks: MaxCaseBytes is the
//     bound for BoundShards of them, and a table would need some 3,000 shards
//     within MarkRetention to reach the 400 KB item limit.
//   - sources and notifiers: exact sets of at most MaxExactSources source
//     names and MaxExactNotifiers pseudonyms; past that, or once a pseudonym
//     expires, a HyperLogLog sketch of fixed size (SketchBytes) instead.
const (
	// CaseBytesWithoutMarks bounds every attribute aggregation writes but
	// applied.
	CaseBytesWithoutMarks = 10 * 1024
	// MarkBytes bounds one entry of applied: a shard id of at most 65
	// characters, 1 byte of map entry, and a map of seq (40 digits) and at
	// (10 digits): 65 + 1 + 3 + (1+3+40) + (1+2+6) = 122 bytes.
	MarkBytes = 122
	// BoundShards is the number of shards MaxCaseBytes is stated for.
	BoundShards         = 64
	MaxCaseBytes        = CaseBytesWithoutMarks + BoundShards*MarkBytes
	MaxExplanationBytes = 600
	MaxExactSources     = 16
	MaxExactNotifiers   = 32
	// SketchPrecision p gives 2^p one-byte registers. The distinct count of a
	// sketch has a relative standard error of 1.04/sqrt(2^p), about 2.3%
	// for p = 11 (Flajolet et al., "HyperLogLog", 2007).
	SketchPrecision = 11
)

// CaseBytes bounds aggregation's attributes of a case that shards stream
// shards wrote within MarkRetention.
func CaseBytes(shards int) int { return CaseBytesWithoutMarks + shards*MarkBytes }

// SketchBytes is the size of a stored sketch: dense registers only, never
// the sparse form, which holds a hashed value per inserted notifier.
var SketchBytes = len(newSketch().encode())

// sketch counts distinct values approximately in a fixed size.
type sketch struct{ hll *hyperloglog.Sketch }

// emptySketch is copied for every new sketch. It is made when the package
// is initialised, so a precision the library refused would stop the
// function at start-up, never in a batch.
var emptySketch = func() *hyperloglog.Sketch {
	hll, err := hyperloglog.NewSketch(SketchPrecision, false)
	if err != nil {
		panic(fmt.Sprintf("aggregate: sketch precision %d: %v", SketchPrecision, err))
	}
	return hll
}()

func newSketch() sketch { return sketch{emptySketch.Clone()} }

// decodeSketch reads a stored sketch; it must be a dense one of
// SketchPrecision, as aggregation writes.
func decodeSketch(b []byte) (sketch, error) {
	if len(b) != SketchBytes {
		return sketch{}, fmt.Errorf("sketch of %d bytes, want %d", len(b), SketchBytes)
	}
	s := newSketch()
	if err := s.hll.UnmarshalBinary(slices.Clone(b)); err != nil {
		return sketch{}, err
	}
	if len(s.encode()) != SketchBytes {
		return sketch{}, errors.New("sketch is not dense")
	}
	return s, nil
}

func (s sketch) insert(v string) { s.hll.Insert([]byte(v)) }

func (s sketch) estimate() int { return int(s.hll.Estimate()) }

// encode is the sketch as stored. Only a sparse sketch's temporary set can
// fail to marshal; aggregation's sketches are dense, so there is no error.
func (s sketch) encode() []byte {
	b, _ := s.hll.MarshalBinary()
	return b
}

// pseudonym is what a case keeps of a notifier hash: 96 bits of its SHA-256,
// so its size is fixed whatever the hash looks like, and the case holds no
// value that can be matched with the notifier_hash of report items.
func pseudonym(notifierHash string) string {
	sum := sha256.Sum256([]byte(notifierHash))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// check validates what aggregation reads back of a case: a sketch it cannot
// read would silently lose counts, so the case is not updated.
func (s *State) check() error {
	for name, b := range map[string][]byte{"source_sketch": s.SourceSketch, "notifier_sketch": s.NotifierSketch} {
		if b == nil {
			continue
		}
		if _, err := decodeSketch(b); err != nil {
			return fmt.Errorf("case %s: %s: %w", s.ID, name, err)
		}
	}
	return nil
}

// countSources adds sources to n's exact set, or to its sketch once the set
// has had more than MaxExactSources names. Source names are not personal
// data and never expire, so the set is complete until it overflows, and the
// sketch is built from it then.
func (n *State) countSources(sources []string) {
	var sk sketch
	if n.SourceSketch != nil {
		sk, _ = decodeSketch(n.SourceSketch) // checked when read
	}
	set := n.SourceSet
	for _, src := range sources {
		switch {
		case src == "":
		case sk.hll != nil:
			sk.insert(src)
		default:
			set = union(set, src)
			if len(set) > MaxExactSources {
				sk = newSketch()
				for _, v := range set {
					sk.insert(v)
				}
				set = nil
			}
		}
	}
	n.SourceSet, n.Case.SourceCountExact = set, sk.hll == nil
	if sk.hll != nil {
		n.SourceSketch, n.Sources = sk.encode(), sk.estimate()
	} else {
		n.SourceSketch, n.Sources = nil, len(set)
	}
}

// notifierSeen is one report's notifier: its hash and when its report item
// expires (Unix seconds; 0 when unknown). A merge passes the pseudonym of a
// hash another state kept instead of the hash.
type notifierSeen struct {
	hash      string
	pseudonym string
	expiresAt int64
}

// countNotifiers counts distinct notifiers without keeping any notifier
// hash longer than the report items that carry it.
//
// While the case has seen at most MaxExactNotifiers distinct notifiers and
// none of their pseudonyms has expired, it keeps each pseudonym with the
// latest expires_at of that notifier's reports, and the count is exact. The
// first time that stops being true (a pseudonym expires at this write, a
// report arrives whose item has already expired, or the set overflows), every
// pseudonym is put into a sketch, the pseudonyms are dropped, and from then
// on the count is the sketch's estimate. So the case never holds a pseudonym
// past PseudonymsExpireAt (the earliest expiry in the set) once it is written
// after that time; a case with no write after it keeps its pseudonyms until a
// sweep finds it by pseudonyms_expire_at.
func (n *State) countNotifiers(seen []notifierSeen, now time.Time) {
	var sk sketch
	if n.NotifierSketch != nil {
		sk, _ = decodeSketch(n.NotifierSketch) // checked when read
	}
	set := maps.Clone(n.Pseudonyms)
	if set == nil {
		set = map[string]int64{}
	}
	toSketch := func() {
		if sk.hll == nil {
			sk = newSketch()
		}
		for _, p := range slices.Sorted(maps.Keys(set)) {
			sk.insert(p)
		}
		clear(set)
	}
	// Hashes of a case written before pseudonyms existed: their expiry is
	// unknown, so they go straight into the sketch.
	for _, h := range n.LegacyNotifiers {
		set[pseudonym(h)] = 0
	}
	if len(n.LegacyNotifiers) > 0 {
		toSketch()
		n.LegacyNotifiers = nil
	}
	for _, exp := range set {
		if exp <= now.Unix() {
			toSketch()
			break
		}
	}
	for _, r := range seen {
		p := r.pseudonym
		if p == "" && r.hash != "" {
			p = pseudonym(r.hash)
		}
		if p == "" {
			continue
		}
		if sk.hll != nil {
			sk.insert(p)
			continue
		}
		set[p] = max(set[p], r.expiresAt)
		if r.expiresAt <= now.Unix() || len(set) > MaxExactNotifiers {
			toSketch()
		}
	}
	n.Case.NotifierCountExact = sk.hll == nil
	if sk.hll != nil {
		n.NotifierSketch, n.Case.Notifiers = sk.encode(), sk.estimate()
	} else {
		n.NotifierSketch, n.Case.Notifiers = nil, len(set)
	}
	n.Pseudonyms, n.PseudonymsExpireAt = nil, 0
	if len(set) > 0 {
		n.Pseudonyms = set
		n.PseudonymsExpireAt = slices.Min(slices.Collect(maps.Values(set)))
	}
}

// merge adds the distinct sources and notifiers that o counted to n, as
// counting o's reports into n would: o's exact sets go through countSources
// and countNotifiers, so the exact sets become sketches on the same
// conditions as in apply (overflow, an expired pseudonym), and a sketch on
// either side makes the result a sketch of both (HyperLogLog sketches merge
// register by register, so nothing is counted twice). A recount uses it to
// join the case as stored with the case rebuilt from its report items.
func (n *State) merge(o *State, now time.Time) error {
	n.countSources(o.SourceSet)
	if o.SourceSketch != nil {
		sk, err := mergeSketch(n.SourceSketch, n.SourceSet, o.SourceSketch)
		if err != nil {
			return fmt.Errorf("case %s: merge source sketches: %w", n.ID, err)
		}
		n.SourceSet, n.SourceSketch, n.Sources, n.Case.SourceCountExact = nil, sk.encode(), sk.estimate(), false
	}
	seen := make([]notifierSeen, 0, len(o.Pseudonyms)+len(o.LegacyNotifiers))
	for _, p := range slices.Sorted(maps.Keys(o.Pseudonyms)) {
		seen = append(seen, notifierSeen{pseudonym: p, expiresAt: o.Pseudonyms[p]})
	}
	for _, h := range o.LegacyNotifiers {
		seen = append(seen, notifierSeen{hash: h}) // expiry unknown: into the sketch
	}
	n.countNotifiers(seen, now)
	if o.NotifierSketch != nil {
		sk, err := mergeSketch(n.NotifierSketch, slices.Sorted(maps.Keys(n.Pseudonyms)), o.NotifierSketch)
		if err != nil {
			return fmt.Errorf("case %s: merge notifier sketches: %w", n.ID, err)
		}
		n.Pseudonyms, n.PseudonymsExpireAt = nil, 0
		n.NotifierSketch, n.Case.Notifiers, n.Case.NotifierCountExact = sk.encode(), sk.estimate(), false
	}
	return nil
}

// mergeSketch is the sketch stored (a new one when nil) with values
// inserted and the sketch other merged in.
func mergeSketch(stored []byte, values []string, other []byte) (sketch, error) {
	sk := newSketch()
	if stored != nil {
		var err error
		if sk, err = decodeSketch(stored); err != nil {
			return sketch{}, err
		}
	}
	for _, v := range values {
		sk.insert(v)
	}
	o, err := decodeSketch(other)
	if err != nil {
		return sketch{}, err
	}
	if err := sk.hll.Merge(o.hll); err != nil {
		return sketch{}, err
	}
	return sk, nil
}

// keepMarks drops the marks older than MarkRetention, and no other.
//
// A dropped mark is safe only when its shard can deliver nothing at or below
// it again. A mark is rewritten each time its shard counts a report of the
// case, so a mark older than MarkRetention says the shard has counted
// nothing of the case since; any record at or below it is older still, and
// Lambda discards a record older than the event source's
// MaximumRecordAgeInSeconds instead of delivering it again
// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html).
// MarkRetention is longer than that maximum age (a test reads it from
// template.yaml). Dropping by count instead is not safe: a shard retrying a
// batch rewrites no case it already applied, so its mark ages while other
// shards refresh theirs, and the retry would count its records again.
func keepMarks(marks map[string]Mark, now time.Time) map[string]Mark {
	out := make(map[string]Mark, len(marks)+1)
	for k, m := range marks {
		if now.Sub(time.Unix(m.At, 0)) < MarkRetention {
			out[k] = m
		}
	}
	return out
}
