package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
)

// An alarm is only as good as the notification that reaches someone. These
// tests check, for every AWS::CloudWatch::Alarm of a template, that
// CloudWatch may publish to each topic its actions name, by the rules AWS
// applies at run time (a template with a broken rule deploys fine and every
// notification is dropped), and that the alarm set covers every function,
// stream reader, API and topic of the template.

// A topic's encryption key must let CloudWatch use it: "the key policy of the
// customer managed key must allow the service principal kms:GenerateDataKey*
// and kms:Decrypt"; an AWS managed key (alias/aws/sns) cannot be given that
// permission, so an alarm cannot publish to a topic encrypted with it.
// https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
//
// A topic without a policy of its own keeps the default policy, which
// admits publishing on behalf of the topic owner's account; a topic policy
// replaces it and must then allow cloudwatch.amazonaws.com sns:Publish.
// https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger

const cloudWatchPrincipal = "cloudwatch.amazonaws.com"

// alarmActionKeys are the properties whose targets CloudWatch notifies.
var alarmActionKeys = []string{"AlarmActions", "OKActions", "InsufficientDataActions"}

// alarmLocals answer references the way AWS does for the resources these
// checks look at: a topic's Ref is its ARN, a key's Ref its id.
func alarmLocals(t *Template) Locals {
	l := Locals{Refs: map[string]string{}, Attrs: map[string]string{}}
	for id, r := range t.Resources {
		switch r.Type {
		case "AWS::SNS::Topic":
			l.Refs[id] = "arn:aws:sns:" + localRegion + ":123456789012:flagline-local-" + id
			l.Attrs[id+".TopicArn"] = l.Refs[id]
			l.Attrs[id+".TopicName"] = "flagline-local-" + id
		case "AWS::KMS::Key":
			l.Refs[id] = "key-" + id
			l.Attrs[id+".Arn"] = "arn:aws:kms:" + localRegion + ":123456789012:key/key-" + id
			l.Attrs[id+".KeyId"] = "key-" + id
		default:
			l.Refs[id] = id
		}
	}
	return l
}

// alarmARN is the ARN CloudWatch gives an alarm CloudFormation names.
func alarmARN(alarmID string) string {
	return "arn:aws:cloudwatch:" + localRegion + ":123456789012:alarm:flagline-local-" + alarmID + "-1A2B3C4D5E6F"
}

// checkAlarmDelivery returns, for every alarm of the template, why
// CloudWatch could not deliver its notifications (nil when it can).
func checkAlarmDelivery(t *Template) error {
	var errs []error
	alarms := t.ResourcesOfType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		return errors.New("the template has no alarms")
	}
	for _, id := range alarms {
		props := child(t.root, "Resources", id, "Properties")
		targets := 0
		for _, key := range alarmActionKeys {
			n := child(props, key)
			if n == nil {
				continue
			}
			seq, ok := n.(*ast.SequenceNode)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s is not a list", id, key))
				continue
			}
			for _, action := range seq.Values {
				targets++
				if err := checkPublishable(t, id, action); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w", id, key, err))
				}
			}
		}
		if child(props, "AlarmActions") == nil {
			errs = append(errs, fmt.Errorf("%s: no AlarmActions: nobody hears it fire", id))
		} else if targets == 0 {
			errs = append(errs, fmt.Errorf("%s: AlarmActions is empty: nobody hears it fire", id))
		}
	}
	return errors.Join(errs...)
}

// checkPublishable says why CloudWatch could not publish alarm alarmID's
// notification to action, or nil.
func checkPublishable(t *Template, alarmID string, action ast.Node) error {
	topicID, ok := refTo(t, action, "AWS::SNS::Topic", "TopicArn")
	if !ok {
		return fmt.Errorf("action %s is not a topic of this template: who may publish to it cannot be checked", describe(action))
	}
	l := alarmLocals(t)
	req := request{
		principal: cloudWatchPrincipal,
		context: map[string]string{
			"aws:sourcearn":     alarmARN(alarmID),
			"aws:sourceaccount": "123456789012",
			// SNS asks KMS for a data key in the topic's encryption context.
			"kms:encryptioncontext:aws:sns:topicarn": l.Refs[topicID],
		},
	}
	var errs []error
	if err := checkTopicKey(t, topicID, req); err != nil {
		errs = append(errs, fmt.Errorf("topic %s: %w", topicID, err))
	}
	if err := checkTopicPolicy(t, topicID, req); err != nil {
		errs = append(errs, fmt.Errorf("topic %s: %w", topicID, err))
	}
	return errors.Join(errs...)
}

// refTo returns the logical id n refers to (!Ref id, or !GetAtt id.attr)
// when that resource has type typ.
func refTo(t *Template, n ast.Node, typ string, attrs ...string) (string, bool) {
	fn, arg, ok := intrinsic(n)
	if !ok {
		return "", false
	}
	var id string
	switch fn {
	case "Ref":
		id, _ = scalar(arg)
	case "GetAtt":
		var attr string
		if s, isScalar := scalar(arg); isScalar {
			id, attr, _ = strings.Cut(s, ".")
		} else if seq, isSeq := arg.(*ast.SequenceNode); isSeq && len(seq.Values) == 2 {
			id, _ = scalar(seq.Values[0])
			attr, _ = scalar(seq.Values[1])
		}
		if !slices.Contains(attrs, attr) {
			return "", false
		}
	default:
		return "", false
	}
	r, exists := t.Resources[id]
	return id, exists && r.Type == typ
}

func checkTopicKey(t *Template, topicID string, req request) error {
	keyNode := child(t.root, "Resources", topicID, "Properties", "KmsMasterKeyId")
	if keyNode == nil {
		return nil // not encrypted
	}
	keyID, ok := refTo(t, keyNode, "AWS::KMS::Key", "Arn", "KeyId")
	if !ok {
		if aliasID, isAlias := refTo(t, keyNode, "AWS::KMS::Alias"); isAlias {
			target := child(t.root, "Resources", aliasID, "Properties", "TargetKeyId")
			keyID, ok = refTo(t, target, "AWS::KMS::Key", "Arn", "KeyId")
		}
	}
	if !ok {
		if s, isScalar := scalar(keyNode); isScalar && strings.HasPrefix(s, "alias/aws/") {
			return fmt.Errorf("encrypted with the AWS managed key %s, whose policy cannot admit CloudWatch: every alarm notification would be dropped", s)
		}
		return fmt.Errorf("encrypted with %s, not a customer managed key of this template: its key policy cannot be checked", describe(keyNode))
	}
	policy, err := resolve(t, child(t.root, "Resources", keyID, "Properties", "KeyPolicy"))
	if err != nil {
		return fmt.Errorf("key %s: KeyPolicy: %w", keyID, err)
	}
	var errs []error
	for _, action := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
		r := req
		r.action, r.resource = action, "*"
		if err := allows(policy, r); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", keyID, err))
		}
	}
	return errors.Join(errs...)
}

func checkTopicPolicy(t *Template, topicID string, req request) error {
	var policies []string
	for _, id := range t.ResourcesOfType("AWS::SNS::TopicPolicy") {
		topics, _ := child(t.root, "Resources", id, "Properties", "Topics").(*ast.SequenceNode)
		if topics == nil {
			continue
		}
		for _, n := range topics.Values {
			if ref, ok := refTo(t, n, "AWS::SNS::Topic", "TopicArn"); ok && ref == topicID {
				policies = append(policies, id)
			}
		}
	}
	switch len(policies) {
	case 0:
		return nil // the default policy admits the owner account's alarms
	case 1:
	default:
		return fmt.Errorf("topic policies %v all set its policy; only one of them applies", policies)
	}
	policy, err := resolve(t, child(t.root, "Resources", policies[0], "Properties", "PolicyDocument"))
	if err != nil {
		return fmt.Errorf("%s: PolicyDocument: %w", policies[0], err)
	}
	req.action, req.resource = "sns:Publish", alarmLocals(t).Refs[topicID]
	if err := allows(policy, req); err != nil {
		return fmt.Errorf("%s: %w", policies[0], err)
	}
	return nil
}

// resolve turns a template value into plain Go values (maps, lists,
// strings) with its intrinsic functions evaluated.
func resolve(t *Template, n ast.Node) (any, error) {
	if n == nil {
		return nil, errors.New("missing")
	}
	if _, _, isFn := intrinsic(n); !isFn {
		if entries, ok := mapping(n); ok {
			m := make(map[string]any, len(entries))
			for _, e := range entries {
				v, err := resolve(t, e.Value)
				if err != nil {
					return nil, err
				}
				m[keyOf(e)] = v
			}
			return m, nil
		}
		if seq, ok := n.(*ast.SequenceNode); ok {
			out := make([]any, 0, len(seq.Values))
			for _, item := range seq.Values {
				v, err := resolve(t, item)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		}
	}
	ev := &evaluator{t: t, l: alarmLocals(t)}
	v, err := ev.eval(n)
	if l, isList := v.([]string); isList {
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, err
	}
	return v, err
}

// request is one call a service principal makes, as a policy sees it.
type request struct {
	principal, action, resource string
	context                     map[string]string // lower-case condition keys
}

// allows says why policy (a resolved policy document) does not let req
// through: no Allow statement matches, or a Deny statement does. Anything
// it cannot evaluate (NotPrincipal, NotAction, an unknown condition) counts
// against the request, so a policy this check cannot read never passes.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
func allows(policy any, req request) error {
	doc, _ := policy.(map[string]any)
	var statements []any
	switch s := doc["Statement"].(type) {
	case []any:
		statements = s
	case map[string]any:
		statements = []any{s}
	}
	allowed := false
	var why []string
	for i, raw := range statements {
		st, _ := raw.(map[string]any)
		effect, _ := st["Effect"].(string)
		for _, k := range []string{"NotPrincipal", "NotAction", "NotResource"} {
			if _, has := st[k]; has {
				return fmt.Errorf("statement %d uses %s, which this check cannot evaluate", i, k)
			}
		}
		matches := principalMatches(st["Principal"], req.principal) &&
			anyMatches(st["Action"], req.action, true) &&
			anyMatches(st["Resource"], req.resource, false)
		if !matches {
			continue
		}
		ok, readable, reason := conditionsHold(st["Condition"], req.context)
		switch {
		case effect == "Deny" && (ok || !readable):
			return fmt.Errorf("statement %d denies %s %s", i, req.principal, req.action)
		case effect == "Allow" && ok:
			allowed = true
		case effect == "Allow":
			why = append(why, fmt.Sprintf("statement %d: %s", i, reason))
		}
	}
	if !allowed {
		return fmt.Errorf("no statement allows %s %s on %s (%s)", req.principal, req.action, req.resource, strings.Join(why, "; "))
	}
	return nil
}

func principalMatches(p any, service string) bool {
	switch p := p.(type) {
	case string:
		return p == "*"
	case map[string]any:
		if aws, ok := p["AWS"].(string); ok && aws == "*" {
			return true
		}
		return slices.Contains(strs(p["Service"]), service)
	}
	return false
}

// anyMatches says whether one of the patterns (IAM wildcards * and ?)
// matches s; actions compare case-insensitively.
func anyMatches(patterns any, s string, fold bool) bool {
	for _, p := range strs(patterns) {
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

func wildcard(pattern, s string) bool {
	// path.Match treats / and [ specially; IAM does not.
	escaped := strings.NewReplacer("\\", "\\\\", "[", "\\[", "]", "\\]").Replace(pattern)
	ok, err := path.Match(strings.ReplaceAll(escaped, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}

// conditionsHold evaluates a statement's Condition block against the
// request context. readable is false when the check cannot evaluate it;
// reason says why it does not hold.
func conditionsHold(cond any, ctx map[string]string) (ok, readable bool, reason string) {
	if cond == nil {
		return true, true, ""
	}
	ops, isMap := cond.(map[string]any)
	if !isMap {
		return false, false, "Condition is not a mapping"
	}
	for op, raw := range ops {
		keys, _ := raw.(map[string]any)
		for key, want := range keys {
			got, known := ctx[strings.ToLower(key)]
			if !known {
				return false, false, fmt.Sprintf("condition key %s is not one CloudWatch's request carries", key)
			}
			var match func(p, s string) bool
			switch op {
			case "StringEquals", "ArnEquals":
				match = func(p, s string) bool { return p == s }
			case "StringLike", "ArnLike":
				match = wildcard
			default:
				return false, false, fmt.Sprintf("condition operator %s is not evaluated by this check", op)
			}
			if !slices.ContainsFunc(strs(want), func(p string) bool { return match(p, got) }) {
				return false, true, fmt.Sprintf("%s %s %v does not match %s", op, key, want, got)
			}
		}
	}
	return true, true, ""
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// alarmDoc is the part of an alarm checkAlarmSet reads.
type alarmDoc struct {
	id, namespace, metric, missing string
	dims                           map[string]ast.Node
}

func alarmDocs(t *Template) []alarmDoc {
	var out []alarmDoc
	for _, id := range t.ResourcesOfType("AWS::CloudWatch::Alarm") {
		props := child(t.root, "Resources", id, "Properties")
		text := func(key string) string {
			s, _ := scalar(child(props, key))
			return s
		}
		a := alarmDoc{id: id, namespace: text("Namespace"), metric: text("MetricName"), missing: text("TreatMissingData"), dims: map[string]ast.Node{}}
		if a.missing == "" {
			a.missing = "missing" // CloudWatch's default
		}
		if seq, ok := child(props, "Dimensions").(*ast.SequenceNode); ok {
			for _, d := range seq.Values {
				name, _ := scalar(child(d, "Name"))
				a.dims[name] = child(d, "Value")
			}
		}
		out = append(out, a)
	}
	return out
}

// find returns the alarms on namespace/metric whose dimensions match.
func find(alarms []alarmDoc, namespace, metric string, dims func(map[string]ast.Node) bool) []alarmDoc {
	var out []alarmDoc
	for _, a := range alarms {
		if a.namespace == namespace && a.metric == metric && dims(a.dims) {
			out = append(out, a)
		}
	}
	return out
}

func refersTo(t *Template, n ast.Node, id, typ string, attrs ...string) bool {
	got, ok := refTo(t, n, typ, attrs...)
	return ok && got == id
}

// checkAlarmSet says which alarms the template lacks: every function has
// Errors and Throttles alarms; every stream reader has IteratorAge,
// stall and DestinationDeliveryFailures alarms; every HTTP API has a 5xx
// alarm; every topic that is not an alarm target has a delivery failure
// alarm; every queue has a depth alarm; and SMS spend is watched.
func checkAlarmSet(t *Template) error {
	alarms := alarmDocs(t)
	var errs []error
	need := func(what string, found []alarmDoc) []alarmDoc {
		if len(found) == 0 {
			errs = append(errs, fmt.Errorf("no alarm on %s", what))
		}
		return found
	}
	for _, fn := range t.Functions() {
		byFunction := func(d map[string]ast.Node) bool {
			return refersTo(t, d["FunctionName"], fn, "AWS::Serverless::Function")
		}
		need(fn+" Errors", find(alarms, "AWS/Lambda", "Errors", byFunction))
		need(fn+" Throttles", find(alarms, "AWS/Lambda", "Throttles", byFunction))
		spec, err := t.Function(fn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, event := range slices.Sorted(maps.Keys(spec.Events)) {
			if spec.Events[event].Type != "DynamoDB" && spec.Events[event].Type != "Kinesis" {
				continue
			}
			need(fn+" IteratorAge", find(alarms, "AWS/Lambda", "IteratorAge", byFunction))
			need(fn+" DestinationDeliveryFailures", find(alarms, "AWS/Lambda", "DestinationDeliveryFailures", byFunction))
			// SAM names the event source mapping <function><event>; its
			// Ref is the mapping's UUID.
			mapping := fn + event
			stalls := need(fn+" stall (PolledEventCount of "+mapping+")", find(alarms, "AWS/Lambda", "PolledEventCount", func(d map[string]ast.Node) bool {
				return refName(d["EventSourceMappingUUID"]) == mapping
			}))
			for _, a := range stalls {
				// A stalled mapping emits nothing: only missing data
				// treated as breaching makes the alarm fire.
				if a.missing != "breaching" {
					errs = append(errs, fmt.Errorf("%s: TreatMissingData %s reads a stalled mapping (no datapoints) as healthy; want breaching", a.id, a.missing))
				}
			}
			metrics, _ := resolve(t, child(t.root, "Resources", fn, "Properties", "Events", event, "Properties", "MetricsConfig", "Metrics"))
			if len(stalls) > 0 && !slices.Contains(strs(metrics), "EventCount") {
				errs = append(errs, fmt.Errorf("%s event %s: without MetricsConfig Metrics [EventCount] Lambda emits no PolledEventCount, and the stall alarm fires for ever", fn, event))
			}
		}
	}
	for _, api := range t.ResourcesOfType("AWS::Serverless::HttpApi") {
		need(api+" 5xx", find(alarms, "AWS/ApiGateway", "5xx", func(d map[string]ast.Node) bool {
			stage, _ := scalar(d["Stage"])
			return refersTo(t, d["ApiId"], api, "AWS::Serverless::HttpApi") && stage == "$default"
		}))
	}
	targets := map[string]bool{}
	for _, id := range t.ResourcesOfType("AWS::CloudWatch::Alarm") {
		for _, key := range alarmActionKeys {
			if seq, ok := child(t.root, "Resources", id, "Properties", key).(*ast.SequenceNode); ok {
				for _, n := range seq.Values {
					if topic, isTopic := refTo(t, n, "AWS::SNS::Topic", "TopicArn"); isTopic {
						targets[topic] = true
					}
				}
			}
		}
	}
	for _, topic := range t.ResourcesOfType("AWS::SNS::Topic") {
		if targets[topic] {
			continue
		}
		need(topic+" NumberOfNotificationsFailed", find(alarms, "AWS/SNS", "NumberOfNotificationsFailed", func(d map[string]ast.Node) bool {
			return refersTo(t, d["TopicName"], topic, "AWS::SNS::Topic", "TopicName")
		}))
	}
	for _, queue := range t.ResourcesOfType("AWS::SQS::Queue") {
		need(queue+" depth", find(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", func(d map[string]ast.Node) bool {
			return refersTo(t, d["QueueName"], queue, "AWS::SQS::Queue", "QueueName")
		}))
	}
	// SMSMonthToDateSpentUSD has no dimensions.
	// https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html
	for _, a := range need("SMSMonthToDateSpentUSD", find(alarms, "AWS/SNS", "SMSMonthToDateSpentUSD", func(d map[string]ast.Node) bool { return len(d) == 0 })) {
		if _, isParam := t.Parameters[refName(child(t.root, "Resources", a.id, "Properties", "Threshold"))]; !isParam {
			errs = append(errs, fmt.Errorf("%s: Threshold should be a template parameter, set below the account's SMS spend limit", a.id))
		}
	}
	return errors.Join(errs...)
}

// refName is the name a !Ref names (a resource SAM generates is not in
// Resources), or "".
func refName(n ast.Node) string {
	if fn, arg, ok := intrinsic(n); ok && fn == "Ref" {
		name, _ := scalar(arg)
		return name
	}
	return ""
}

func TestProjectAlarmsReachOperators(t *testing.T) {
	if err := checkAlarmDelivery(loadProject(t)); err != nil {
		t.Error(err)
	}
}

// The same template with the operators topic encrypted under the AWS
// managed key deploys, and drops every alarm: the check must refuse it.
func TestProjectAlarmsWithManagedKeyFail(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const display = "      DisplayName: Flagline operators\n"
	if !strings.Contains(string(src), display) {
		t.Fatalf("template.yaml: OperatorsTopic has no %q line to add a key after", strings.TrimSpace(display))
	}
	broken := strings.Replace(string(src), display, display+"      KmsMasterKeyId: alias/aws/sns\n", 1)
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	err = checkAlarmDelivery(tpl)
	if err == nil || !strings.Contains(err.Error(), "AWS managed key alias/aws/sns") {
		t.Fatalf("check passed a template whose operators topic uses alias/aws/sns: %v", err)
	}
}

func TestProjectAlarmSet(t *testing.T) {
	if err := checkAlarmSet(loadProject(t)); err != nil {
		t.Error(err)
	}
}

// loadInline loads a template written in a test.
func loadInline(t *testing.T, text string) *Template {
	t.Helper()
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

const alarmOnOps = `
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      AlarmActions: [!Ref Ops]
`

// cloudWatchKeyStatement is the key policy statement AWS documents for a
// service publishing to an encrypted topic, scoped to this account's alarms.
const cloudWatchKeyStatement = `
          - Effect: Allow
            Principal:
              Service: cloudwatch.amazonaws.com
            Action: [kms:GenerateDataKey*, kms:Decrypt]
            Resource: "*"
            Condition:
              ArnLike:
                aws:SourceArn: !Sub arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*
              StringEquals:
                aws:SourceAccount: !Ref AWS::AccountId
`

const keyAdmin = `
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              AWS: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root
            Action: kms:*
            Resource: "*"
`

func TestAlarmDelivery(t *testing.T) {
	for _, tc := range []struct {
		name, resources string
		wantErr         string // "" when CloudWatch can deliver
	}{
		{
			name:      "unencrypted topic, default policy",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n" + alarmOnOps,
		},
		{
			name:      "AWS managed key",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: alias/aws/sns\n" + alarmOnOps,
			wantErr:   "AWS managed key alias/aws/sns",
		},
		{
			name:      "key outside the template",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: arn:aws:kms:eu-west-1:123456789012:key/abc\n" + alarmOnOps,
			wantErr:   "not a customer managed key of this template",
		},
		{
			name:      "customer managed key that admits CloudWatch",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin + cloudWatchKeyStatement + alarmOnOps,
		},
		{
			name: "customer managed key through an alias of the template",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref OpsAlias\n" +
				"  OpsAlias:\n    Type: AWS::KMS::Alias\n    Properties:\n      AliasName: alias/ops\n      TargetKeyId: !Ref Key\n" +
				keyAdmin + cloudWatchKeyStatement + alarmOnOps,
		},
		{
			name:      "customer managed key only the account may use",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !GetAtt Key.Arn\n" + keyAdmin + alarmOnOps,
			wantErr:   "no statement allows cloudwatch.amazonaws.com kms:GenerateDataKey",
		},
		{
			name: "customer managed key without kms:Decrypt for CloudWatch",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin +
				strings.Replace(cloudWatchKeyStatement, "[kms:GenerateDataKey*, kms:Decrypt]", "kms:GenerateDataKey*", 1) + alarmOnOps,
			wantErr: "no statement allows cloudwatch.amazonaws.com kms:Decrypt",
		},
		{
			name: "customer managed key scoped to another service's resources",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin +
				strings.Replace(cloudWatchKeyStatement, ":alarm:*", ":dashboard/*", 1) + alarmOnOps,
			wantErr: "ArnLike aws:SourceArn",
		},
		{
			name: "customer managed key granting sns.amazonaws.com, not CloudWatch",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin +
				strings.Replace(cloudWatchKeyStatement, "Service: cloudwatch.amazonaws.com", "Service: sns.amazonaws.com", 1) + alarmOnOps,
			wantErr: "no statement allows cloudwatch.amazonaws.com",
		},
		{
			name: "customer managed key with a Deny for CloudWatch",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin + cloudWatchKeyStatement +
				"          - Effect: Deny\n            Principal: \"*\"\n            Action: kms:Decrypt\n            Resource: \"*\"\n" + alarmOnOps,
			wantErr: "denies cloudwatch.amazonaws.com kms:Decrypt",
		},
		{
			name: "customer managed key with a Deny for other accounts only",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n" + keyAdmin + cloudWatchKeyStatement +
				"          - Effect: Deny\n            Principal: \"*\"\n            Action: kms:*\n            Resource: \"*\"\n" +
				"            Condition:\n              StringEquals:\n                aws:SourceAccount: \"999999999999\"\n" + alarmOnOps,
		},
		{
			name: "topic policy that admits the account's alarms",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n" + alarmOnOps + `
  OpsPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Ops]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: cloudwatch.amazonaws.com}
            Action: sns:Publish
            Resource: !Ref Ops
            Condition:
              ArnLike:
                aws:SourceArn: !Sub arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*
`,
		},
		{
			name: "topic policy that replaces the default and forgets CloudWatch",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n" + alarmOnOps + `
  OpsPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Ops]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: events.amazonaws.com}
            Action: sns:Publish
            Resource: !Ref Ops
`,
			wantErr: "OpsPolicy: no statement allows cloudwatch.amazonaws.com sns:Publish",
		},
		{
			name:      "alarm without actions",
			resources: "  Alarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      Namespace: AWS/Lambda\n      MetricName: Errors\n",
			wantErr:   "no AlarmActions",
		},
		{
			name:      "action that is not a topic of the template",
			resources: "  Alarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: [arn:aws:sns:eu-west-1:123456789012:elsewhere]\n",
			wantErr:   "is not a topic of this template",
		},
		{
			name:      "OK action to an undeliverable topic",
			resources: "  Ops:\n    Type: AWS::SNS::Topic\n  Managed:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: alias/aws/sns\n" + alarmOnOps + "      OKActions: [!Ref Managed]\n",
			wantErr:   "OKActions: topic Managed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAlarmDelivery(loadInline(t, "Resources:\n"+tc.resources))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("CloudWatch can publish here, but the check says: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("CloudWatch cannot publish here (%s), but the check passed", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}
}

// A stream function with every alarm it needs; cases below remove or
// break one at a time.
const streamFunctionWithAlarms = `Parameters:
  SpendAlarm:
    Type: Number
    Default: 1
Resources:
  Ops:
    Type: AWS::SNS::Topic
  ReadFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            MetricsConfig:
              Metrics: [EventCount]
  ReadErrors:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/Lambda, MetricName: Errors, Dimensions: [{Name: FunctionName, Value: !Ref ReadFunction}], AlarmActions: [!Ref Ops]}
  ReadThrottles:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/Lambda, MetricName: Throttles, Dimensions: [{Name: FunctionName, Value: !Ref ReadFunction}], AlarmActions: [!Ref Ops]}
  ReadAge:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/Lambda, MetricName: IteratorAge, Dimensions: [{Name: FunctionName, Value: !Ref ReadFunction}], AlarmActions: [!Ref Ops]}
  ReadDestination:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/Lambda, MetricName: DestinationDeliveryFailures, Dimensions: [{Name: FunctionName, Value: !Ref ReadFunction}], AlarmActions: [!Ref Ops]}
  ReadStalled:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/Lambda, MetricName: PolledEventCount, Dimensions: [{Name: EventSourceMappingUUID, Value: !Ref ReadFunctionChanges}], TreatMissingData: breaching, AlarmActions: [!Ref Ops]}
  Spend:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/SNS, MetricName: SMSMonthToDateSpentUSD, Threshold: !Ref SpendAlarm, AlarmActions: [!Ref Ops]}
`

func TestAlarmSet(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		wantErr        string
	}{
		{name: "complete"},
		{name: "no Throttles alarm", old: "MetricName: Throttles", new: "MetricName: Duration", wantErr: "no alarm on ReadFunction Throttles"},
		{name: "no Errors alarm", old: "MetricName: Errors", new: "MetricName: Duration", wantErr: "no alarm on ReadFunction Errors"},
		{name: "no IteratorAge alarm", old: "MetricName: IteratorAge", new: "MetricName: Duration", wantErr: "no alarm on ReadFunction IteratorAge"},
		{name: "no DestinationDeliveryFailures alarm", old: "MetricName: DestinationDeliveryFailures", new: "MetricName: Duration", wantErr: "no alarm on ReadFunction DestinationDeliveryFailures"},
		{name: "stall alarm on another mapping", old: "!Ref ReadFunctionChanges", new: "!Ref ReadFunctionOther", wantErr: "no alarm on ReadFunction stall"},
		{name: "stall alarm reading silence as healthy", old: "TreatMissingData: breaching", new: "TreatMissingData: notBreaching", wantErr: "reads a stalled mapping (no datapoints) as healthy"},
		{name: "stall alarm without the mapping's metrics", old: "Metrics: [EventCount]", new: "Metrics: []", wantErr: "without MetricsConfig Metrics [EventCount]"},
		{name: "SMS spend alarm with a fixed threshold", old: "Threshold: !Ref SpendAlarm", new: "Threshold: 1", wantErr: "Threshold should be a template parameter"},
		{name: "no SMS spend alarm", old: "MetricName: SMSMonthToDateSpentUSD", new: "MetricName: SMSSuccessRate", wantErr: "no alarm on SMSMonthToDateSpentUSD"},
		{
			name: "alerts topic without a delivery failure alarm",
			old:  "  Ops:\n", new: "  Alerts:\n    Type: AWS::SNS::Topic\n  Ops:\n",
			wantErr: "no alarm on Alerts NumberOfNotificationsFailed",
		},
		{
			name: "queue without a depth alarm",
			old:  "  Ops:\n", new: "  Parked:\n    Type: AWS::SQS::Queue\n  Ops:\n",
			wantErr: "no alarm on Parked depth",
		},
		{
			name: "HTTP API without a 5xx alarm",
			old:  "  Ops:\n", new: "  Api:\n    Type: AWS::Serverless::HttpApi\n  Ops:\n",
			wantErr: "no alarm on Api 5xx",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := streamFunctionWithAlarms
			if tc.old != "" {
				if !strings.Contains(text, tc.old) {
					t.Fatalf("the test template has no %q", tc.old)
				}
				text = strings.Replace(text, tc.old, tc.new, 1)
			}
			err := checkAlarmSet(loadInline(t, text))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("the alarm set is complete, but the check says: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("the alarm set lacks something (%s), but the check passed", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}
}
