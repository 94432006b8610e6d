// Package devstack runs Flagline on one machine, reading template.yaml
// rather than a second description of it: moto_server as the local AWS; the
// tables, topics and queues the template declares; every HTTP API route
// served on a loopback address by the same handler code the Lambda
// functions run; the stream functions fed by a poller that behaves like
// Lambda's event source mappings (batch size, filter criteria, batch item
// failures, retries, on-failure destination); queue functions fed by a
// poller that behaves like Lambda's event source mapping for SQS (batch
// size and window, partial batch responses, the queue's visibility timeout
// and redrive policy); scheduled functions on their schedule; and the
// contact directory subscribed to the alerts topic with
// one local inbox queue per contact point.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/sqspoll"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/protect"
)

// HTTPFactory builds the HTTP handler of one function from the AWS config
// pointed at moto and the function's environment as the template gives it.
type HTTPFactory func(cfg aws.Config, env map[string]string) (apigw.Handler, error)

// StreamFactory builds a stream function's handler.
type StreamFactory func(cfg aws.Config, env map[string]string) (streampoll.Handler, error)

// QueueFactory builds the handler of a function an SQS queue feeds.
type QueueFactory func(cfg aws.Config, env map[string]string) (sqspoll.Handler, error)

// ScheduleFactory builds a scheduled function's handler.
type ScheduleFactory func(cfg aws.Config, env map[string]string) (func(ctx context.Context) error, error)

// Options configure Start.
type Options struct {
	// Template is the path of template.yaml.
	Template string
	// Addr is where the HTTP API is served, e.g. 127.0.0.1:3000.
	Addr string
	// Env overrides variables of every function's environment (only those
	// the function declares, as `sam local invoke --env-vars` does).
	Env map[string]string
	// Params override template parameters, as `sam deploy
	// --parameter-overrides Name=Value` does: the value is used wherever
	// the template refers to the parameter (environments, schedules,
	// conditions). Start checks them as CloudFormation does before
	// creating anything (samtemplate.CheckParameters).
	Params map[string]string
	// ScheduleEvery, when positive, runs every scheduled function at this
	// interval instead of its rate(…) or cron(…) expression (a deadline of
	// seconds can then be watched locally). Zero keeps the template's rate.
	ScheduleEvery time.Duration
	// HTTP, Stream, Queue and Schedule map a function's logical id to its
	// factory. A function the template declares with no factory is an
	// error.
	HTTP     map[string]HTTPFactory
	Stream   map[string]StreamFactory
	Queue    map[string]QueueFactory
	Schedule map[string]ScheduleFactory
	// Contacts, when set, is subscribed to AlertsTopic, every endpoint
	// replaced by a local inbox queue for its contact point.
	Contacts *contacts.Directory
	// Humanitarian, when set, is stored in the table as the humanitarian
	// allow-list, as `flagline protect apply` stores it.
	Humanitarian *protect.List
	// AlertsTopic is the logical id of the alerts topic (default AlertsTopic).
	AlertsTopic string
	// PollInterval is how often streams are polled (default 250ms, as
	// Lambda polls a shard about four times a second). Queues are long
	// polled; a queue poll that failed is tried again after it.
	PollInterval time.Duration
	// FunctionAPIOptions are added to the functions' AWS clients (tests
	// inject faults with them).
	FunctionAPIOptions []func(*middleware.Stack) error
	// Mux, when set, receives extra routes (the inbox pages).
	Mux func(*http.ServeMux)
	Log *slog.Logger
	// MotoLog receives moto_server's own output; nil discards it.
	MotoLog io.Writer
	// MotoPort fixes moto_server's loopback port; 0 picks a free one.
	MotoPort int
}

// Stack is a running local Flagline.
type Stack struct {
	Moto *motoserver.Server
	// AWS reaches moto; functions get it with FunctionAPIOptions added.
	AWS aws.Config
	// Locals are what the template's references stand for here.
	Locals samtemplate.Locals
	// URL is the base URL of the local HTTP API.
	URL    string
	Routes []samtemplate.Route
	// Mappings are the stream event sources, by function.
	Mappings []*streampoll.Mapping
	// QueueMappings are the SQS event sources, by function.
	QueueMappings []*sqspoll.Mapping
	// Inboxes maps a contact point id to its inbox queue URL.
	Inboxes map[string]string
	// Tokens maps a contact point id to a case API token made for it at
	// Start (when Options.Contacts is set); TokensPath serves them.
	Tokens map[string]string
	// NotEmulated lists resources the template declares that have no local
	// stand-in (keys, alarms, log groups, policies).
	NotEmulated []string
	// Schedules are the scheduled functions' events as the stack runs them.
	Schedules []ScheduledFunction

	tpl          *samtemplate.Template
	pollers      []*streampoll.Poller
	queuePollers []*sqspoll.Poller
	server       *http.Server
	listener     net.Listener
	// runCtx is the functions' context. Close ends it only when the work
	// in hand outlasts DrainTimeout; stop tells pollers and schedules to
	// start nothing new.
	runCtx    context.Context
	cancel    context.CancelFunc
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	log       *slog.Logger
}

// Start brings the stack up. Close stops everything it started.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.AlertsTopic == "" {
		opts.AlertsTopic = "AlertsTopic"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	tpl, err := samtemplate.Load(opts.Template)
	if err != nil {
		return nil, err
	}
	// CloudFormation refuses a bad parameter value before it creates
	// anything; so does the stack, before moto_server starts.
	if err := tpl.CheckParameters(opts.Params); err != nil {
		return nil, err
	}
	if opts.ScheduleEvery < 0 {
		return nil, fmt.Errorf("schedule interval %v: not positive", opts.ScheduleEvery)
	}
	bin, err := motoserver.Binary(filepath.Dir(opts.Template))
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("serve the API on %s: %w", opts.Addr, err)
	}
	s := &Stack{tpl: tpl, listener: listener, URL: "http://" + listener.Addr().String(), log: opts.Log, Inboxes: map[string]string{}, Tokens: map[string]string{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Moto, err = motoserver.StartOn(ctx, bin, opts.MotoPort, opts.MotoLog); err != nil {
		return nil, err
	}
	s.AWS = aws.Config{
		Region:       motoserver.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(s.Moto.URL),
	}
	s.Locals = samtemplate.Locals{Refs: map[string]string{}, Attrs: map[string]string{}, Params: maps.Clone(opts.Params), Region: motoserver.Region, StackName: "flagline-local"}
	if err := s.createResources(ctx); err != nil {
		return nil, err
	}
	if opts.Contacts != nil {
		if err := s.subscribeContacts(ctx, opts.Contacts, opts.AlertsTopic); err != nil {
			return nil, err
		}
		if err := s.createTokens(ctx, opts.Contacts); err != nil {
			return nil, err
		}
	}
	if opts.Humanitarian != nil {
		if _, err := protect.Apply(ctx, dynamodb.NewFromConfig(s.AWS), s.Locals.Refs["Table"], opts.Humanitarian, false, time.Now(), io.Discard); err != nil {
			return nil, fmt.Errorf("humanitarian list: %w", err)
		}
	}
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	s.stop = make(chan struct{})
	fnCfg := s.AWS.Copy()
	fnCfg.APIOptions = append(fnCfg.APIOptions, opts.FunctionAPIOptions...)
	mux := http.NewServeMux()
	if err := s.wire(fnCfg, opts, mux); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET "+TokensPath, s.serveTokens)
	if opts.Mux != nil {
		opts.Mux(mux)
	}
	for _, p := range s.pollers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.poll(p, opts.PollInterval)
		}()
	}
	for _, p := range s.queuePollers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.Run(s.runCtx, opts.PollInterval, func(err error) { s.log.Warn("queue poll", "error", err) })
		}()
	}
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Log.Error("local API stopped", "error", err)
		}
	}()
	return s, nil
}

// createResources makes every table, topic and queue the template declares
// and records what references to them stand for.
func (s *Stack) createResources(ctx context.Context) error {
	db := dynamodb.NewFromConfig(s.AWS)
	topics := sns.NewFromConfig(s.AWS)
	queues := sqs.NewFromConfig(s.AWS)
	ids := make([]string, 0, len(s.tpl.Resources))
	for id := range s.tpl.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var queueIDs []string
	for _, id := range ids {
		name := "flagline-" + id
		switch typ := s.tpl.Resources[id].Type; typ {
		case "AWS::DynamoDB::Table":
			spec, err := s.tpl.Table(id)
			if err != nil {
				return err
			}
			streamARN, err := spec.Create(ctx, db, name)
			if err != nil {
				return err
			}
			s.Locals.Refs[id] = name
			s.Locals.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:dynamodb:%s:123456789012:table/%s", motoserver.Region, name)
			if streamARN != "" {
				s.Locals.Attrs[id+".StreamArn"] = streamARN
			}
		case "AWS::SNS::Topic":
			out, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
			if err != nil {
				return fmt.Errorf("create topic %s: %w", id, err)
			}
			s.Locals.Refs[id] = aws.ToString(out.TopicArn)
			s.Locals.Attrs[id+".TopicArn"] = aws.ToString(out.TopicArn)
			s.Locals.Attrs[id+".TopicName"] = name
		case "AWS::SQS::Queue":
			queueIDs = append(queueIDs, id) // created below, dead-letter queues first
		case "AWS::Serverless::HttpApi":
			// Served in-process at s.URL. Its Ref is the API id; a variable
			// built from it (the execute-api URL as DASHBOARD_URL's
			// default) names no local address, so withLocalSecrets
			// replaces DASHBOARD_URL with s.URL.
			s.Locals.Refs[id] = "local" + strings.ToLower(id)
		case "AWS::Serverless::Function":
			// Served in-process.
		default:
			s.NotEmulated = append(s.NotEmulated, id+" ("+typ+")")
		}
	}
	return s.createQueues(ctx, queues, queueIDs)
}

// createQueues creates the template's queues with the attributes it gives
// them, each dead-letter queue before the queues that redrive to it (SQS
// refuses a RedrivePolicy whose deadLetterTargetArn is no queue).
func (s *Stack) createQueues(ctx context.Context, queues *sqs.Client, pending []string) error {
	for len(pending) > 0 {
		var later []string
		for _, id := range pending {
			attrs, err := QueueAttributes(s.tpl.Resources[id].Properties, func(ref string) (string, bool) {
				arn, ok := s.Locals.Attrs[ref]
				return arn, ok
			})
			if errors.Is(err, errNotYet) {
				later = append(later, id)
				continue
			}
			if err != nil {
				return fmt.Errorf("queue %s: %w", id, err)
			}
			name := "flagline-" + id
			url, arn, err := createQueue(ctx, queues, name, attrs)
			if err != nil {
				return fmt.Errorf("create queue %s: %w", id, err)
			}
			s.Locals.Refs[id] = url
			s.Locals.Attrs[id+".Arn"] = arn
			s.Locals.Attrs[id+".QueueName"] = name
			s.Locals.Attrs[id+".QueueUrl"] = url
		}
		if len(later) == len(pending) {
			return fmt.Errorf("queues %s: their RedrivePolicy deadLetterTargetArn is no queue of this template (or they redrive to each other)", strings.Join(later, ", "))
		}
		pending = later
	}
	return nil
}

// errNotYet: the queue's dead-letter queue is not created yet.
var errNotYet = errors.New("dead-letter queue not created yet")

// QueueAttributes are the CreateQueue attributes of an AWS::SQS::Queue's
// properties: VisibilityTimeout, MessageRetentionPeriod, DelaySeconds and
// RedrivePolicy, its deadLetterTargetArn (a GetAtt, read as
// "Queue.Arn") resolved by arn (false: not created yet). Values SQS
// refuses are refused
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html).
func QueueAttributes(props map[string]any, arn func(ref string) (string, bool)) (map[string]string, error) {
	attrs := map[string]string{}
	var errs []error
	for _, a := range []struct {
		name     string
		min, max int
	}{
		{"VisibilityTimeout", 0, 43200},
		{"MessageRetentionPeriod", 60, 1209600},
		{"DelaySeconds", 0, 900},
	} {
		v, ok := props[a.name]
		if !ok {
			continue
		}
		n, whole := wholeNumber(v)
		if !whole || n < a.min || n > a.max {
			errs = append(errs, fmt.Errorf("%s %v: must be %d..%d", a.name, v, a.min, a.max))
			continue
		}
		attrs[a.name] = strconv.Itoa(n)
	}
	if v, ok := props["RedrivePolicy"]; ok {
		policy, _ := v.(map[string]any)
		n, whole := wholeNumber(policy["maxReceiveCount"])
		if !whole || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("RedrivePolicy maxReceiveCount %v: must be 1..1000", policy["maxReceiveCount"]))
		}
		target := fmt.Sprint(policy["deadLetterTargetArn"])
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		dlq, ok := arn(target)
		if !ok {
			return nil, fmt.Errorf("RedrivePolicy deadLetterTargetArn %s: %w", target, errNotYet)
		}
		b, err := json.Marshal(map[string]any{"deadLetterTargetArn": dlq, "maxReceiveCount": n})
		if err != nil {
			return nil, err
		}
		attrs["RedrivePolicy"] = string(b)
	}
	return attrs, errors.Join(errs...)
}

func createQueue(ctx context.Context, queues *sqs.Client, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := queues.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", err
	}
	got, err := queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.QueueUrl), got.Attributes["QueueArn"], nil
}

// subscribeContacts gives each contact point an inbox queue and applies the
// directory to the alerts topic with those queues as its only endpoints, so
// each inbox receives exactly what the contact point's filter policy lets
// through.
func (s *Stack) subscribeContacts(ctx context.Context, dir *contacts.Directory, topicID string) error {
	topic := s.Locals.Refs[topicID]
	if topic == "" {
		return fmt.Errorf("template has no topic %s to subscribe contact points to", topicID)
	}
	queues := sqs.NewFromConfig(s.AWS)
	local := &contacts.Directory{}
	for _, cp := range dir.ContactPoints {
		url, arn, err := createQueue(ctx, queues, "flagline-inbox-"+cp.ID, nil)
		if err != nil {
			return fmt.Errorf("inbox queue for %s: %w", cp.ID, err)
		}
		s.Inboxes[cp.ID] = url
		cp.Endpoints = []contacts.Endpoint{{Protocol: contacts.SQS, Address: arn}}
		local.ContactPoints = append(local.ContactPoints, cp)
	}
	_, err := contacts.Apply(ctx, contacts.Clients{SNS: sns.NewFromConfig(s.AWS), DynamoDB: dynamodb.NewFromConfig(s.AWS)},
		contacts.Target{TopicARN: topic, Table: s.Locals.Refs["Table"]}, local, contacts.Options{})
	return err
}

// wire builds every function's handler and connects it to its events.
func (s *Stack) wire(cfg aws.Config, opts Options, mux *http.ServeMux) error {
	var err error
	if s.Routes, err = s.tpl.Routes(); err != nil {
		return err
	}
	streams := map[string]*streampoll.Poller{}
	overrides := functionOverrides(opts, s.URL)
	// Route key → the event that declared it. API Gateway refuses a second
	// route with the same key (CreateRoute answers 409 ConflictException,
	// https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-routes.html);
	// so does the stack, with a message rather than ServeMux's panic.
	registered := map[string]string{}
	for _, id := range s.tpl.Functions() {
		env, err := s.FunctionEnv(id, overrides)
		if err != nil {
			return err
		}
		fn, err := s.tpl.Function(id)
		if err != nil {
			return err
		}
		// One handler per function, as one Lambda function serves all
		// its routes; each HttpApi event registers its own route once.
		var httpHandler apigw.Handler
		for _, evName := range slices.Sorted(maps.Keys(fn.Events)) {
			ev := fn.Events[evName]
			switch ev.Type {
			case "HttpApi":
				factory, ok := opts.HTTP[id]
				if !ok {
					return fmt.Errorf("no local handler for %s (HTTP API event %s)", id, evName)
				}
				if httpHandler == nil {
					if httpHandler, err = factory(cfg, env); err != nil {
						return fmt.Errorf("%s: %w", id, err)
					}
				}
				method, _ := ev.Properties["Method"].(string)
				path, _ := ev.Properties["Path"].(string)
				r := samtemplate.Route{Function: id, Method: strings.ToUpper(method), Path: path}
				if first, dup := registered[r.Key()]; dup {
					return fmt.Errorf("route %s is declared twice: by %s and by %s event %s", r.Key(), first, id, evName)
				}
				registered[r.Key()] = id + " event " + evName
				apigw.Handle(mux, r.Key(), httpHandler, s.log)
			case "DynamoDB":
				factory, ok := opts.Stream[id]
				if !ok {
					return fmt.Errorf("no local handler for %s (stream event %s)", id, evName)
				}
				h, err := factory(cfg, env)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				m, streamARN, err := s.mapping(id, ev.Properties, h)
				if err != nil {
					return fmt.Errorf("%s event %s: %w", id, evName, err)
				}
				p := streams[streamARN]
				if p == nil {
					p = &streampoll.Poller{Streams: dynamodbstreams.NewFromConfig(s.AWS), StreamARN: streamARN, Region: motoserver.Region}
					streams[streamARN] = p
					s.pollers = append(s.pollers, p)
				}
				p.Mappings = append(p.Mappings, m)
				s.Mappings = append(s.Mappings, m)
			case "SQS":
				factory, ok := opts.Queue[id]
				if !ok {
					return fmt.Errorf("no local handler for %s (queue event %s)", id, evName)
				}
				h, err := factory(cfg, env)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				p, err := s.queueMapping(id, ev.Properties, h)
				if err != nil {
					return fmt.Errorf("%s event %s: %w", id, evName, err)
				}
				s.queuePollers = append(s.queuePollers, p)
				s.QueueMappings = append(s.QueueMappings, p.Mapping)
			case "Schedule", "ScheduleV2":
				factory, ok := opts.Schedule[id]
				if !ok {
					return fmt.Errorf("no local handler for %s (schedule %s)", id, evName)
				}
				if err := s.schedule(cfg, env, id, evName, opts.ScheduleEvery, factory); err != nil {
					return fmt.Errorf("%s schedule %s: %w", id, evName, err)
				}
			default:
				return fmt.Errorf("%s: event type %s has no local stand-in", id, ev.Type)
			}
		}
	}
	return nil
}

// mapping is the event source mapping a DynamoDB event declares.
func (s *Stack) mapping(function string, props map[string]any, h streampoll.Handler) (*streampoll.Mapping, string, error) {
	streamARN := s.Locals.Attrs[fmt.Sprint(props["Stream"])]
	if streamARN == "" {
		return nil, "", fmt.Errorf("stream %v is not a table stream of this template", props["Stream"])
	}
	m := &streampoll.Mapping{Name: function, Handler: h}
	if err := StreamSettings(m, props); err != nil {
		return nil, "", err
	}
	if fc, ok := props["FilterCriteria"].(map[string]any); ok {
		filter, err := ParseFilters(fc)
		if err != nil {
			return nil, "", err
		}
		m.Filter = filter
	}
	if dest := nested(props, "DestinationConfig", "OnFailure", "Destination"); dest != nil {
		arn := s.Locals.Attrs[fmt.Sprint(dest)]
		url := s.queueURL(arn)
		if url == "" {
			return nil, "", fmt.Errorf("on-failure destination %v is not a queue of this template", dest)
		}
		queues := sqs.NewFromConfig(s.AWS)
		m.OnFailure = func(ctx context.Context, info streampoll.FailureInfo) error {
			_, err := queues.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(info.JSON())})
			return err
		}
	}
	return m, streamARN, nil
}

// queueMapping is the event source mapping an SQS event declares, checked
// against its queue as CreateEventSourceMapping checks it (the queue's
// visibility timeout at least the function's timeout), so a stack that
// could not deploy does not start.
func (s *Stack) queueMapping(function string, props map[string]any, h sqspoll.Handler) (*sqspoll.Poller, error) {
	arn := s.Locals.Attrs[fmt.Sprint(props["Queue"])]
	url := s.queueURL(arn)
	if arn == "" || url == "" {
		return nil, fmt.Errorf("queue %v is not a queue of this template", props["Queue"])
	}
	rt, err := s.tpl.RuntimeEnvironment(function, s.Locals)
	if err != nil {
		return nil, err
	}
	timeout, err := strconv.Atoi(rt["AWS_LAMBDA_FUNCTION_TIMEOUT"])
	if err != nil {
		return nil, fmt.Errorf("function Timeout %q: %w", rt["AWS_LAMBDA_FUNCTION_TIMEOUT"], err)
	}
	m := &sqspoll.Mapping{Name: function, QueueURL: url, QueueARN: arn, Region: motoserver.Region, Handler: h,
		FunctionTimeout: time.Duration(timeout) * time.Second}
	if err := QueueSettings(m, props); err != nil {
		return nil, err
	}
	p := sqspoll.New(sqs.NewFromConfig(s.AWS), m)
	if err := p.Check(s.runCtx); err != nil {
		return nil, err
	}
	return p, nil
}

// QueueSettings sets m's event source mapping settings from an SQS event's
// properties as CloudFormation passes them to CreateEventSourceMapping:
// BatchSize (default 10), MaximumBatchingWindowInSeconds (default 0),
// FunctionResponseTypes (only ReportBatchItemFailures) and Enabled
// (default true), and an error for what the API refuses
// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html,
// https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
// FilterCriteria has no local stand-in and is refused rather than ignored.
func QueueSettings(m *sqspoll.Mapping, props map[string]any) error {
	m.BatchSize, m.BatchingWindow = sqspoll.DefaultBatchSize, 0
	if v, ok := props["BatchSize"]; ok {
		n, whole := wholeNumber(v)
		if !whole || n == 0 {
			return fmt.Errorf("BatchSize %v: must be a whole number 1..%d", v, sqspoll.MaxBatchSize)
		}
		m.BatchSize = n
	}
	if v, ok := props["MaximumBatchingWindowInSeconds"]; ok {
		n, whole := wholeNumber(v)
		if !whole {
			return fmt.Errorf("MaximumBatchingWindowInSeconds %v: not a whole number", v)
		}
		m.BatchingWindow = time.Duration(n) * time.Second
	}
	var err error
	if m.ReportBatchItemFailures, err = reportBatchItemFailures(props); err != nil {
		return err
	}
	switch v := props["Enabled"].(type) {
	case nil:
	case bool:
		m.Disabled = !v
	default:
		return fmt.Errorf("Enabled %v: not a boolean", v)
	}
	if _, ok := props["FilterCriteria"]; ok {
		return errors.New("FilterCriteria on an SQS event has no local stand-in")
	}
	return m.Validate()
}

// StreamSettings sets m's event source mapping settings from a DynamoDB
// event's properties as CloudFormation passes them to
// CreateEventSourceMapping: the API's defaults for those left out (BatchSize
// 100, MaximumRetryAttempts and MaximumRecordAgeInSeconds -1, no tumbling
// window, no bisect, no ReportBatchItemFailures), and an error for what it
// refuses
// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
func StreamSettings(m *streampoll.Mapping, props map[string]any) error {
	for _, set := range []struct {
		name string
		to   *int
		def  int
		// zero is refused: in the Mapping, 0 stands for "left out".
		noZero bool
	}{
		{"BatchSize", &m.BatchSize, streampoll.DefaultBatchSize, true},
		{"MaximumRetryAttempts", &m.MaximumRetryAttempts, -1, false},
		{"MaximumRecordAgeInSeconds", &m.MaximumRecordAgeInSeconds, -1, true},
		{"TumblingWindowInSeconds", &m.TumblingWindowInSeconds, 0, false},
	} {
		v, ok := props[set.name]
		if !ok {
			*set.to = set.def
			continue
		}
		n, whole := wholeNumber(v)
		if !whole {
			return fmt.Errorf("%s %v: not a whole number", set.name, v)
		}
		if n == 0 && set.noZero {
			return fmt.Errorf("%s 0: out of range for CreateEventSourceMapping", set.name)
		}
		*set.to = n
	}
	switch v := props["BisectBatchOnFunctionError"].(type) {
	case nil:
	case bool:
		m.BisectBatchOnFunctionError = v
	default:
		return fmt.Errorf("BisectBatchOnFunctionError %v: not a boolean", v)
	}
	var err error
	if m.ReportBatchItemFailures, err = reportBatchItemFailures(props); err != nil {
		return err
	}
	return m.Validate()
}

// wholeNumber reads a template number, as YAML or JSON gives it.
func wholeNumber(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case uint64:
		return int(n), n <= 1<<31
	case float64:
		return int(n), n == float64(int(n))
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

func (s *Stack) queueURL(arn string) string {
	for k, v := range s.Locals.Attrs {
		if v == arn && strings.HasSuffix(k, ".Arn") {
			return s.Locals.Attrs[strings.TrimSuffix(k, ".Arn")+".QueueUrl"]
		}
	}
	return ""
}

// paramDashboardURL is the template parameter DASHBOARD_URL follows.
const paramDashboardURL = "DashboardUrl"

// functionOverrides are the environment overrides of every function:
// opts.Env with the local secrets and, unless a DashboardUrl parameter is
// given, DASHBOARD_URL = the stack's URL. The stack's URL stands in for the
// template's default (the execute-api URL); a DashboardUrl given as a
// parameter is where the links are meant to point, as when deployed.
func functionOverrides(opts Options, stackURL string) map[string]string {
	overrides := withLocalSecrets(opts.Env, stackURL)
	if _, set := opts.Env[EnvDashboardURL]; !set && opts.Params[paramDashboardURL] != "" {
		delete(overrides, EnvDashboardURL)
	}
	return overrides
}

// ScheduledFunction is a Schedule or ScheduleV2 event as the stack runs it.
type ScheduledFunction struct {
	Function, Event string
	// Expression is the template's schedule expression, parameters
	// evaluated.
	Expression string
	// Every is how often the function runs here: Options.ScheduleEvery
	// when set, else the expression's rate. Zero when Disabled.
	Every time.Duration
	// Disabled: the template disables the schedule (Enabled false, State
	// DISABLED), so it never runs, as a disabled rule never fires.
	Disabled bool
}

// schedule runs a scheduled function every rate(...) period, or every
// override when that is positive. Without an override only rate(…) runs
// locally; with one, a cron(…) expression runs at the override's interval
// too. at(…) (one time, ScheduleV2) does not run locally.
func (s *Stack) schedule(cfg aws.Config, env map[string]string, id, event string, override time.Duration, factory ScheduleFactory) error {
	ev, err := s.tpl.ScheduleEvent(id, event, s.Locals)
	if err != nil {
		return err
	}
	sf := ScheduledFunction{Function: id, Event: event, Expression: ev.Expression, Disabled: !ev.Enabled}
	if sf.Disabled {
		s.Schedules = append(s.Schedules, sf)
		return nil
	}
	every, err := ParseRate(ev.Expression)
	switch {
	case err == nil && override > 0:
		every = override
	case err != nil && override > 0 && strings.HasPrefix(ev.Expression, "cron(") && strings.HasSuffix(ev.Expression, ")"):
		every = override
	case err != nil:
		return err
	}
	sf.Every = every
	run, err := factory(cfg, env)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := run(s.runCtx); err != nil && s.runCtx.Err() == nil {
					s.log.Warn("scheduled function failed", "function", id, "error", err)
				}
			case <-s.stop:
				return
			}
		}
	}()
	s.Schedules = append(s.Schedules, sf)
	return nil
}

// Template is the template the stack runs.
func (s *Stack) Template() *samtemplate.Template { return s.tpl }

// FunctionEnv is a function's environment as the template declares it,
// evaluated against the local resources, with overrides for the variables
// it declares.
func (s *Stack) FunctionEnv(logicalID string, overrides map[string]string) (map[string]string, error) {
	env, err := s.tpl.Environment(logicalID, s.Locals)
	if err != nil {
		return nil, err
	}
	for k, v := range overrides {
		if _, declared := env[k]; declared {
			env[k] = v
		}
	}
	return env, nil
}

// PollQueuesOnce gives every queue mapping one poll: at most one batch
// each. It returns how many messages the functions were given.
func (s *Stack) PollQueuesOnce(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, p := range s.queuePollers {
		k, err := p.PollOnce(ctx)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// PollOnce runs every stream mapping until caught up (tests use it to wait
// for the pipeline to settle). It returns the number of invocations made.
func (s *Stack) PollOnce(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, p := range s.pollers {
		k, err := p.PollOnce(ctx)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// DynamoDB returns a client for the local tables.
func (s *Stack) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(s.AWS) }

// DrainTimeout bounds how long Close lets the work in hand finish: requests
// being answered, and stream records already in the table, which the
// pollers pass to their functions until caught up.
const DrainTimeout = 5 * time.Second

// poll runs p's mappings every interval until Close. A poll in progress
// when Close begins goes on until the stream is caught up (or DrainTimeout
// ends runCtx), so reports accepted before the stop are counted and alerted.
func (s *Stack) poll(p *streampoll.Poller, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := p.PollOnce(s.runCtx); err != nil && s.runCtx.Err() == nil {
			s.log.Warn("stream poll", "error", err)
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops the stack in the order that loses nothing: the API stops
// accepting and answers the requests in hand (each accepted report is in
// the table), the pollers drain the stream and the schedules stop, and
// moto_server goes last. Work still running after DrainTimeout is abandoned
// by cancelling the functions' context. It is safe to call more than once.
func (s *Stack) Close() {
	s.closeOnce.Do(s.close)
}

func (s *Stack) close() {
	deadline := time.Now().Add(DrainTimeout)
	if s.stop != nil {
		close(s.stop)
	}
	for _, p := range s.queuePollers {
		go p.Close() // the batch in hand is settled; waited for below
	}
	if s.server != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		_ = s.server.Shutdown(ctx)
		cancel()
	} else if s.listener != nil {
		s.listener.Close()
	}
	drained := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(time.Until(deadline)):
		s.log.Info("stopping: abandoning stream work still in progress", "after", DrainTimeout)
	}
	if s.cancel != nil {
		s.cancel()
	}
	<-drained
	s.Moto.Stop()
}

// Lookup reads a function's environment as os.LookupEnv reads the
// process's: a function sees only what its template declares, never the
// developer's own shell.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// Rewind makes every stream mapping deliver the whole stream again.
func (s *Stack) Rewind() {
	for _, p := range s.pollers {
		p.Rewind()
	}
}

// StreamRecords returns every record of the tables' streams available now,
// in order per shard (tests use it to see what the functions were given).
func (s *Stack) StreamRecords(ctx context.Context) ([]events.DynamoDBEventRecord, error) {
	var out []events.DynamoDBEventRecord
	for _, p := range s.pollers {
		shards, err := p.ReadAll(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range slices.Sorted(maps.Keys(shards)) {
			out = append(out, shards[id]...)
		}
	}
	return out, nil
}

// reportBatchItemFailures reads an event's FunctionResponseTypes: the only
// value CreateEventSourceMapping accepts, for a stream or a queue, is
// ReportBatchItemFailures
// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
func reportBatchItemFailures(props map[string]any) (bool, error) {
	v, ok := props["FunctionResponseTypes"]
	if !ok {
		return false, nil
	}
	types, _ := v.([]any)
	if types == nil {
		return false, fmt.Errorf("FunctionResponseTypes %v: not a list", v)
	}
	on := false
	for _, t := range types {
		if t != "ReportBatchItemFailures" {
			return false, fmt.Errorf("FunctionResponseTypes: %v is not ReportBatchItemFailures", t)
		}
		on = true
	}
	return on, nil
}
