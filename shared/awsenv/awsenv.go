// Package awsenv gives a Lambda function its AWS SDK configuration from the
// environment Lambda sets, instead of config.LoadDefaultConfig.
//
// Lambda always gives a function its region and its execution role's
// credentials as environment variables (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN:
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
// and `sam local` does the same (with the developer's credentials, or
// defaultkey/defaultsecret and us-east-1 when it finds none: SAM CLI's
// samcli/local/lambdafn/env_vars.py), as do the runtime tests. LoadDefaultConfig would
// find them first too, but it also links every other way of finding
// credentials (SSO, sign-in, STS role and web-identity, credential_process,
// EC2 and container metadata) and reads the shared config files at every
// cold start: 1.4 MB of each arm64 bootstrap for code a function never
// runs. Load reads the same variables with the SDK's own config.NewEnvConfig
// and keeps them as the config's source, so service-specific settings such
// as AWS_ENDPOINT_URL_DYNAMODB resolve as they would with LoadDefaultConfig.
package awsenv

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Load returns the SDK configuration the environment describes: region,
// credentials, AWS_ENDPOINT_URL (for a local AWS; ignored when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), retry mode and attempts. A
// missing region or credentials stop start-up with a message naming the
// variables, rather than failing every call later.
func Load() (aws.Config, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return aws.Config{}, err
	}
	var missing []error
	if env.Region == "" {
		missing = append(missing, errors.New("AWS_REGION is not set"))
	}
	if !env.Credentials.HasKeys() {
		missing = append(missing, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"))
	}
	if err := errors.Join(missing...); err != nil {
		return aws.Config{}, fmt.Errorf("aws environment: %w", err)
	}
	cfg := aws.Config{
		Region:                env.Region,
		Credentials:           aws.NewCredentialsCache(credentials.StaticCredentialsProvider{Value: env.Credentials}),
		HTTPClient:            awshttp.NewBuildableClient(),
		RetryMaxAttempts:      env.RetryMaxAttempts,
		RetryMode:             env.RetryMode,
		AppID:                 env.AppID,
		DefaultsMode:          env.DefaultsMode,
		AccountIDEndpointMode: env.AccountIDEndpointMode,
		ConfigSources:         []any{env},
	}
	if env.BaseEndpoint != "" && !aws.ToBool(env.IgnoreConfiguredEndpoints) {
		cfg.BaseEndpoint = aws.String(env.BaseEndpoint)
	}
	return cfg, nil
}
