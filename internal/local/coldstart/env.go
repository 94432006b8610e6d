package coldstart

import (
	"fmt"
	"maps"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

const account = "123456789012"

// LambdaEnv is the environment a deployed function starts with, as far as
// its init can tell: what Lambda itself sets for a provided.al2023 function
// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
// the template's runtime settings (samtemplate.RuntimeEnvironment) and the
// variables the template declares for it, with every resource it refers to
// standing in under a name of the shape AWS gives (flagline-<LogicalId>,
// ARNs in the local region and moto's account). Credentials are dummies:
// init makes no call, so nothing can tell them from a role's.
func LambdaEnv(tpl *samtemplate.Template, logicalID string) (map[string]string, error) {
	ids, err := tpl.EnvironmentReferences(logicalID)
	if err != nil {
		return nil, err
	}
	l := samtemplate.Locals{Refs: map[string]string{}, Attrs: map[string]string{}, Region: motoserver.Region, AccountID: account}
	for _, id := range ids {
		ref, attrs, err := standIn(id, tpl.Resources[id].Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", logicalID, err)
		}
		l.Refs[id] = ref
		for k, v := range attrs {
			l.Attrs[id+"."+k] = v
		}
	}
	env, err := tpl.RuntimeEnvironment(logicalID, l)
	if err != nil {
		return nil, err
	}
	declared, err := tpl.Environment(logicalID, l)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, declared)
	maps.Copy(env, map[string]string{
		"AWS_REGION":                     motoserver.Region,
		"AWS_DEFAULT_REGION":             motoserver.Region,
		"AWS_ACCESS_KEY_ID":              "ASIACOLDSTARTBENCH00",
		"AWS_SECRET_ACCESS_KEY":          "coldstart-benchmark-not-a-secret",
		"AWS_SESSION_TOKEN":              "coldstart-benchmark-not-a-token",
		"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
		"LAMBDA_TASK_ROOT":               "/var/task",
		"LAMBDA_RUNTIME_DIR":             "/var/runtime",
		"TZ":                             ":UTC",
		"LANG":                           "en_US.UTF-8",
		"PATH":                           "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	})
	return env, nil
}

// standIn is what !Ref and !GetAtt give for a resource named
// flagline-<id>, for the resource types a function's environment refers to.
func standIn(id, typ string) (string, map[string]string, error) {
	name := "flagline-" + id
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, motoserver.Region, account, resource)
	}
	switch typ {
	case "AWS::DynamoDB::Table":
		table := arn("dynamodb", "table/"+name)
		return name, map[string]string{"Arn": table, "StreamArn": table + "/stream/2026-01-01T00:00:00.000"}, nil
	case "AWS::SNS::Topic":
		return arn("sns", name), map[string]string{"TopicArn": arn("sns", name), "TopicName": name}, nil
	case "AWS::SQS::Queue":
		url := fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", motoserver.Region, account, name)
		return url, map[string]string{"Arn": arn("sqs", name), "QueueName": name, "QueueUrl": url}, nil
	case "AWS::Serverless::HttpApi":
		// Its Ref is the API id, a 10-character string such as API
		// Gateway makes (DASHBOARD_URL's default builds the execute-api
		// URL from it).
		return "coldstart0", nil, nil
	}
	return "", nil, fmt.Errorf("%s (%s): no stand-in for this resource type", id, typ)
}
