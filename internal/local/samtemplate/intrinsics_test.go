package samtemplate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These are unit tests (no build tag): they read templates, start nothing.

func loadProject(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

var projectLocals = Locals{
	Refs: map[string]string{"Table": "flagline-Table", "AlertsTopic": "arn:aws:sns:eu-west-1:123456789012:flagline-AlertsTopic", "HttpApi": "local00api",
		"DigestQueue":     "https://sqs.eu-west-1.amazonaws.com/123456789012/flagline-DigestQueue",
		"OutcomeQueue":    "https://sqs.eu-west-1.amazonaws.com/123456789012/flagline-OutcomeQueue",
		"OutcomeFailures": "https://sqs.eu-west-1.amazonaws.com/123456789012/flagline-OutcomeFailures"},
	Attrs: map[string]string{"Table.StreamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/flagline-Table/stream/x",
		"OutcomeQueue.Arn": "arn:aws:sqs:eu-west-1:123456789012:flagline-OutcomeQueue"},
}

// The project's template: !Join of a CommaDelimitedList parameter gives
// the joined default (goccy/go-yaml alone gives the list {",",
// "LevelThresholds"}); !Ref of a resource gives its stand-in; Globals merge.
func TestProjectEnvironments(t *testing.T) {
	tpl := loadProject(t)
	thresholds, _ := tpl.ParameterDefault("LevelThresholds")
	for _, id := range tpl.Functions() {
		env, err := tpl.Environment(id, projectLocals)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if env["TABLE_NAME"] != "flagline-Table" {
			t.Errorf("%s: TABLE_NAME=%q, want the table's stand-in (a Globals variable)", id, env["TABLE_NAME"])
		}
		if v, ok := env["LEVEL_THRESHOLDS"]; ok && v != strings.ReplaceAll(thresholds, " ", "") {
			t.Errorf("%s: LEVEL_THRESHOLDS=%q, want the parameter's default %q joined", id, v, thresholds)
		}
		if v, ok := env["ALERTS_TOPIC_ARN"]; ok && v != projectLocals.Refs["AlertsTopic"] {
			t.Errorf("%s: ALERTS_TOPIC_ARN=%q, want the topic's ARN", id, v)
		}
		for k, v := range env {
			if _, isResource := tpl.Resources[v]; isResource {
				t.Errorf("%s: %s=%q is a logical id, not what it stands for", id, k, v)
			}
		}
	}
}

func TestProjectReferencesAndRuntime(t *testing.T) {
	tpl := loadProject(t)
	for _, id := range tpl.Functions() {
		refs, err := tpl.EnvironmentReferences(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		for _, r := range refs {
			if _, ok := tpl.Resources[r]; !ok {
				t.Errorf("%s refers to %s, which is not a resource", id, r)
			}
		}
		env, err := tpl.RuntimeEnvironment(id, projectLocals)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if env["AWS_LAMBDA_FUNCTION_NAME"] != id || env["_HANDLER"] == "" || env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "" || env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "" {
			t.Errorf("%s: runtime environment %v", id, env)
		}
	}
	// A missing stand-in is an error, not the logical id passed through.
	if _, err := tpl.Environment("AlertFunction", Locals{}); !errors.Is(err, ErrNoStandIn) {
		t.Errorf("without stand-ins: %v, want ErrNoStandIn", err)
	}
}

const intrinsicsTemplate = `
Parameters:
  Names: {Type: CommaDelimitedList, Default: "a, b ,c"}
  Stage: {Type: String, Default: prod}
  Days: {Type: Number, Default: 30}
  NoDefault: {Type: String}
  Path: {Type: String, Default: ""}
Conditions:
  PathEmpty: !Equals [!Ref Path, ""]
  IsProd: {"Fn::Equals": [!Ref Stage, prod]}
  NotProd: !Not [!Condition IsProd]
  Both: !And [{Condition: PathEmpty}, !Condition IsProd]
  Either: !Or [!Condition NotProd, !Equals [a, b]]
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        FROM_GLOBALS: g
        OVERRIDDEN: globals
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 256
      Handler: bootstrap
      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}
      Environment:
        Variables:
          OVERRIDDEN: function
          PLAIN: "literal"
          NUMBER: 42
          BOOL: true
          EMPTY: ""
          LOOKS_LIKE_REF: Stage
          REF: !Ref Stage
          REF_NUMBER: !Ref Days
          JOIN: !Join ["|", !Ref Names]
          JOIN_LIST: !Join ["-", [x, !Ref Stage, "y"]]
          SELECT: !Select [1, !Ref Names]
          SPLIT_SELECT: !Select [2, !Split [",", "p,q,r"]]
          GETATT: !GetAtt Queue.Arn
          GETATT_LIST: !GetAtt [Queue, QueueName]
          REF_QUEUE: !Ref Queue
          SUB: !Sub "${Stage}/${AWS::Region}/${Queue.Arn}/${!Literal}"
          SUB_VARS: !Sub ["${X}-${Stage}", {X: !Ref Days}]
          LONG_FORM: {"Fn::Join": [",", [{"Ref": "Stage"}, "z"]]}
          PARTITION: !Ref AWS::Partition
          IF_SUB: !If [PathEmpty, !Sub "/flagline/${Stage}/sources", !Ref Path]
          IF_NOT: !If [NotProd, yes, no]
          IF_AND: !If [Both, yes, no]
          IF_OR: {"Fn::If": [Either, yes, no]}
  Bad:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MAP: !FindInMap [M, a, b]
  NoCondition:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          IF: !If [Missing, a, b]
  NeedsParam:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          P: !Ref NoDefault
`

func TestIntrinsics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(intrinsicsTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l := Locals{
		Refs:   map[string]string{"Queue": "https://sqs.local/q"},
		Attrs:  map[string]string{"Queue.Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "Queue.QueueName": "q"},
		Region: "eu-central-1",
	}
	env, err := tpl.Environment("Fn", l)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"FROM_GLOBALS":   "g",
		"OVERRIDDEN":     "function",
		"PLAIN":          "literal",
		"NUMBER":         "42",
		"BOOL":           "true",
		"EMPTY":          "",
		"LOOKS_LIKE_REF": "Stage", // a literal, not a reference
		"REF":            "prod",
		"REF_NUMBER":     "30",
		"JOIN":           "a|b|c",
		"JOIN_LIST":      "x-prod-y",
		"SELECT":         "b",
		"SPLIT_SELECT":   "r",
		"GETATT":         "arn:aws:sqs:eu-west-1:123456789012:q",
		"GETATT_LIST":    "q",
		"REF_QUEUE":      "https://sqs.local/q",
		"SUB":            "prod/eu-central-1/arn:aws:sqs:eu-west-1:123456789012:q/${Literal}",
		"SUB_VARS":       "30-prod",
		"LONG_FORM":      "prod,z",
		"PARTITION":      "aws",
		"IF_SUB":         "/flagline/prod/sources",
		"IF_NOT":         "no",
		"IF_AND":         "yes",
		"IF_OR":          "no",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("%d variables, want %d: %v", len(env), len(want), env)
	}

	l.Params = map[string]string{"Names": "x,y", "Stage": "dev"}
	if env, err := tpl.Environment("Fn", l); err != nil || env["JOIN"] != "x|y" || env["REF"] != "dev" ||
		env["IF_SUB"] != "/flagline/dev/sources" || env["IF_NOT"] != "yes" || env["IF_AND"] != "no" || env["IF_OR"] != "yes" {
		t.Errorf("with parameter values: %v %v", env, err)
	}
	l.Params["Path"] = "/custom/path"
	if env, err := tpl.Environment("Fn", l); err != nil || env["IF_SUB"] != "/custom/path" {
		t.Errorf("!If with the condition false: %v %v", env["IF_SUB"], err)
	}
	delete(l.Params, "Path")
	if refs, err := tpl.EnvironmentReferences("Fn"); err != nil || strings.Join(refs, ",") != "Queue" {
		t.Errorf("references %v %v, want [Queue]", refs, err)
	}
	rt, err := tpl.RuntimeEnvironment("Fn", l)
	if err != nil || rt["AWS_LAMBDA_FUNCTION_TIMEOUT"] != "7" || rt["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" ||
		rt["AWS_LAMBDA_LOG_FORMAT"] != "JSON" || rt["AWS_LAMBDA_LOG_LEVEL"] != "DEBUG" || rt["_HANDLER"] != "bootstrap" {
		t.Errorf("runtime environment %v %v", rt, err)
	}
	if _, err := tpl.Environment("Bad", l); err == nil || !strings.Contains(err.Error(), "FindInMap") {
		t.Errorf("!FindInMap: %v, want an error naming it", err)
	}
	if _, err := tpl.Environment("NoCondition", l); err == nil || !strings.Contains(err.Error(), "Missing") {
		t.Errorf("!If of an undeclared condition: %v, want an error naming it", err)
	}
	if _, err := tpl.Environment("NeedsParam", l); err == nil || !strings.Contains(err.Error(), "NoDefault") {
		t.Errorf("a parameter without default or value: %v", err)
	}
}

func TestFunctionDir(t *testing.T) {
	for id, want := range map[string]string{"IngestFunction": "ingest", "AlertFunction": "alert", "Escalate": "escalate"} {
		if got := FunctionDir(id); got != want {
			t.Errorf("FunctionDir(%s) = %s, want %s", id, got, want)
		}
	}
}

// A stage reads its own secrets: the secrets path and the notifier key
// follow Stage unless WebhookSecretsPath names another path.
func TestProjectSecretsFollowStage(t *testing.T) {
	tpl := loadProject(t)
	l := projectLocals
	l.Params = map[string]string{"Stage": "staging"}
	env, err := tpl.Environment("IngestFunction", l)
	if err != nil {
		t.Fatal(err)
	}
	if env["WEBHOOK_SECRETS_PATH"] != "/flagline/staging/sources" || env["NOTIFIER_KEY_PARAMETER"] != "/flagline/staging/notifier-key" {
		t.Errorf("staging reads %q and %q", env["WEBHOOK_SECRETS_PATH"], env["NOTIFIER_KEY_PARAMETER"])
	}
	l.Params = map[string]string{"Stage": "staging", "WebhookSecretsPath": "/shared/sources"}
	if env, err := tpl.Environment("IngestFunction", l); err != nil || env["WEBHOOK_SECRETS_PATH"] != "/shared/sources" {
		t.Errorf("with WebhookSecretsPath set: %q %v", env["WEBHOOK_SECRETS_PATH"], err)
	}
}
