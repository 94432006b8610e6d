package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flagline/flagline/shared/webhook"
)

// sdkRegions lists every region of the partitions the linked SDK knows
// (aws-sdk-go-v2 internal/endpoints/awsrulesfn/partitions.json), and one
// region per partition that is not listed yet but matches its pattern, the
// way a region launched after this SDK version would.
func sdkRegions(t *testing.T) []string {
	t.Helper()
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("locate aws-sdk-go-v2: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Partitions []struct {
			ID      string         `json:"id"`
			Regions map[string]any `json:"regions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	regions := []string{"eu-south-9", "cn-south-9", "eusc-de-west-9", "us-iso-north-9", "us-isob-north-9", "eu-isoe-north-9", "us-isof-north-9", "us-gov-north-9", "xy-nowhere-1"}
	for _, p := range doc.Partitions {
		if len(p.Regions) == 0 {
			t.Errorf("partition %s lists no regions", p.ID)
		}
		for r := range p.Regions {
			regions = append(regions, r)
		}
	}
	if len(doc.Partitions) < 8 {
		t.Fatalf("%d partitions in partitions.json", len(doc.Partitions))
	}
	return regions
}

// urlRecorder is an HTTP client that records the URL asked for and answers
// a parameter.
type urlRecorder struct{ url string }

func (u *urlRecorder) Do(r *http.Request) (*http.Response, error) {
	u.url = r.URL.String()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, errors.New("recorded")
}

// The client calls the endpoint service/ssm would call for every region of
// every partition, with FIPS and dual-stack on and off, or refuses to be
// made where service/ssm could not resolve one.
func TestSSMClientEndpoint(t *testing.T) {
	resolver := ssm.NewDefaultEndpointResolverV2()
	ctx := context.Background()
	for _, region := range sdkRegions(t) {
		for _, fips := range []bool{false, true} {
			for _, dualStack := range []bool{false, true} {
				want, wantErr := resolver.ResolveEndpoint(ctx, ssm.EndpointParameters{Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dualStack)})
				t.Setenv("AWS_USE_FIPS_ENDPOINT", map[bool]string{false: "false", true: "true"}[fips])
				t.Setenv("AWS_USE_DUALSTACK_ENDPOINT", map[bool]string{false: "false", true: "true"}[dualStack])
				env, err := config.NewEnvConfig()
				if err != nil {
					t.Fatal(err)
				}
				rec := &urlRecorder{}
				c, err := webhook.NewSSMClient(aws.Config{
					Region:        region,
					Credentials:   credentials.NewStaticCredentialsProvider("AKIDFLAGLINE", "secret", ""),
					HTTPClient:    rec,
					ConfigSources: []any{env},
				})
				switch {
				case wantErr != nil && err == nil:
					t.Errorf("%s fips=%v dualstack=%v: client made, service/ssm: %v", region, fips, dualStack, wantErr)
				case wantErr == nil && err != nil:
					t.Errorf("%s fips=%v dualstack=%v: %v, service/ssm calls %s", region, fips, dualStack, err, want.URI.String())
				case err == nil:
					c.GetParameter(ctx, &webhook.GetParameterInput{Name: "/p"})
					if w := want.URI.String() + "/"; rec.url != w {
						t.Errorf("%s fips=%v dualstack=%v: called %s, service/ssm calls %s", region, fips, dualStack, rec.url, w)
					}
				}
			}
		}
	}
}

// FIPS and dual-stack cannot be combined with a custom endpoint, as in
// service/ssm; nor can a region that is not a host name label be used.
func TestSSMClientRefusesWhatSSMRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, env, value string
		cfg              aws.Config
	}{
		{"fips with AWS_ENDPOINT_URL", "AWS_USE_FIPS_ENDPOINT", "true", aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:5000")}},
		{"dual-stack with AWS_ENDPOINT_URL", "AWS_USE_DUALSTACK_ENDPOINT", "true", aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:5000")}},
		{"fips with AWS_ENDPOINT_URL_SSM", "AWS_USE_FIPS_ENDPOINT", "true", aws.Config{Region: "eu-west-1"}},
		{"region with a slash", "", "", aws.Config{Region: "eu-west-1/x"}},
		{"fips pseudo-region", "", "", aws.Config{Region: "fips-us-east-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.value)
			}
			if strings.Contains(tc.name, "_SSM") {
				t.Setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5000")
			}
			env, err := config.NewEnvConfig()
			if err != nil {
				t.Fatal(err)
			}
			tc.cfg.ConfigSources = []any{env}
			if _, err := webhook.NewSSMClient(tc.cfg); err == nil {
				t.Fatal("client made")
			}
		})
	}
}
