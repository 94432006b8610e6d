package samtemplate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/alert"
)

// paramsTemplate declares one parameter per constraint CloudFormation
// checks, and uses them in an environment, a condition and a schedule.
const paramsTemplate = `
Parameters:
  Stage:
    Type: String
    Default: prod
    AllowedPattern: "[a-z][a-z0-9-]{0,15}"
    ConstraintDescription: lower-case letters, digits and dashes
  Tier:
    Type: String
    Default: free
    AllowedValues: [free, paid]
  Nickname:
    Type: String
    Default: abc
    MinLength: 2
    MaxLength: 4
  Days:
    Type: Number
    Default: 30
    MinValue: 1
    MaxValue: 3650
  Retention:
    Type: Number
    Default: 90
    AllowedValues: [1, 30, 90]
  LevelThresholds:
    Type: CommaDelimitedList
    Default: "5,25,100"
  Desks:
    Type: CommaDelimitedList
    Default: "it,fr"
    AllowedPattern: "[a-z]{2}"
  Kinds:
    Type: CommaDelimitedList
    Default: "email"
    AllowedValues: [email, sms]
  Ports:
    Type: List<Number>
    Default: "80,443"
  Secret:
    Type: String
    Default: ""
    NoEcho: true
    MinLength: 8
  Vpc:
    Type: AWS::EC2::VPC::Id
  EscalateSchedule:
    Type: String
    Default: rate(1 minute)
  EscalateState:
    Type: String
    Default: ENABLED
    AllowedValues: [ENABLED, DISABLED]
Conditions:
  IsPaid: !Equals [!Ref Tier, paid]
Resources:
  WorkFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          LEVEL_THRESHOLDS: !Join [",", !Ref LevelThresholds]
          DAYS: !Ref Days
          PLAN: !If [IsPaid, gold, basic]
      Events:
        Every:
          Type: Schedule
          Properties:
            Schedule: !Ref EscalateSchedule
        V2:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(5 minutes)
            State: !Ref EscalateState
`

// Each constraint of
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
// refuses a value that breaks it and accepts one that keeps it.
func TestCheckParameters(t *testing.T) {
	tpl := loadInline(t, paramsTemplate)
	for _, tc := range []struct {
		name  string
		param string
		value string
		want  string // "" = accepted; else a substring of the error
	}{
		{"pattern matches", "Stage", "staging-2", ""},
		{"pattern must match the whole value", "Stage", "Staging", "does not match AllowedPattern"},
		{"pattern is not a substring search", "Stage", "prod!", "does not match AllowedPattern"},
		{"constraint description is shown", "Stage", "PROD", "lower-case letters, digits and dashes"},
		{"allowed value", "Tier", "paid", ""},
		{"value not allowed", "Tier", "gold", "not one of AllowedValues [free, paid]"},
		{"allowed values are exact", "Tier", "Paid", "not one of AllowedValues"},
		{"length within bounds", "Nickname", "abcd", ""},
		{"shorter than MinLength", "Nickname", "a", "1 characters, fewer than MinLength 2"},
		{"longer than MaxLength", "Nickname", "abcde", "5 characters, more than MaxLength 4"},
		{"length counts characters, not bytes", "Nickname", "ΔΔΔΔ", ""},
		{"number in range", "Days", "7", ""},
		{"float is a number", "Days", "1.5", ""},
		{"not a number", "Days", "seven", "not a number"},
		{"NaN is not a number", "Days", "NaN", "not a number"},
		{"below MinValue", "Days", "0", "less than MinValue 1"},
		{"above MaxValue", "Days", "3651", "more than MaxValue 3650"},
		{"number allowed value", "Retention", "30", ""},
		{"number not allowed", "Retention", "31", "not one of AllowedValues [1, 30, 90]"},
		{"comma delimited list", "LevelThresholds", "2,4", ""},
		{"list members match the pattern", "Desks", "it, de ,fr", ""},
		{"a list member breaks the pattern", "Desks", "it,DE", `member "DE" does not match AllowedPattern`},
		{"list members allowed", "Kinds", "email,sms", ""},
		{"a list member not allowed", "Kinds", "email,fax", `member "fax" is not one of AllowedValues`},
		{"list of numbers", "Ports", "80, 8080", ""},
		{"a list member is not a number", "Ports", "80,http", `member 2 "http" is not a number`},
		{"AWS-specific type cannot be checked locally", "Vpc", "vpc-1", "cannot be checked locally"},
		{"unknown parameter names the known ones", "Treshold", "1", "declares no parameter Treshold (its parameters: Days, Desks, EscalateSchedule, EscalateState, Kinds, LevelThresholds, Nickname, Ports, Retention, Secret, Stage, Tier, Vpc)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tpl.CheckParameters(map[string]string{tc.param: tc.value})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s=%q refused: %v", tc.param, tc.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s=%q accepted, want an error with %q", tc.param, tc.value, tc.want)
			}
			if !errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%q: %v, want ErrInvalidParameter with %q", tc.param, tc.value, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.param) {
				t.Errorf("error %q does not name the parameter", err)
			}
		})
	}
}

// Every bad override is reported, not only the first.
func TestCheckParametersReportsAll(t *testing.T) {
	err := loadInline(t, paramsTemplate).CheckParameters(map[string]string{"Tier": "gold", "Days": "0", "Nope": "1"})
	for _, want := range []string{"Tier", "Days", "Nope"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// A NoEcho parameter's value is never echoed in an error.
func TestCheckParametersMasksNoEcho(t *testing.T) {
	err := loadInline(t, paramsTemplate).CheckParameters(map[string]string{"Secret": "hunter2"})
	if err == nil {
		t.Fatal("a 7-character value passed MinLength 8")
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "****") {
		t.Errorf("error %q shows the NoEcho value", err)
	}
}

// The project's own parameters take the overrides the issue names.
func TestProjectParameters(t *testing.T) {
	tpl := loadProject(t)
	if err := tpl.CheckParameters(map[string]string{"LevelThresholds": "2,4", "LogRetentionDays": "7", "Stage": "dev"}); err != nil {
		t.Errorf("valid overrides refused: %v", err)
	}
	if err := tpl.CheckParameters(map[string]string{"LogRetentionDays": "8"}); err == nil {
		t.Error("LogRetentionDays=8 accepted; CloudWatch Logs has no such retention")
	}
}

// An override is used wherever the template refers to the parameter: an
// environment (through !Join of a list), a condition, and a schedule.
func TestOverridesReachEveryReference(t *testing.T) {
	tpl := loadInline(t, paramsTemplate)
	l := Locals{Params: map[string]string{"LevelThresholds": "2, 4", "Days": "7", "Tier": "paid", "EscalateSchedule": "rate(2 minutes)", "EscalateState": "DISABLED"}}
	env, err := tpl.Environment("WorkFunction", l)
	if err != nil {
		t.Fatal(err)
	}
	if env["LEVEL_THRESHOLDS"] != "2,4" || env["DAYS"] != "7" || env["PLAN"] != "gold" {
		t.Errorf("environment %v, want LEVEL_THRESHOLDS=2,4 DAYS=7 PLAN=gold from the overrides", env)
	}
	ev, err := tpl.ScheduleEvent("WorkFunction", "Every", l)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Expression != "rate(2 minutes)" || !ev.Enabled {
		t.Errorf("schedule %+v, want the overridden rate(2 minutes), enabled", ev)
	}
	v2, err := tpl.ScheduleEvent("WorkFunction", "V2", l)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Expression != "rate(5 minutes)" || v2.Enabled {
		t.Errorf("ScheduleV2 %+v, want rate(5 minutes) disabled by the State override", v2)
	}
	// Without overrides, the defaults.
	ev, err = tpl.ScheduleEvent("WorkFunction", "Every", Locals{})
	if err != nil || ev.Expression != "rate(1 minute)" {
		t.Errorf("default schedule %+v, %v", ev, err)
	}
}

// SAM refuses a Schedule that sets both Enabled and State.
func TestScheduleEnabledAndState(t *testing.T) {
	tpl := loadInline(t, strings.Replace(paramsTemplate, "            Schedule: !Ref EscalateSchedule\n",
		"            Schedule: !Ref EscalateSchedule\n            Enabled: true\n            State: ENABLED\n", 1))
	if _, err := tpl.ScheduleEvent("WorkFunction", "Every", Locals{}); err == nil || !strings.Contains(err.Error(), "both Enabled and State") {
		t.Errorf("err %v", err)
	}
	tpl = loadInline(t, strings.Replace(paramsTemplate, "            Schedule: !Ref EscalateSchedule\n",
		"            Schedule: !Ref EscalateSchedule\n            Enabled: false\n", 1))
	ev, err := tpl.ScheduleEvent("WorkFunction", "Every", Locals{})
	if err != nil || ev.Enabled {
		t.Errorf("Enabled: false gave %+v, %v", ev, err)
	}
}

// Every value the template allows for GroupWait and GroupInterval is one
// the alert function accepts: a deploy can never stop the function at
// start-up (and with it every alert, critical ones too).
func TestGroupParametersAreAcceptedByTheAlertFunction(t *testing.T) {
	tpl := loadProject(t)
	for _, name := range []string{"GroupWait", "GroupInterval"} {
		p, err := tpl.DeclaredParameter(name)
		if err != nil || len(p.AllowedValues) == 0 {
			t.Fatalf("%s: no AllowedValues (%v)", name, err)
		}
		for _, v := range p.AllowedValues {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, v, err)
			}
			wait, interval := alert.DefaultGroupWait, alert.DefaultGroupInterval
			if name == "GroupWait" {
				wait = d
			} else {
				interval = d
			}
			if err := alert.CheckGroupSettings(wait, interval); err != nil {
				t.Errorf("%s %s: the alert function refuses it: %v", name, v, err)
			}
		}
	}
}
