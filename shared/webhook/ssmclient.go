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

// NewSSMClient returns a client for cfg's region, endpoint (AWS_ENDPOINT_URL_SSM
// or cfg.BaseEndpoint, as AWS_ENDPOINT_URL sets it, else
// ssm.<region>.amazonaws.com) and credentials. It makes no call.
func NewSSMClient(cfg aws.Config) *SSMClient {
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
	switch {
	case serviceEndpoint(cfg) != "":
		c.endpoint = strings.TrimSuffix(serviceEndpoint(cfg), "/") + "/"
	case cfg.BaseEndpoint != nil:
		c.endpoint = strings.TrimSuffix(*cfg.BaseEndpoint, "/") + "/"
	case strings.HasPrefix(cfg.Region, "cn-"):
		// https://docs.aws.amazon.com/general/latest/gr/ssm.html
		c.endpoint = "https://ssm." + cfg.Region + ".amazonaws.com.cn/"
	case cfg.Region != "":
		c.endpoint = "https://ssm." + cfg.Region + ".amazonaws.com/"
	}
	return c
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
		if err == nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) {
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
