package caseaction

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

// The clock of a case follows its status, and is written in the same
// transaction as the status (shared/deadline): an action that reopens a
// case starts the acknowledgement clock (now + the deadline of its
// severity), takedown_requested starts the takedown clock (now +
// TakedownDeadline), and an action that moves the case to any other status
// (acknowledge, claim_lead on an open case, removed, not_removed, close,
// false_positive) stops the clock. An action that leaves the status as it
// is (release_lead, evidence_preserved, claim_lead on a case already
// acknowledged) leaves the clock alone. The alert function starts the
// acknowledgement clock of a new case when it records its first alert.

// DefaultTakedownDeadline is TakedownDeadline's default, as the template
// parameter gives it.
const DefaultTakedownDeadline = 72 * time.Hour

// dueAttrs are the attributes of a due case.
var dueAttrs = []string{deadline.AttrDueAt, deadline.AttrDueShard, deadline.AttrDueKind, deadline.AttrReminders}

// clock is what an action does to the due attributes of case c moving to
// status next at time at: the SET clauses and their values, or the
// attributes to REMOVE. Both nil: the clock is left alone.
func (s *Store) clock(c *casestore.Case, next string, at time.Time) (set []string, values map[string]types.AttributeValue, remove []string) {
	switch next {
	case "":
		return nil, nil, nil
	case casestore.StatusOpen:
		set, values = s.startClock(c.ID, deadline.KindAck, at.Add(s.ack().For(c.Severity)))
		return set, values, nil
	case casestore.StatusTakedownRequested:
		set, values = s.startClock(c.ID, deadline.KindTakedown, at.Add(s.takedownDeadline()))
		return set, values, nil
	default:
		return nil, nil, dueAttrs
	}
}

// startClock sets a fresh clock of kind due at due: no reminder sent yet.
func (s *Store) startClock(caseID, kind string, due time.Time) ([]string, map[string]types.AttributeValue) {
	return []string{
			deadline.AttrDueAt + " = :due_at",
			deadline.AttrDueShard + " = :due_shard",
			deadline.AttrDueKind + " = :due_kind",
			deadline.AttrReminders + " = :reminders",
		}, map[string]types.AttributeValue{
			":due_at":    &types.AttributeValueMemberS{Value: deadline.Format(due)},
			":due_shard": &types.AttributeValueMemberS{Value: deadline.Shard(caseID)},
			":due_kind":  &types.AttributeValueMemberS{Value: kind},
			":reminders": &types.AttributeValueMemberN{Value: "0"},
		}
}

var defaultAck = func() deadline.Ack {
	a, err := deadline.ParseAck(deadline.DefaultAck)
	if err != nil {
		panic(err) // a constant of package deadline, tested there
	}
	return a
}()

func (s *Store) ack() deadline.Ack {
	if s.Ack == nil {
		return defaultAck
	}
	return s.Ack
}

func (s *Store) takedownDeadline() time.Duration {
	if s.TakedownDeadline <= 0 {
		return DefaultTakedownDeadline
	}
	return s.TakedownDeadline
}
