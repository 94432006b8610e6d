package samtemplate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml/ast"
)

// FunctionDir is the directory under functions/ of a function's logical id:
// IngestFunction → ingest.
func FunctionDir(logicalID string) string {
	return strings.ToLower(strings.TrimSuffix(logicalID, "Function"))
}

// Locals say what the template's references stand for locally.
type Locals struct {
	// Refs maps a resource's logical id to what !Ref gives: a table's name,
	// a topic's ARN, a queue's URL.
	Refs map[string]string
	// Attrs maps "LogicalId.Attribute" to what !GetAtt gives.
	Attrs map[string]string
	// Params are parameter values; a parameter not here takes its Default.
	Params map[string]string
	// Region, AccountID and StackName answer the pseudo parameters; empty
	// means localRegion, moto's account 123456789012 and
	// "flagline-local".
	Region, AccountID, StackName string
}

// ErrNoStandIn: a reference names a resource that has no local stand-in
// (nothing in Locals).
var ErrNoStandIn = errors.New("no local stand-in")

// Environment is the environment the template declares for a function
// (Globals merged with the function's own, the function's winning), with
// every intrinsic function evaluated against l. A reference that l cannot
// answer is an error rather than the logical id passed through.
func (t *Template) Environment(logicalID string, l Locals) (map[string]string, error) {
	vars, err := t.envNodes(logicalID)
	if err != nil {
		return nil, err
	}
	ev := &evaluator{t: t, l: l}
	env := make(map[string]string, len(vars))
	for name, n := range vars {
		v, err := ev.str(n)
		if err != nil {
			return nil, fmt.Errorf("%s: environment variable %s: %w", logicalID, name, err)
		}
		env[name] = v
	}
	return env, nil
}

// EnvironmentReferences lists, sorted, the logical ids of the resources a
// function's declared environment refers to (!Ref, !GetAtt, !Sub): what
// must exist locally before the function can run.
func (t *Template) EnvironmentReferences(logicalID string) ([]string, error) {
	vars, err := t.envNodes(logicalID)
	if err != nil {
		return nil, err
	}
	ev := &evaluator{t: t, collect: map[string]bool{}}
	for name, n := range vars {
		if _, err := ev.eval(n); err != nil {
			return nil, fmt.Errorf("%s: environment variable %s: %w", logicalID, name, err)
		}
	}
	out := make([]string, 0, len(ev.collect))
	for id := range ev.collect {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// RuntimeEnvironment is what Lambda itself sets for a function, as far as
// the template decides it: AWS_LAMBDA_FUNCTION_NAME (the logical id
// locally), _MEMORY_SIZE, _TIMEOUT (the emulator enforces it), _VERSION,
// the log group and, with LoggingConfig LogFormat JSON,
// AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL, and _HANDLER.
func (t *Template) RuntimeEnvironment(logicalID string, l Locals) (map[string]string, error) {
	if _, err := t.function(logicalID); err != nil {
		return nil, err
	}
	ev := &evaluator{t: t, l: l}
	prop := func(def string, keys ...string) (string, error) {
		n := t.functionProperty(logicalID, keys...)
		if n == nil {
			return def, nil
		}
		v, err := ev.str(n)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", logicalID, strings.Join(keys, "."), err)
		}
		return v, nil
	}
	env := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":    logicalID,
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":   "/aws/lambda/" + logicalID,
		"AWS_LAMBDA_LOG_STREAM_NAME":  "local/[$LATEST]runtimetest",
	}
	var errs []error
	for _, p := range []struct{ env, key, def string }{
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "MemorySize", "128"},
		{"AWS_LAMBDA_FUNCTION_TIMEOUT", "Timeout", "3"},
		{"_HANDLER", "Handler", ""},
	} {
		v, err := prop(p.def, p.key)
		errs = append(errs, err)
		if v != "" {
			env[p.env] = v
		}
	}
	format, err := prop("Text", "LoggingConfig", "LogFormat")
	errs = append(errs, err)
	if format == "JSON" {
		level, err := prop("INFO", "LoggingConfig", "ApplicationLogLevel")
		errs = append(errs, err)
		env["AWS_LAMBDA_LOG_FORMAT"], env["AWS_LAMBDA_LOG_LEVEL"] = format, level
	}
	return env, errors.Join(errs...)
}

func (t *Template) function(logicalID string) (ast.Node, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != "AWS::Serverless::Function" {
		return nil, fmt.Errorf("template has no function %s", logicalID)
	}
	return child(t.root, "Resources", logicalID), nil
}

// functionProperty is Properties.<keys> of the function, else
// Globals.Function.<keys>, else nil.
func (t *Template) functionProperty(logicalID string, keys ...string) ast.Node {
	if n := child(t.root, append([]string{"Resources", logicalID, "Properties"}, keys...)...); n != nil {
		return n
	}
	return child(t.root, append([]string{"Globals", "Function"}, keys...)...)
}

func (t *Template) envNodes(logicalID string) (map[string]ast.Node, error) {
	if _, err := t.function(logicalID); err != nil {
		return nil, err
	}
	vars := map[string]ast.Node{}
	for _, base := range [][]string{{"Globals", "Function"}, {"Resources", logicalID, "Properties"}} {
		n := child(t.root, append(base, "Environment", "Variables")...)
		if _, null := n.(*ast.NullNode); n == nil || null {
			continue
		}
		entries, ok := mapping(n)
		if !ok {
			return nil, fmt.Errorf("%s: Environment.Variables is not a mapping", strings.Join(base, "."))
		}
		for _, e := range entries {
			vars[keyOf(e)] = e.Value
		}
	}
	return vars, nil
}

// parameter returns a parameter's type and value (Locals first, then its
// Default).
func (t *Template) parameter(name string, l Locals) (typ, value string, ok bool, err error) {
	p := child(t.root, "Parameters", name)
	if p == nil {
		return "", "", false, nil
	}
	if n := child(p, "Type"); n != nil {
		typ, _ = scalar(n)
	}
	if v, set := l.Params[name]; set {
		return typ, v, true, nil
	}
	def, set := t.ParameterDefault(name)
	if !set {
		return typ, "", true, fmt.Errorf("parameter %s has no Default and no local value", name)
	}
	return typ, def, true, nil
}

// evaluator evaluates a value of the template: a scalar, or an intrinsic
// function in tag (!Join) or mapping (Fn::Join:) form. Values are a string
// or, for list-valued functions and parameters, a []string.
type evaluator struct {
	t *Template
	l Locals
	// collect, when set, records referenced resources instead of
	// resolving them.
	collect map[string]bool
}

func (e *evaluator) str(n ast.Node) (string, error) {
	v, err := e.eval(n)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s gives a list %q, not a string", describe(n), v)
	}
	return s, nil
}

func (e *evaluator) list(n ast.Node) ([]string, error) {
	if seq, ok := n.(*ast.SequenceNode); ok {
		out := make([]string, 0, len(seq.Values))
		for _, item := range seq.Values {
			s, err := e.str(item)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	v, err := e.eval(n)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]string)
	if !ok {
		return nil, fmt.Errorf("%s gives a string, not a list", describe(n))
	}
	return l, nil
}

func (e *evaluator) eval(n ast.Node) (any, error) {
	if fn, arg, ok := intrinsic(n); ok {
		return e.call(fn, arg)
	}
	if s, ok := scalar(n); ok {
		return s, nil
	}
	if _, ok := n.(*ast.SequenceNode); ok {
		return e.list(n)
	}
	return nil, fmt.Errorf("cannot evaluate %s", describe(n))
}

func (e *evaluator) call(fn string, arg ast.Node) (any, error) {
	args := func(want int) ([]ast.Node, error) {
		seq, ok := arg.(*ast.SequenceNode)
		if !ok || len(seq.Values) != want {
			return nil, fmt.Errorf("%s wants a list of %d arguments", fn, want)
		}
		return seq.Values, nil
	}
	switch fn {
	case "Ref":
		name, ok := scalar(arg)
		if !ok {
			return nil, errors.New("Ref wants a name")
		}
		return e.ref(name)
	case "GetAtt":
		var id, attr string
		if s, ok := scalar(arg); ok {
			id, attr, _ = strings.Cut(s, ".")
		} else if a, err := args(2); err == nil {
			id, _ = scalar(a[0])
			attr, _ = scalar(a[1])
		}
		if id == "" || attr == "" {
			return nil, errors.New("GetAtt wants LogicalId.Attribute")
		}
		return e.getAtt(id, attr)
	case "Join":
		a, err := args(2)
		if err != nil {
			return nil, err
		}
		sep, ok := scalar(a[0])
		if !ok {
			return nil, errors.New("Join wants a delimiter string")
		}
		items, err := e.list(a[1])
		if err != nil {
			return nil, fmt.Errorf("Join: %w", err)
		}
		return strings.Join(items, sep), nil
	case "Split":
		a, err := args(2)
		if err != nil {
			return nil, err
		}
		sep, ok := scalar(a[0])
		if !ok || sep == "" {
			return nil, errors.New("Split wants a delimiter string")
		}
		s, err := e.str(a[1])
		if err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		return strings.Split(s, sep), nil
	case "Select":
		a, err := args(2)
		if err != nil {
			return nil, err
		}
		is, err := e.str(a[0])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(is)
		if err != nil {
			return nil, fmt.Errorf("Select index %q: %w", is, err)
		}
		items, err := e.list(a[1])
		if err != nil {
			return nil, fmt.Errorf("Select: %w", err)
		}
		if i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Select index %d out of a list of %d", i, len(items))
		}
		return items[i], nil
	case "Sub":
		text, ok := scalar(arg)
		vars := map[string]ast.Node{}
		if !ok {
			a, err := args(2)
			if err != nil {
				return nil, errors.New("Sub wants a string, or a string and a mapping")
			}
			if text, ok = scalar(a[0]); !ok {
				return nil, errors.New("Sub wants a string")
			}
			entries, ok := mapping(a[1])
			if !ok {
				return nil, errors.New("Sub wants a mapping of variables")
			}
			for _, en := range entries {
				vars[keyOf(en)] = en.Value
			}
		}
		return e.sub(text, vars)
	case "If":
		// Fn::If [condition, value if true, value if false]: the condition
		// is a name under Conditions.
		// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-conditions.html#intrinsic-function-reference-conditions-if
		a, err := args(3)
		if err != nil {
			return nil, err
		}
		name, ok := scalar(a[0])
		if !ok {
			return nil, errors.New("If wants a condition name")
		}
		holds, err := e.condition(name, 0)
		if err != nil {
			return nil, err
		}
		if holds {
			return e.eval(a[1])
		}
		return e.eval(a[2])
	}
	return nil, fmt.Errorf("intrinsic function %s is not supported locally", fn)
}

// condition evaluates the template's Conditions entry name.
func (e *evaluator) condition(name string, depth int) (bool, error) {
	n := child(e.t.root, "Conditions", name)
	if n == nil {
		return false, fmt.Errorf("the template has no condition %s", name)
	}
	if depth > 16 {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	return e.cond(n, depth)
}

// cond evaluates a condition function: Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, or Condition naming another one (same page as Fn::If).
func (e *evaluator) cond(n ast.Node, depth int) (bool, error) {
	fn, arg, ok := intrinsic(n)
	if !ok {
		if entries, isMap := mapping(n); isMap && len(entries) == 1 && keyOf(entries[0]) == "Condition" {
			fn, arg, ok = "Condition", entries[0].Value, true
		}
	}
	if !ok {
		return false, fmt.Errorf("%s is not a condition function", describe(n))
	}
	seq, _ := arg.(*ast.SequenceNode)
	switch fn {
	case "Condition":
		name, ok := scalar(arg)
		if !ok {
			return false, errors.New("Condition wants a name")
		}
		return e.condition(name, depth+1)
	case "Equals":
		if seq == nil || len(seq.Values) != 2 {
			return false, errors.New("Equals wants a list of 2 values")
		}
		a, err := e.str(seq.Values[0])
		if err != nil {
			return false, err
		}
		b, err := e.str(seq.Values[1])
		if err != nil {
			return false, err
		}
		return a == b, nil
	case "Not", "And", "Or":
		if seq == nil || len(seq.Values) == 0 || fn == "Not" && len(seq.Values) != 1 {
			return false, fmt.Errorf("%s wants a list of conditions", fn)
		}
		all, any := true, false
		for _, v := range seq.Values {
			holds, err := e.cond(v, depth+1)
			if err != nil {
				return false, err
			}
			all, any = all && holds, any || holds
		}
		switch fn {
		case "Not":
			return !all, nil
		case "And":
			return all, nil
		}
		return any, nil
	}
	return false, fmt.Errorf("condition function %s is not supported locally", fn)
}

func (e *evaluator) ref(name string) (any, error) {
	if strings.HasPrefix(name, "AWS::") {
		return e.pseudo(name)
	}
	typ, value, ok, err := e.t.parameter(name, e.l)
	if err != nil {
		return nil, err
	}
	if ok {
		if strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList" {
			// CloudFormation trims the members of a CommaDelimitedList.
			items := strings.Split(value, ",")
			for i := range items {
				items[i] = strings.TrimSpace(items[i])
			}
			return items, nil
		}
		return value, nil
	}
	r, ok := e.t.Resources[name]
	if !ok {
		return nil, fmt.Errorf("Ref %s: the template has no such parameter or resource", name)
	}
	if e.collect != nil {
		e.collect[name] = true
		return name, nil
	}
	v, ok := e.l.Refs[name]
	if !ok {
		return nil, fmt.Errorf("Ref %s (%s): %w", name, r.Type, ErrNoStandIn)
	}
	return v, nil
}

func (e *evaluator) getAtt(id, attr string) (any, error) {
	r, ok := e.t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("GetAtt %s.%s: the template has no resource %s", id, attr, id)
	}
	if e.collect != nil {
		e.collect[id] = true
		return id + "." + attr, nil
	}
	v, ok := e.l.Attrs[id+"."+attr]
	if !ok {
		return nil, fmt.Errorf("GetAtt %s.%s (%s): %w", id, attr, r.Type, ErrNoStandIn)
	}
	return v, nil
}

func (e *evaluator) pseudo(name string) (any, error) {
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	switch name {
	case "AWS::Region":
		return or(e.l.Region, localRegion), nil
	case "AWS::AccountId":
		return or(e.l.AccountID, "123456789012"), nil
	case "AWS::StackName":
		return or(e.l.StackName, "flagline-local"), nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	}
	return nil, fmt.Errorf("pseudo parameter %s is not supported locally", name)
}

// sub evaluates Fn::Sub text: ${Name} is a variable, a parameter, a
// resource's Ref or a pseudo parameter; ${Id.Attr} is a GetAtt; ${!x} is
// the literal ${x}.
func (e *evaluator) sub(text string, vars map[string]ast.Node) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		b.WriteString(text[:i])
		end := strings.IndexByte(text[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("Sub: unclosed ${ in %q", text)
		}
		name := strings.TrimSpace(text[i+2 : i+end])
		text = text[i+end+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		var v any
		var err error
		switch n, isVar := vars[name]; {
		case isVar:
			v, err = e.eval(n)
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			id, attr, _ := strings.Cut(name, ".")
			v, err = e.getAtt(id, attr)
		default:
			v, err = e.ref(name)
		}
		if err != nil {
			return "", fmt.Errorf("Sub ${%s}: %w", name, err)
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("Sub ${%s} is a list", name)
		}
		b.WriteString(s)
	}
}

// intrinsic recognises `!Fn arg` and `{Fn::Fn: arg}` / `{Ref: arg}`, and
// returns the function's short name (Ref, GetAtt, Join, …).
func intrinsic(n ast.Node) (fn string, arg ast.Node, ok bool) {
	if tag, isTag := n.(*ast.TagNode); isTag {
		name := strings.TrimPrefix(tag.Start.Value, "!")
		if name == "" || !unicode.IsUpper(rune(name[0])) {
			return "", nil, false // a YAML tag such as !!str
		}
		return name, tag.Value, true
	}
	entries, isMap := mapping(n)
	if !isMap || len(entries) != 1 {
		return "", nil, false
	}
	key := keyOf(entries[0])
	if key == "Ref" {
		return "Ref", entries[0].Value, true
	}
	if name, isFn := strings.CutPrefix(key, "Fn::"); isFn {
		return name, entries[0].Value, true
	}
	return "", nil, false
}

// scalar is the text of a scalar node, as CloudFormation reads it.
func scalar(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode:
		return n.GetToken().Value, true
	case *ast.BoolNode:
		return strconv.FormatBool(n.Value), true
	case *ast.NullNode:
		return "", true
	case *ast.TagNode:
		if _, _, isFn := intrinsic(n); !isFn {
			return scalar(n.Value)
		}
	}
	return "", false
}

func mapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

func keyOf(e *ast.MappingValueNode) string {
	if s, ok := scalar(e.Key); ok {
		return s
	}
	return e.Key.GetToken().Value
}

// child walks mappings down keys; nil when a key is absent.
func child(n ast.Node, keys ...string) ast.Node {
	for _, k := range keys {
		entries, ok := mapping(n)
		if !ok {
			return nil
		}
		n = nil
		for _, e := range entries {
			if keyOf(e) == k {
				n = e.Value
				break
			}
		}
		if n == nil {
			return nil
		}
	}
	return n
}

func describe(n ast.Node) string {
	tok := n.GetToken()
	if tok == nil || tok.Position == nil {
		return fmt.Sprintf("%q", n.String())
	}
	return fmt.Sprintf("%q (line %d)", strings.TrimSpace(n.String()), tok.Position.Line)
}

// localRegion answers AWS::Region when Locals name none: the region of
// Flagline's local runs.
const localRegion = "eu-west-1"
