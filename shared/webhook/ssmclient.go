package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// SSMClient makes the two Parameter Store calls the intake needs,
// GetParametersByPath and GetParameter, over the SSM API's JSON 1.1 protocol
// (POST /, X-Amz-Target: AmazonSSM.<action>, SigV4 for service "ssm"), with
// the aws.Config's credentials, HTTP client and retryer.
//
// Why not service/ssm: that package's initialisation (its schemas) costs
// about 1 ms, 1.4 MB and 7,900 allocations on every cold start, and 1.3 MB of
// binary, for two calls. Why not the AWS Parameters and Secrets Lambda
// Extension: it serves one parameter per request
// (GET /systemsmanager/parameters/get?name=…) and cannot list a path, while
// sources are added by putting a parameter under WEBHOOK_SECRETS_PATH; it
// also starts a second process in the function's init phase and keeps its
// own cache, which would stretch the fail-closed limit of Refresher.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-integration-lambda-extensions.html
//
// Everything else a client does comes from the SDK packages every function
// already links: aws/signer/v4 signs, aws/retry decides what to retry and how
// long to wait, errors are the smithy.APIError the generated client returns.
type SSMClient struct {
	cfg      aws.Config
	http     aws.HTTPClient
	retryer  aws.Retryer
	signer   *v4.Signer
	endpoint string
}

// NewSSMClient returns a client for cfg's region, endpoint and credentials,
// or an error naming the setting when the generated SSM client could not
// resolve an endpoint from them either. It makes no call.
//
// The endpoint is what the generated client's rules give
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-endpoints.html):
// AWS_ENDPOINT_URL_SSM or cfg.BaseEndpoint (AWS_ENDPOINT_URL) when set, else
// ssm[-fips].<region>.<DNS suffix of the region's partition>, with the
// dual-stack suffix under AWS_USE_DUALSTACK_ENDPOINT
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-endpoints.html#endpoints-fips-dualstack).
// A region-less config makes a client whose calls fail, as the SDK's do.
func NewSSMClient(cfg aws.Config) (*SSMClient, error) {
	c := &SSMClient{cfg: cfg, http: cfg.HTTPClient, signer: v4.NewSigner()}
	if c.http == nil {
		c.http = awshttp.NewBuildableClient()
	}
	if cfg.Retryer != nil {
		c.retryer = cfg.Retryer()
	} else {
		c.retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			if cfg.RetryMaxAttempts > 0 {
				o.MaxAttempts = cfg.RetryMaxAttempts
			}
		})
	}
	endpoint, err := resolveSSMEndpoint(cfg)
	if err != nil {
		return nil, fmt.Errorf("ssm endpoint: %w", err)
	}
	c.endpoint = endpoint
	return c, nil
}

// ssmPartition is what the SDK's endpoint rules know of an AWS partition
// (aws-sdk-go-v2 internal/endpoints/awsrulesfn/partitions.json, "outputs"),
// copied here because that package is internal. TestSSMClientEndpoint
// compares every region of the linked SDK's partitions.json with
// service/ssm's own resolver, so a partition added to the SDK fails that
// test until it is added here.
type ssmPartition struct {
	name        string
	regionRegex *regexp.Regexp
	// global is the partition's global pseudo-region, listed under its
	// regions although the regex does not match it.
	global             string
	dnsSuffix          string
	dualStackDNSSuffix string
	supportsFIPS       bool
	supportsDualStack  bool
}

// ssmPartitions are in partitions.json's order, which is the order its
// regexes are tried in; a region no regex matches is in "aws".
var ssmPartitions = []ssmPartition{
	{"aws", regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`), "aws-global", "amazonaws.com", "api.aws", true, true},
	{"aws-cn", regexp.MustCompile(`^cn\-\w+\-\d+$`), "aws-cn-global", "amazonaws.com.cn", "api.amazonwebservices.com.cn", true, true},
	{"aws-eusc", regexp.MustCompile(`^eusc\-(de)\-\w+\-\d+$`), "", "amazonaws.eu", "api.amazonwebservices.eu", true, true},
	{"aws-iso", regexp.MustCompile(`^us\-iso\-\w+\-\d+$`), "aws-iso-global", "c2s.ic.gov", "api.aws.ic.gov", true, true},
	{"aws-iso-b", regexp.MustCompile(`^us\-isob\-\w+\-\d+$`), "aws-iso-b-global", "sc2s.sgov.gov", "api.aws.scloud", true, true},
	{"aws-iso-e", regexp.MustCompile(`^eu\-isoe\-\w+\-\d+$`), "aws-iso-e-global", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk", true, true},
	{"aws-iso-f", regexp.MustCompile(`^us\-isof\-\w+\-\d+$`), "aws-iso-f-global", "csp.hci.ic.gov", "api.aws.hci.ic.gov", true, true},
	{"aws-us-gov", regexp.MustCompile(`^us\-gov\-\w+\-\d+$`), "aws-us-gov-global", "amazonaws.com", "api.aws", true, true},
}

func partitionOf(region string) *ssmPartition {
	for i := range ssmPartitions {
		if ssmPartitions[i].global == region {
			return &ssmPartitions[i]
		}
	}
	for i := range ssmPartitions {
		if ssmPartitions[i].regionRegex.MatchString(region) {
			return &ssmPartitions[i]
		}
	}
	return &ssmPartitions[0]
}

// resolveSSMEndpoint applies service/ssm's endpoint rules (its
// endpoints.go) to cfg; "" means no region, which every call reports.
func resolveSSMEndpoint(cfg aws.Config) (string, error) {
	fips, dualStack, err := endpointVariants(cfg)
	if err != nil {
		return "", err
	}
	custom := serviceEndpoint(cfg)
	if custom == "" && cfg.BaseEndpoint != nil {
		custom = *cfg.BaseEndpoint
	}
	if custom != "" {
		switch {
		case fips:
			return "", fmt.Errorf("AWS_USE_FIPS_ENDPOINT and a custom endpoint (%s) are not supported together", custom)
		case dualStack:
			return "", fmt.Errorf("AWS_USE_DUALSTACK_ENDPOINT and a custom endpoint (%s) are not supported together", custom)
		}
		return strings.TrimSuffix(custom, "/") + "/", nil
	}
	region := cfg.Region
	if region == "" {
		return "", nil
	}
	for _, label := range strings.Split(region, ".") {
		if !smithyhttp.ValidHostLabel(label) || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("invalid region %q", region)
		}
	}
	if strings.Contains(region, "fips") {
		// The SDK strips "fips" from such a pseudo-region and calls the
		// plain endpoint: refuse it rather than think FIPS is in use.
		return "", fmt.Errorf("region %q: use the plain region and AWS_USE_FIPS_ENDPOINT=true", region)
	}
	p := partitionOf(region)
	switch {
	case fips && dualStack:
		if !p.supportsFIPS || !p.supportsDualStack {
			return "", fmt.Errorf("region %s: partition %s does not support FIPS and dual-stack endpoints", region, p.name)
		}
		return "https://ssm-fips." + region + "." + p.dualStackDNSSuffix + "/", nil
	case fips:
		if !p.supportsFIPS {
			return "", fmt.Errorf("region %s: partition %s does not support FIPS endpoints", region, p.name)
		}
		if p.name == "aws-us-gov" {
			// SSM's endpoints in AWS GovCloud (US) are FIPS endpoints:
			// https://docs.aws.amazon.com/general/latest/gr/ssm.html
			return "https://ssm." + region + ".amazonaws.com/", nil
		}
		return "https://ssm-fips." + region + "." + p.dnsSuffix + "/", nil
	case dualStack:
		if !p.supportsDualStack {
			return "", fmt.Errorf("region %s: partition %s does not support dual-stack endpoints", region, p.name)
		}
		return "https://ssm." + region + "." + p.dualStackDNSSuffix + "/", nil
	}
	return "https://ssm." + region + "." + p.dnsSuffix + "/", nil
}

// endpointVariants reads AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT
// (or use_fips_endpoint, use_dualstack_endpoint of the shared config) from
// cfg's sources, the first source that has each winning, as the generated
// clients do.
func endpointVariants(cfg aws.Config) (fips, dualStack bool, err error) {
	ctx := context.Background()
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(interface {
			GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error)
		}); ok {
			v, found, err := s.GetUseFIPSEndpoint(ctx)
			if err != nil {
				return false, false, err
			}
			if found {
				fips = v == aws.FIPSEndpointStateEnabled
				break
			}
		}
	}
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(interface {
			GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error)
		}); ok {
			v, found, err := s.GetUseDualStackEndpoint(ctx)
			if err != nil {
				return false, false, err
			}
			if found {
				dualStack = v == aws.DualStackEndpointStateEnabled
				break
			}
		}
	}
	return fips, dualStack, nil
}

// serviceEndpoint is the SSM endpoint of cfg's sources (AWS_ENDPOINT_URL_SSM
// or a profile's services section), as the generated client resolves it:
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
func serviceEndpoint(cfg aws.Config) string {
	ctx := context.Background()
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(interface {
			GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error)
		}); ok {
			if ignore, found, _ := s.GetIgnoreConfiguredEndpoints(ctx); found && ignore {
				return ""
			}
		}
	}
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(interface {
			GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
		}); ok {
			if v, found, err := s.GetServiceBaseEndpoint(ctx, "SSM"); found && err == nil && v != "" {
				return v
			}
		}
	}
	return ""
}

// ParameterTypeSecureString is the Type of an encrypted parameter.
const ParameterTypeSecureString = "SecureString"

// Parameter is what Flagline reads of a parameter: its full name, its type
// (String, StringList or SecureString) and its value (decrypted when asked).
type Parameter struct {
	Name  string `json:"Name"`
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// GetParametersByPathInput is the request of
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
// (the members Flagline sends).
type GetParametersByPathInput struct {
	Path           string `json:"Path"`
	WithDecryption bool   `json:"WithDecryption"`
	MaxResults     int32  `json:"MaxResults,omitempty"`
	NextToken      string `json:"NextToken,omitempty"`
}

// GetParametersByPathOutput is one page of parameters; an empty NextToken
// ends the listing.
type GetParametersByPathOutput struct {
	Parameters []Parameter `json:"Parameters"`
	NextToken  string      `json:"NextToken"`
}

// GetParameterInput is the request of
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
type GetParameterInput struct {
	Name           string `json:"Name"`
	WithDecryption bool   `json:"WithDecryption"`
}

// GetParameterOutput holds the parameter asked for.
type GetParameterOutput struct {
	Parameter *Parameter `json:"Parameter"`
}

// GetParametersByPath reads one page of the parameters under in.Path.
func (c *SSMClient) GetParametersByPath(ctx context.Context, in *GetParametersByPathInput) (*GetParametersByPathOutput, error) {
	var out GetParametersByPathOutput
	if err := c.call(ctx, "GetParametersByPath", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetParameter reads one parameter. A missing one is a smithy.APIError with
// code ParameterNotFound.
func (c *SSMClient) GetParameter(ctx context.Context, in *GetParameterInput) (*GetParameterOutput, error) {
	var out GetParameterOutput
	if err := c.call(ctx, "GetParameter", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxAnswer bounds what is read of an answer: ten parameters of at most 8 KB
// (advanced tier) and their names fit many times over.
const maxAnswer = 1 << 20

// ssmAttemptTimeout bounds one request (connection, sending, the whole
// answer). A timed-out attempt is retried, as the retryer retries timeouts,
// within what is left of the caller's context; Refresher bounds a whole read
// with its LoadTimeout, so a stalled SSM costs a request that much, answered
// 503, rather than the function's timeout.
const ssmAttemptTimeout = time.Second

// call sends one action, retrying what the retryer calls retryable after the
// delay it gives, as the SDK's retry middleware does.
func (c *SSMClient) call(ctx context.Context, action string, in, out any) error {
	if c.endpoint == "" {
		return fmt.Errorf("ssm %s: no region configured", action)
	}
	if c.cfg.Credentials == nil {
		return fmt.Errorf("ssm %s: no credentials configured", action)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("ssm %s: %w", action, err)
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	for attempt := 1; ; attempt++ {
		err = c.attempt(ctx, action, body, payloadHash, out)
		if err == nil || ctx.Err() != nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) {
			break
		}
		delay, derr := c.retryer.RetryDelay(attempt, err)
		if derr != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ssm %s: %w", action, errors.Join(err, ctx.Err()))
		case <-t.C:
		}
	}
	if err != nil {
		return fmt.Errorf("ssm %s: %w", action, err)
	}
	return nil
}

func (c *SSMClient) attempt(ctx context.Context, action string, body []byte, payloadHash string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, ssmAttemptTimeout)
	defer cancel()
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM."+action)
	if err := c.signer.SignHTTP(ctx, creds, req, payloadHash, "ssm", c.cfg.Region, time.Now().UTC()); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp, answer)},
			RequestID:     resp.Header.Get("X-Amzn-Requestid"),
		}
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// apiError reads an error answer of the JSON 1.1 protocol: the code is in the
// X-Amzn-Errortype header or the body's __type, either possibly prefixed
// with a namespace ("…#") or followed by ":…".
// https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization
func apiError(resp *http.Response, answer []byte) *smithy.GenericAPIError {
	var e struct {
		Type       string `json:"__type"`
		Code       string `json:"code"`
		Message    string `json:"message"`
		MessageCap string `json:"Message"`
	}
	_ = json.Unmarshal(answer, &e)
	code := resp.Header.Get("X-Amzn-Errortype")
	if code == "" {
		code = e.Type
	}
	if code == "" {
		code = e.Code
	}
	code, _, _ = strings.Cut(code, ":")
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	msg := e.Message
	if msg == "" {
		msg = e.MessageCap
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}
