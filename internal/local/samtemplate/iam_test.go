package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A function that reads a DynamoDB stream may read that stream only. For a
// DynamoDB event SAM attaches the managed policy AWSLambdaDynamoDBExecutionRole
// to the role it generates, and that policy allows the stream reads on
// Resource "*" (every stream of the account), so statements scoped to the
// table's stream change nothing; SAM generates a role only when the function
// has no Role:
// https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html#sam-function-role
// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaDynamoDBExecutionRole.html
//
// checkStreamReadScope fails on a function with a DynamoDB event and no Role,
// on any mention of that managed policy, and on any Allow statement of an
// IAM role, policy or function that grants a stream read on "*".

const dynamoDBExecutionRole = "AWSLambdaDynamoDBExecutionRole"

// streamReads are the actions Lambda's event source mapping needs to read a
// stream; a statement granting any of them on "*" reads every stream.
var streamReads = []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}

func checkStreamReadScope(t *Template) error {
	var errs []error
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		props := r.Properties
		if strings.Contains(fmt.Sprint(props["Policies"], props["ManagedPolicyArns"]), dynamoDBExecutionRole) {
			errs = append(errs, fmt.Errorf("%s: attaches %s, which reads every stream", id, dynamoDBExecutionRole))
		}
		var statements []any
		switch r.Type {
		case "AWS::Serverless::Function":
			events, _ := props["Events"].(map[string]any)
			for _, name := range sortedKeys(events) {
				ev, _ := events[name].(map[string]any)
				if ev["Type"] == "DynamoDB" && props["Role"] == nil {
					errs = append(errs, fmt.Errorf("%s: DynamoDB event %s and no Role: SAM attaches %s to the role it generates", id, name, dynamoDBExecutionRole))
				}
			}
			policies, _ := props["Policies"].([]any)
			for _, p := range policies {
				if m, ok := p.(map[string]any); ok {
					statements = append(statements, asList(m["Statement"])...)
				}
			}
		case "AWS::IAM::Role":
			policies, _ := props["Policies"].([]any)
			for _, p := range policies {
				m, _ := p.(map[string]any)
				doc, _ := m["PolicyDocument"].(map[string]any)
				statements = append(statements, asList(doc["Statement"])...)
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy":
			doc, _ := props["PolicyDocument"].(map[string]any)
			statements = append(statements, asList(doc["Statement"])...)
		}
		for _, s := range statements {
			st, _ := s.(map[string]any)
			if st["Effect"] != "Allow" || !slices.Contains(asStrings(st["Resource"]), "*") {
				continue
			}
			for _, action := range asStrings(st["Action"]) {
				if grantsStreamRead(action) {
					errs = append(errs, fmt.Errorf("%s: statement %v allows %s on \"*\"", id, st["Sid"], action))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// grantsStreamRead: the action, possibly with IAM wildcards, covers one of
// streamReads.
func grantsStreamRead(action string) bool {
	for _, read := range streamReads {
		if ok, _ := filepath.Match(strings.ToLower(action), strings.ToLower(read)); ok {
			return true
		}
	}
	return false
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func asStrings(v any) []string {
	var out []string
	for _, e := range asList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestProjectStreamReadersReadTheirStreamOnly(t *testing.T) {
	if err := checkStreamReadScope(loadProject(t)); err != nil {
		t.Error(err)
	}
}

// The project template without AggregateFunction's own role would deploy
// with stream reads on every stream: the check must refuse it.
func TestProjectStreamReaderWithoutRoleFails(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const role = "      Role: !GetAtt AggregateFunctionRole.Arn\n"
	if !strings.Contains(string(src), role) {
		t.Fatalf("template.yaml: no %q line", strings.TrimSpace(role))
	}
	tpl := loadInline(t, strings.Replace(string(src), role, "", 1))
	err = checkStreamReadScope(tpl)
	if err == nil || !strings.Contains(err.Error(), "AggregateFunction: DynamoDB event Reports and no Role") {
		t.Fatalf("check passed AggregateFunction without a Role: %v", err)
	}
}

func TestStreamReadScope(t *testing.T) {
	for _, tc := range []struct{ name, resources, want string }{
		{"role scoped to the stream", `
  Reader:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [dynamodb:GetRecords, dynamodb:GetShardIterator]
                Resource: !GetAtt Table.StreamArn
              - Effect: Allow
                Action: [xray:PutTraceSegments]
                Resource: "*"
`, ""},
		{"role reading every stream", `
  Reader:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Sid: Streams
                Effect: Allow
                Action: dynamodb:Get*
                Resource: ["*"]
`, `Reader: statement Streams allows dynamodb:Get* on "*"`},
		{"managed policy on a role", `
  Reader:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole]
`, "Reader: attaches AWSLambdaDynamoDBExecutionRole"},
		{"function statement on every stream", `
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Role: arn:aws:iam::123456789012:role/r
      Policies:
        - Statement:
            - Sid: All
              Effect: Allow
              Action: dynamodb:*
              Resource: "*"
`, `Fn: statement All allows dynamodb:* on "*"`},
		{"function policy template", `
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies: [AWSLambdaDynamoDBExecutionRole]
`, "Fn: attaches AWSLambdaDynamoDBExecutionRole"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkStreamReadScope(loadInline(t, "Resources:"+tc.resources))
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}
