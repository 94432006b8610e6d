// Package samtemplate reads Flagline's template.yaml so that local runs and
// tests create exactly the resources the template declares, instead of
// keeping a second, hand-written description of them that could drift.
package samtemplate

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Template is the part of a SAM template Flagline reads.
type Template struct {
	// Path is the file the template was read from.
	Path string `yaml:"-"`
	// root is the YAML tree with its intrinsic function tags: goccy/go-yaml
	// drops a tag when it decodes into Go values, so `!Ref AlertsTopic`
	// decodes to the string "AlertsTopic", which cannot be told from a
	// literal. Environments are evaluated from the tree (intrinsics.go).
	root    ast.Node
	Globals struct {
		Function struct {
			Environment struct {
				Variables map[string]any `yaml:"Variables"`
			} `yaml:"Environment"`
		} `yaml:"Function"`
	} `yaml:"Globals"`
	Parameters map[string]struct {
		Default any `yaml:"Default"`
	} `yaml:"Parameters"`
	Resources map[string]Resource `yaml:"Resources"`
}

// ParameterDefault returns the default value of a template parameter.
func (t *Template) ParameterDefault(name string) (string, bool) {
	p, ok := t.Parameters[name]
	if !ok || p.Default == nil {
		return "", false
	}
	return fmt.Sprint(p.Default), true
}

// Resource is one entry of Resources. Properties stay raw until a caller
// asks for a typed view of them.
type Resource struct {
	Type       string         `yaml:"Type"`
	Properties map[string]any `yaml:"Properties"`
}

// Load reads and parses a template file. Intrinsic function tags (!Ref,
// !GetAtt, !Sub) are read as their plain argument.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := yaml.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("%s: want one YAML document", path)
	}
	t.Path, t.root = path, f.Docs[0].Body
	return &t, nil
}

// TableSpec is an AWS::DynamoDB::Table's properties.
type TableSpec struct {
	BillingMode          string `yaml:"BillingMode"`
	AttributeDefinitions []struct {
		AttributeName string `yaml:"AttributeName"`
		AttributeType string `yaml:"AttributeType"`
	} `yaml:"AttributeDefinitions"`
	KeySchema              []keyElement `yaml:"KeySchema"`
	GlobalSecondaryIndexes []struct {
		IndexName  string       `yaml:"IndexName"`
		KeySchema  []keyElement `yaml:"KeySchema"`
		Projection struct {
			ProjectionType   string   `yaml:"ProjectionType"`
			NonKeyAttributes []string `yaml:"NonKeyAttributes"`
		} `yaml:"Projection"`
	} `yaml:"GlobalSecondaryIndexes"`
	StreamSpecification *struct {
		StreamViewType string `yaml:"StreamViewType"`
	} `yaml:"StreamSpecification"`
	TimeToLiveSpecification *struct {
		AttributeName string `yaml:"AttributeName"`
		Enabled       bool   `yaml:"Enabled"`
	} `yaml:"TimeToLiveSpecification"`
}

type keyElement struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

// Table returns the properties of the table resource logicalID.
func (t *Template) Table(logicalID string) (*TableSpec, error) {
	var spec TableSpec
	if err := t.properties(logicalID, "AWS::DynamoDB::Table", &spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

func (t *Template) properties(logicalID, wantType string, out any) error {
	r, ok := t.Resources[logicalID]
	if !ok {
		return fmt.Errorf("template has no resource %s", logicalID)
	}
	if r.Type != wantType {
		return fmt.Errorf("resource %s is %s, not %s", logicalID, r.Type, wantType)
	}
	raw, err := yaml.Marshal(r.Properties)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(raw, out)
}

// CreateTableInput is the CreateTable call that makes the table as declared.
func (s *TableSpec) CreateTableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingMode(s.BillingMode),
		KeySchema:   keySchema(s.KeySchema),
	}
	if in.BillingMode == "" {
		in.BillingMode = types.BillingModeProvisioned
	}
	if in.BillingMode == types.BillingModeProvisioned {
		in.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
	}
	for _, a := range s.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, g := range s.GlobalSecondaryIndexes {
		gsi := types.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName),
			KeySchema: keySchema(g.KeySchema),
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionType(g.Projection.ProjectionType),
				NonKeyAttributes: g.Projection.NonKeyAttributes,
			},
		}
		if in.ProvisionedThroughput != nil {
			gsi.ProvisionedThroughput = in.ProvisionedThroughput
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	if s.StreamSpecification != nil {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(s.StreamSpecification.StreamViewType),
		}
	}
	return in
}

// TTLInput is the UpdateTimeToLive call that enables the declared TTL, or nil.
func (s *TableSpec) TTLInput(name string) *dynamodb.UpdateTimeToLiveInput {
	ttl := s.TimeToLiveSpecification
	if ttl == nil || !ttl.Enabled {
		return nil
	}
	return &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(ttl.AttributeName),
			Enabled:       aws.Bool(true),
		},
	}
}

func keySchema(ks []keyElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)})
	}
	return out
}

// TableMaker is the part of the DynamoDB client Create uses.
type TableMaker interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

var _ TableMaker = (*dynamodb.Client)(nil)

// Create makes the table as declared (keys, indexes, stream, TTL) and
// returns its stream ARN ("" without a stream).
func (s *TableSpec) Create(ctx context.Context, db TableMaker, name string) (string, error) {
	out, err := db.CreateTable(ctx, s.CreateTableInput(name))
	if err != nil {
		return "", fmt.Errorf("create table %s: %w", name, err)
	}
	if ttl := s.TTLInput(name); ttl != nil {
		if _, err := db.UpdateTimeToLive(ctx, ttl); err != nil {
			return "", fmt.Errorf("enable TTL on %s: %w", name, err)
		}
	}
	return aws.ToString(out.TableDescription.LatestStreamArn), nil
}

// FunctionSpec is an AWS::Serverless::Function's properties Flagline reads.
type FunctionSpec struct {
	Environment struct {
		Variables map[string]any `yaml:"Variables"`
	} `yaml:"Environment"`
	Events map[string]EventSpec `yaml:"Events"`
}

// EventSpec is one event source of a function.
type EventSpec struct {
	Type       string         `yaml:"Type"`
	Properties map[string]any `yaml:"Properties"`
}

// Route is an HTTP API route served by a function.
type Route struct {
	Function string // logical id
	Method   string // upper case
	Path     string // e.g. /v1/sources/{source}/reports
}

// Key is the API Gateway route key, e.g. "POST /v1/sources/{source}/reports".
func (r Route) Key() string { return r.Method + " " + r.Path }

// ResourcesOfType returns the logical ids of every resource of type typ, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var out []string
	for id, r := range t.Resources {
		if r.Type == typ {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Functions returns the logical ids of every AWS::Serverless::Function, sorted.
func (t *Template) Functions() []string { return t.ResourcesOfType("AWS::Serverless::Function") }

// Function returns the properties of the function logicalID.
func (t *Template) Function(logicalID string) (*FunctionSpec, error) {
	var spec FunctionSpec
	if err := t.properties(logicalID, "AWS::Serverless::Function", &spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

// Routes lists every HttpApi event of every function, sorted by path.
func (t *Template) Routes() ([]Route, error) {
	var out []Route
	for _, id := range t.Functions() {
		fn, err := t.Function(id)
		if err != nil {
			return nil, err
		}
		for _, ev := range fn.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			method, _ := ev.Properties["Method"].(string)
			path, _ := ev.Properties["Path"].(string)
			if method == "" || path == "" {
				return nil, fmt.Errorf("%s: HttpApi event without Method and Path", id)
			}
			out = append(out, Route{Function: id, Method: strings.ToUpper(method), Path: path})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}
