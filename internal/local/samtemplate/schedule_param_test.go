package samtemplate

import "testing"

// EventBridge takes "rate(1 minute)" and "rate(5 minutes)", and refuses
// "rate(1 minutes)" and "rate(5 minute)"
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html):
// the template's EscalateSchedule refuses them before a deploy would.
func TestProjectEscalateScheduleUnits(t *testing.T) {
	tpl, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for value, ok := range map[string]bool{
		"rate(1 minute)": true, "rate(2 minutes)": true, "rate(15 minutes)": true, "rate(1 hour)": true,
		"rate(12 hours)": true, "cron(0/5 * * * ? *)": true,
		"rate(1 minutes)": false, "rate(5 minute)": false, "rate(0 minutes)": false, "rate(01 minutes)": false,
		"rate(1 second)": false, "every minute": false,
	} {
		err := tpl.CheckParameters(map[string]string{"EscalateSchedule": value})
		if (err == nil) != ok {
			t.Errorf("EscalateSchedule=%q: error %v, want accepted=%v", value, err, ok)
		}
	}
}
