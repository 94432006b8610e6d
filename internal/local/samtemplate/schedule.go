package samtemplate

import (
	"fmt"
)

// ScheduleEvent is a function's Schedule or ScheduleV2 event with its
// properties evaluated against Locals, so that a schedule given by a
// parameter (`Schedule: !Ref EscalateSchedule`) follows the parameter's
// value.
type ScheduleEvent struct {
	Function, Event string
	Type            string // Schedule or ScheduleV2
	// Expression is the schedule expression: rate(…), cron(…) or at(…).
	Expression string
	// Enabled is false when the template disables the schedule: Enabled
	// false or State DISABLED.
	Enabled bool
}

// ScheduleEvent reads the Schedule (an EventBridge rule,
// https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-schedule.html)
// or ScheduleV2 (an EventBridge Scheduler schedule,
// https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-schedulev2.html)
// event named event of function logicalID.
func (t *Template) ScheduleEvent(logicalID, event string, l Locals) (*ScheduleEvent, error) {
	if _, err := t.function(logicalID); err != nil {
		return nil, err
	}
	n := child(t.root, "Resources", logicalID, "Properties", "Events", event)
	if n == nil {
		return nil, fmt.Errorf("%s has no event %s", logicalID, event)
	}
	typ, _ := scalar(child(n, "Type"))
	exprKey := map[string]string{"Schedule": "Schedule", "ScheduleV2": "ScheduleExpression"}[typ]
	if exprKey == "" {
		return nil, fmt.Errorf("%s event %s is %s, not a schedule", logicalID, event, typ)
	}
	ev := &evaluator{t: t, l: l}
	prop := func(key string) (string, bool, error) {
		v := child(n, "Properties", key)
		if v == nil {
			return "", false, nil
		}
		s, err := ev.str(v)
		if err != nil {
			return "", true, fmt.Errorf("%s event %s: %s: %w", logicalID, event, key, err)
		}
		return s, true, nil
	}
	out := &ScheduleEvent{Function: logicalID, Event: event, Type: typ, Enabled: true}
	expr, set, err := prop(exprKey)
	if err != nil {
		return nil, err
	}
	if !set || expr == "" {
		return nil, fmt.Errorf("%s event %s: %s has no %s", logicalID, event, typ, exprKey)
	}
	out.Expression = expr
	state, stateSet, err := prop("State")
	if err != nil {
		return nil, err
	}
	if stateSet {
		allowed := map[string]bool{"ENABLED": true, "DISABLED": true}
		if typ == "Schedule" {
			// An EventBridge rule's State also takes this value.
			allowed["ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"] = true
		}
		if !allowed[state] {
			return nil, fmt.Errorf("%s event %s: State %q is not one %s accepts", logicalID, event, state, typ)
		}
		out.Enabled = state != "DISABLED"
	}
	if typ == "Schedule" {
		enabled, set, err := prop("Enabled")
		if err != nil {
			return nil, err
		}
		if set {
			if stateSet {
				// "Specify either the Enabled or State property, but not both."
				return nil, fmt.Errorf("%s event %s: Schedule sets both Enabled and State", logicalID, event)
			}
			switch enabled {
			case "true":
			case "false":
				out.Enabled = false
			default:
				return nil, fmt.Errorf("%s event %s: Enabled %q is not a boolean", logicalID, event, enabled)
			}
		}
	}
	return out, nil
}
