// Package devstack runs Flagline on one machine: moto_server as the local
// AWS, the resources template.yaml declares, and every HTTP API route of the
// template served on a loopback address by the same handler code the Lambda
// functions run.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/apigw"
	"github.com/flagline/flagline/shared/motoserver"
	"github.com/flagline/flagline/shared/samtemplate"
)

// Resources are the physical names given to the template's resources.
type Resources struct {
	// Names maps a logical id to its local physical name or ARN.
	Names map[string]string
}

// Ref resolves !Ref of a logical id as CloudFormation would.
func (r Resources) Ref(logicalID string) string { return r.Names[logicalID] }

// HTTPFactory builds the HTTP handler of one function from the AWS config
// pointed at moto and the function's environment as the template gives it.
type HTTPFactory func(cfg aws.Config, env map[string]string) (apigw.Handler, error)

// Options configure Start.
type Options struct {
	// Template is the path of template.yaml.
	Template string
	// Addr is where the HTTP API is served, e.g. 127.0.0.1:3000.
	Addr string
	// Env is added to every function's environment (e.g. the webhook secrets).
	Env map[string]string
	// HTTP maps a function's logical id to its handler factory.
	HTTP map[string]HTTPFactory
	Log  *slog.Logger
	// MotoLog receives moto_server's own output; nil discards it.
	MotoLog io.Writer
}

// Stack is a running local Flagline.
type Stack struct {
	Moto      *motoserver.Server
	AWS       aws.Config
	Resources Resources
	// URL is the base URL of the local HTTP API.
	URL      string
	Routes   []samtemplate.Route
	server   *http.Server
	listener net.Listener
}

// Start brings the stack up. Close stops everything it started.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	tpl, err := samtemplate.Load(opts.Template)
	if err != nil {
		return nil, err
	}
	bin, err := motoserver.Binary(filepath.Dir(opts.Template))
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("serve the API on %s: %w", opts.Addr, err)
	}
	s := &Stack{listener: listener, URL: "http://" + listener.Addr().String()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Moto, err = motoserver.Start(ctx, bin, opts.MotoLog); err != nil {
		return nil, err
	}
	s.AWS = aws.Config{
		Region:       motoserver.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(s.Moto.URL),
	}
	if s.Resources, err = createResources(ctx, tpl, s.AWS); err != nil {
		return nil, err
	}
	if s.Routes, err = tpl.Routes(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, route := range s.Routes {
		factory, ok := opts.HTTP[route.Function]
		if !ok {
			return nil, fmt.Errorf("no local handler for %s (route %s)", route.Function, route.Key())
		}
		env, err := s.FunctionEnv(tpl, route.Function, opts.Env)
		if err != nil {
			return nil, err
		}
		h, err := factory(s.AWS, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", route.Function, err)
		}
		apigw.Handle(mux, route.Key(), h, opts.Log)
	}
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Log.Error("local API stopped", "error", err)
		}
	}()
	return s, nil
}

// FunctionEnv is a function's environment as the template declares it, with
// references resolved to local names, plus extra.
func (s *Stack) FunctionEnv(tpl *samtemplate.Template, logicalID string, extra map[string]string) (map[string]string, error) {
	fn, err := tpl.Function(logicalID)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range tpl.Globals.Function.Environment.Variables {
		env[k] = s.resolve(tpl, v)
	}
	for k, v := range fn.Environment.Variables {
		env[k] = s.resolve(tpl, v)
	}
	for k, v := range extra {
		env[k] = v
	}
	return env, nil
}

// resolve turns a template value (a !Ref read as the name it refers to, or a
// plain value) into what the function would see: a resource's local name or
// a parameter's default.
func (s *Stack) resolve(tpl *samtemplate.Template, v any) string {
	str := fmt.Sprint(v)
	if name, ok := s.Resources.Names[str]; ok {
		return name
	}
	if def, ok := tpl.ParameterDefault(str); ok {
		return def
	}
	return str
}

// DynamoDB returns a client for the local table.
func (s *Stack) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(s.AWS) }

// Close stops the API and moto_server.
func (s *Stack) Close() {
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.server.Shutdown(ctx)
		cancel()
	} else if s.listener != nil {
		s.listener.Close()
	}
	s.Moto.Stop()
}

func createResources(ctx context.Context, tpl *samtemplate.Template, cfg aws.Config) (Resources, error) {
	res := Resources{Names: map[string]string{}}
	db := dynamodb.NewFromConfig(cfg)
	for _, id := range tpl.ResourcesOfType("AWS::DynamoDB::Table") {
		spec, err := tpl.Table(id)
		if err != nil {
			return res, err
		}
		name := "flagline-" + id
		if _, err := spec.Create(ctx, db, name); err != nil {
			return res, err
		}
		res.Names[id] = name
	}
	return res, nil
}

// Getenv looks a variable up in env, then in the process environment.
func Getenv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
}
