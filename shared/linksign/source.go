package linksign

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flagline/flagline/shared/webhook"
)

// Environment of the functions that sign or verify links (alert, cases).
const (
	// EnvKey holds the key inline, in base64 (flagline dev, tests); it
	// wins when set.
	EnvKey = "FLAGLINE_LINK_KEY"
	// EnvKeyParameter names the SecureString parameter holding the key
	// (deployed functions), e.g. /flagline/prod/link-key.
	EnvKeyParameter = "LINK_KEY_PARAMETER"
)

// Source gives the key to sign or verify with.
type Source interface {
	LinkKey(ctx context.Context) (Key, error)
}

// LinkKey makes a fixed Key a Source.
func (k Key) LinkKey(context.Context) (Key, error) {
	if k.IsZero() {
		return Key{}, fmt.Errorf("no link key")
	}
	return k, nil
}

// ParameterGetter is the SSM call SSMKey makes.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *webhook.GetParameterInput) (*webhook.GetParameterOutput, error)
}

var _ ParameterGetter = (*webhook.SSMClient)(nil)

// KeyFromEnv is the link key a function's environment names: EnvKey inline,
// or EnvKeyParameter read from SSM (at first use, then every
// webhook.RefreshPeriod). Neither set is an error: a deployment without a
// key would mail links that cannot work.
func KeyFromEnv(lookup func(string) (string, bool), newSSM func() ParameterGetter) (Source, error) {
	if inline, ok := lookup(EnvKey); ok && inline != "" {
		k, err := ParseKey(inline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return k, nil
	}
	if name, ok := lookup(EnvKeyParameter); ok && name != "" {
		if !strings.HasPrefix(name, "/") {
			return nil, fmt.Errorf("%s must be an absolute parameter name such as /flagline/prod/link-key", EnvKeyParameter)
		}
		return &SSMKey{Client: newSSM(), Name: name, TTL: webhook.RefreshPeriod}, nil
	}
	return nil, fmt.Errorf("set %s (SSM parameter, deployed) or %s (base64 key, local)", EnvKeyParameter, EnvKey)
}

// SSMKey reads the link key from one SecureString parameter, refreshed and
// backed off as the webhook secrets are (webhook.Refresher). A key that is
// missing, not a SecureString or malformed is an error: no link is signed
// or accepted with it.
type SSMKey struct {
	Client ParameterGetter
	Name   string
	TTL    time.Duration
	Now    func() time.Time

	once sync.Once
	r    *webhook.Refresher[Key]
}

// LinkKey implements Source.
func (s *SSMKey) LinkKey(ctx context.Context) (Key, error) {
	s.once.Do(func() {
		s.r = &webhook.Refresher[Key]{Load: s.load, Period: s.TTL, Now: s.Now}
	})
	return s.r.Get(ctx)
}

func (s *SSMKey) load(ctx context.Context) (Key, error) {
	out, err := s.Client.GetParameter(ctx, &webhook.GetParameterInput{Name: s.Name, WithDecryption: true})
	if err != nil {
		return Key{}, fmt.Errorf("read %s: %w", s.Name, err)
	}
	if out.Parameter == nil || out.Parameter.Type != webhook.ParameterTypeSecureString {
		return Key{}, fmt.Errorf("parameter %s must be a SecureString", s.Name)
	}
	k, err := ParseKey(out.Parameter.Value)
	if err != nil {
		return Key{}, fmt.Errorf("parameter %s: %w", s.Name, err)
	}
	return k, nil
}
