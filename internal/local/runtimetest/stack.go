package runtimetest

import (
	"context"
	"fmt"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/motoserver"
)

// AWSConfig is an SDK config for the moto_server at url with its dummy
// credentials, and nothing from the developer's own AWS configuration.
func AWSConfig(url string) aws.Config {
	return aws.Config{
		Region:       motoserver.Region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", "testing"),
	}
}

// Stack is moto standing in for the resources that the functions'
// environments refer to, and what the template's references stand for.
type Stack struct {
	Template *samtemplate.Template
	AWS      aws.Config
	Locals   samtemplate.Locals
	// Created lists the logical ids of the resources made, sorted.
	Created []string
}

// NewStack creates in moto (reached through cfg) every resource that the
// environment of any of functions refers to, as the template declares it,
// named flagline-<LogicalId>. It knows tables (with their stream and TTL),
// SNS topics and SQS queues; a reference to anything else is an error.
func NewStack(ctx context.Context, tpl *samtemplate.Template, cfg aws.Config, functions ...string) (*Stack, error) {
	s := &Stack{
		Template: tpl,
		AWS:      cfg,
		Locals:   samtemplate.Locals{Refs: map[string]string{}, Attrs: map[string]string{}, Region: cfg.Region},
	}
	need := map[string]bool{}
	for _, fn := range functions {
		ids, err := tpl.EnvironmentReferences(fn)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			need[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(need)) {
		if err := s.create(ctx, id); err != nil {
			return nil, err
		}
		s.Created = append(s.Created, id)
	}
	return s, nil
}

func (s *Stack) create(ctx context.Context, id string) error {
	name := "flagline-" + id
	typ := s.Template.Resources[id].Type
	set := func(ref string, attrs map[string]string) {
		s.Locals.Refs[id] = ref
		for k, v := range attrs {
			s.Locals.Attrs[id+"."+k] = v
		}
	}
	switch typ {
	case "AWS::DynamoDB::Table":
		spec, err := s.Template.Table(id)
		if err != nil {
			return err
		}
		db := dynamodb.NewFromConfig(s.AWS)
		stream, err := spec.Create(ctx, db, name)
		if err != nil {
			return err
		}
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe table %s: %w", name, err)
		}
		set(name, map[string]string{"Arn": aws.ToString(out.Table.TableArn), "StreamArn": stream})
	case "AWS::SNS::Topic":
		out, err := sns.NewFromConfig(s.AWS).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
		if err != nil {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
		arn := aws.ToString(out.TopicArn)
		set(arn, map[string]string{"TopicArn": arn, "TopicName": name})
	case "AWS::SQS::Queue":
		q := sqs.NewFromConfig(s.AWS)
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("create queue %s: %w", name, err)
		}
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		url := aws.ToString(out.QueueUrl)
		set(url, map[string]string{"Arn": attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], "QueueName": name, "QueueUrl": url})
	case "AWS::Serverless::HttpApi":
		// Its Ref is the API id; functions use it only to build the API's
		// own URL (DASHBOARD_URL, the base of signed links), never to call
		// it, so an id of the form API Gateway gives (10 characters) stands
		// in.
		set("local00api", nil)
	default:
		return fmt.Errorf("%s (%s) is referred to by a function's environment, and the runtime tests cannot stand it in locally", id, typ)
	}
	return nil
}

// FunctionEnv is the whole environment of a function's process under the
// emulator: what Lambda sets (Template.RuntimeEnvironment), the variables
// the template declares evaluated against the stack, then endpoint (e.g.
// motoserver.Server.Env: AWS_ENDPOINT_URL, region, dummy credentials),
// then overrides. As with `sam local invoke --env-vars`, an override may
// only set a variable the template declares for the function.
func (s *Stack) FunctionEnv(logicalID string, endpoint, overrides map[string]string) (map[string]string, error) {
	env, err := s.Template.RuntimeEnvironment(logicalID, s.Locals)
	if err != nil {
		return nil, err
	}
	declared, err := s.Template.Environment(logicalID, s.Locals)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, declared)
	maps.Copy(env, endpoint)
	for k, v := range overrides {
		if _, ok := declared[k]; !ok {
			return nil, fmt.Errorf("%s does not declare %s in template.yaml: sam local invoke --env-vars would not set it", logicalID, k)
		}
		env[k] = v
	}
	return env, nil
}
