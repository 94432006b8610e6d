package alert

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/streamimage"
)

// caseImage is what Decide reads of a stream image: the case's attributes,
// its item type and its key. Aggregation's bookkeeping (version, applied,
// sources, notifiers) is not read.
type caseImage struct {
	casestore.Case
	Type string `dynamodbav:"type"`
	PK   string `dynamodbav:"pk"`
}

// Decide turns one stream record into the alert it asks for. It returns
// ok=false for every record that asks for none: a REMOVE, an item that is
// not a case, or a case whose level is not above its alerted_level (an
// absent alerted_level is 0). Stream filter criteria are only an
// optimisation, so every record is checked here.
//
// One record gives at most one alert, for the case's current level: a case
// that jumps from alerted level 0 to level 3 gets one "new" alert describing
// its current state, one that goes from 2 to 4 gets one "update" alert
// for level 4. The reasons compare the old image with the new one.
//
// A case record whose new image cannot be decoded gives ErrUndecodable.
func Decide(rec events.DynamoDBEventRecord, rules casestore.Rules) (a Alert, ok bool, err error) {
	cur, old, ok, err := decodeCase(rec)
	if err != nil || !ok {
		return Alert{}, false, err
	}
	a, ok = decideLevel(cur, old, rules)
	return a, ok, nil
}

// decodeCase reads a record's case images: ok=false for a REMOVE or an
// item that is not a case; old is nil when the record has no old case
// image (or one that cannot be decoded: it only costs the reasons their
// detail). A new image that cannot be decoded gives ErrUndecodable.
func decodeCase(rec events.DynamoDBEventRecord) (cur casestore.Case, old *casestore.Case, ok bool, err error) {
	if rec.EventName == string(events.DynamoDBOperationTypeRemove) || !isCase(rec.Change.NewImage) {
		return casestore.Case{}, nil, false, nil
	}
	var img caseImage
	if err := streamimage.Unmarshal(rec.Change.NewImage, &img); err != nil {
		return casestore.Case{}, nil, false, fmt.Errorf("%w: record %s: %w", ErrUndecodable, rec.EventID, err)
	}
	cur = img.Case
	if cur.ID == "" {
		cur.ID = strings.TrimPrefix(img.PK, casestore.Key(""))
	}
	if cur.ID == "" {
		return casestore.Case{}, nil, false, fmt.Errorf("%w: record %s: case has no case_id", ErrUndecodable, rec.EventID)
	}
	if isCase(rec.Change.OldImage) {
		var o caseImage
		if streamimage.Unmarshal(rec.Change.OldImage, &o) == nil {
			old = &o.Case
		}
	}
	return cur, old, true, nil
}

// decideLevel is the alert of case c's level, when it is above c's
// alerted_level.
func decideLevel(c casestore.Case, old *casestore.Case, rules casestore.Rules) (Alert, bool) {
	if c.Level <= c.AlertedLevel {
		return Alert{}, false
	}
	a := Alert{
		ID:       AlertID(c.ID, c.Level),
		Kind:     KindNew,
		Level:    c.Level,
		Case:     c,
		Severity: severity(&c, rules),
		old:      old,
	}
	if c.AlertedLevel > 0 {
		a.Kind = KindUpdate
	}
	a.Reasons = reasons(a.Kind, old, &c, rules)
	return a, true
}

// isCase reports whether img is a case item (type "case").
func isCase(img map[string]events.DynamoDBAttributeValue) bool {
	return imageString(img, "type") == casestore.TypeCase
}

// severity is the case's own severity, raised to critical by a threat to
// life, or computed from the rules when the item carries none it knows.
func severity(c *casestore.Case, rules casestore.Rules) casestore.Severity {
	s := c.Severity
	if !slices.Contains(casestore.Severities, s) {
		s = rules.Severity(c)
	}
	if slices.Contains(c.Categories, ThreatToLife) {
		s = casestore.Critical
	}
	return s
}

// reasons says why the alert is sent. A new alert describes the current
// state (new case, highest threshold reached, threat to life); an update
// names what changed between the old and new image: thresholds crossed,
// countries that joined, a first threat to life. When the images show no
// such change (the escalate function raised the level, or this record is a
// later write of a level raised earlier), the reason is the level itself.
func reasons(kind Kind, old, cur *casestore.Case, rules casestore.Rules) []Reason {
	var out []Reason
	if kind == KindNew {
		out = append(out, Reason{Code: ReasonOpened})
		old = nil
	}
	hasThreat := slices.Contains(cur.Categories, ThreatToLife)
	if hasThreat && (old == nil || !slices.Contains(old.Categories, ThreatToLife)) {
		out = append(out, Reason{Code: ReasonThreatToLife})
	}
	// The highest threshold reached (and, for an update, crossed by
	// this write): one line, not one per threshold.
	for _, t := range slices.Backward(rules.Thresholds) {
		if cur.Reports >= t && (old == nil || old.Reports < t) {
			out = append(out, Reason{Code: ReasonReports, Reports: t})
			break
		}
	}
	if old != nil {
		joined := slices.Clone(cur.Countries)
		slices.Sort(joined)
		joined = slices.Compact(joined)
		for _, c := range joined {
			if c != "" && !slices.Contains(old.Countries, c) {
				out = append(out, Reason{Code: ReasonCountry, Country: c})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, Reason{Code: ReasonLevel, Level: cur.Level})
	}
	return out
}
