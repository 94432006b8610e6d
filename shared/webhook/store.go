package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Store gives the active secrets of a source, or ErrUnknownSource.
type Store interface {
	Secrets(ctx context.Context, source string) ([]Secret, error)
}

// Secrets implements Store for a fixed set of sources (local runs and tests).
func (s Sources) Secrets(_ context.Context, source string) ([]Secret, error) {
	secrets, ok := s[source]
	if !ok {
		return nil, ErrUnknownSource
	}
	return secrets, nil
}

// ParameterReader is the part of the SSM client SSMStore uses.
type ParameterReader interface {
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, opts ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
}

var _ ParameterReader = (*ssm.Client)(nil)

// SSMStore reads source secrets from SSM Parameter Store: one SecureString
// parameter per source, named <Path>/<source>, whose value lists that source's
// secrets separated by spaces, commas or newlines (two during a rotation).
//
// The whole path is read on first use and again once TTL has passed, so a
// rotation reaches every running function within TTL. When a refresh fails
// the secrets already held stay in use; only a first load that fails is an error.
type SSMStore struct {
	Client ParameterReader
	Path   string
	TTL    time.Duration
	Now    func() time.Time

	mu      sync.Mutex
	sources Sources
	loaded  time.Time
}

// Secrets implements Store.
func (s *SSMStore) Secrets(ctx context.Context, source string) ([]Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if s.sources == nil || now().Sub(s.loaded) > s.TTL {
		fresh, err := s.load(ctx)
		switch {
		case err == nil:
			s.sources, s.loaded = fresh, now()
		case s.sources == nil:
			return nil, err
		}
	}
	return s.sources.Secrets(ctx, source)
}

func (s *SSMStore) load(ctx context.Context) (Sources, error) {
	prefix := strings.TrimSuffix(s.Path, "/") + "/"
	out := Sources{}
	p := ssm.NewGetParametersByPathPaginator(s.Client, &ssm.GetParametersByPathInput{
		Path:           aws.String(strings.TrimSuffix(prefix, "/")),
		WithDecryption: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read webhook secrets under %s: %w", prefix, err)
		}
		for _, param := range page.Parameters {
			name := strings.TrimPrefix(aws.ToString(param.Name), prefix)
			list := strings.FieldsFunc(aws.ToString(param.Value), func(r rune) bool {
				return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r'
			})
			secrets, err := parseSourceSecrets(name, list)
			if err != nil {
				return nil, fmt.Errorf("parameter %s%s: %w", prefix, name, err)
			}
			out[name] = secrets
		}
	}
	return out, nil
}

// Environment variables that choose where secrets come from.
const (
	// EnvSecrets holds the sources inline as JSON (local runs, tests):
	// {"demo":["whsec_…"]}. It wins when set.
	EnvSecrets = "FLAGLINE_WEBHOOK_SECRETS"
	// EnvSecretsPath names the SSM Parameter Store path holding one
	// SecureString parameter per source (deployed functions).
	EnvSecretsPath = "WEBHOOK_SECRETS_PATH"
)

// StoreFromEnv returns the inline sources of EnvSecrets when set, else an
// SSMStore reading EnvSecretsPath with the client newSSM makes (called only
// then, so local runs need no SSM client).
func StoreFromEnv(lookup func(string) (string, bool), newSSM func() ParameterReader) (Store, error) {
	if inline, ok := lookup(EnvSecrets); ok && inline != "" {
		return ParseSources(inline)
	}
	if path, ok := lookup(EnvSecretsPath); ok && path != "" {
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%s must be an absolute parameter path such as /flagline/prod/sources", EnvSecretsPath)
		}
		return &SSMStore{Client: newSSM(), Path: path, TTL: 5 * time.Minute}, nil
	}
	return nil, fmt.Errorf("set %s (SSM path, deployed) or %s (inline JSON, local)", EnvSecretsPath, EnvSecrets)
}
