// Package runtimetest runs Flagline's Lambda functions the way `sam local
// invoke` does, without Docker: each function's bootstrap is built for the
// host (CGO_ENABLED=0, -tags lambda.norpc), run under the AWS Lambda Runtime
// Interface Emulator (aws-lambda-rie, a tool of go.mod) with the
// environment template.yaml gives it, its AWS endpoints pointed at
// moto_server, and invoked over the emulator's Invoke API.
//
//	bootstrap := runtimetest.Build(t, "IngestFunction")
//	env, _ := stack.FunctionEnv("IngestFunction", moto.Env(), overrides)
//	fn := runtimetest.Start(t, bootstrap, env)
//	resp, functionErr, err := fn.Invoke(ctx, event)
//
// The package's own tests (build tag integration) invoke every function of
// the template with every events/<function>-*.json and check the answers and
// what each invocation left in moto.
package runtimetest
