package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Store gives the active secrets of a source, or ErrUnknownSource.
type Store interface {
	Secrets(ctx context.Context, source string) (*SourceSecrets, error)
}

// Secrets implements Store for a fixed set of sources (local runs and tests).
func (s Sources) Secrets(_ context.Context, source string) (*SourceSecrets, error) {
	secrets, ok := s[source]
	if !ok {
		return nil, ErrUnknownSource
	}
	return secrets, nil
}

// ParameterReader is the part of the SSM client SSMStore uses.
type ParameterReader interface {
	GetParametersByPath(ctx context.Context, in *GetParametersByPathInput) (*GetParametersByPathOutput, error)
}

var _ ParameterReader = (*SSMClient)(nil)

// RefreshPeriod is how often the deployed intake reads its secrets again.
const RefreshPeriod = 5 * time.Minute

// maxResultsByPath is the largest page GetParametersByPath gives: "Valid
// Range: Minimum value of 1. Maximum value of 10."
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
const maxResultsByPath = 10

// SSMStore reads source secrets from SSM Parameter Store: one SecureString
// parameter per source, named <Path>/<source>, whose value lists that source's
// secrets separated by spaces, commas or newlines (two during a rotation).
//
// The whole path is read on first use and again every TTL (see Refresher for
// the backoff after a failed read and the staleness limit); each successful
// read replaces every source, so a parameter deleted from SSM stops being
// accepted within TTL (and each source's SourceSecrets, with its hint of the
// secret to try first, starts again from the listed order).
//
// Each parameter is parsed on its own. One that cannot be used (a name that
// is not a source name, a value that is not whsec_ secrets, a plain String
// rather than a SecureString) is logged by name, never by value, and does
// not affect the others: a source whose parameter is unusable answers
// ErrSecretsUnavailable (intake: 503, so the sender tries again once an
// operator fixes it), an unusable name cannot be asked for anyway.
type SSMStore struct {
	Client ParameterReader
	Path   string
	TTL    time.Duration
	// MaxStale: see Refresher; zero means DefaultMaxStale × TTL.
	MaxStale time.Duration
	Now      func() time.Time
	// Jitter: see Refresher; nil means random.
	Jitter func(time.Duration) time.Duration
	// Log receives one line per unusable parameter at each read; nil discards.
	Log *slog.Logger

	once sync.Once
	r    *Refresher[ssmSources]
}

// ssmSources is one read of the path: the usable sources and, by source
// name, why the others were refused.
type ssmSources struct {
	ok     Sources
	broken map[string]string
}

// Secrets implements Store.
func (s *SSMStore) Secrets(ctx context.Context, source string) (*SourceSecrets, error) {
	s.once.Do(func() {
		s.r = &Refresher[ssmSources]{Load: s.load, Period: s.TTL, MaxStale: s.MaxStale, Now: s.Now, Jitter: s.Jitter}
	})
	all, err := s.r.Get(ctx)
	if err != nil {
		return nil, err
	}
	if why, ok := all.broken[source]; ok {
		return nil, fmt.Errorf("%w: parameter %s%s: %s", ErrSecretsUnavailable, s.prefix(), source, why)
	}
	return all.ok.Secrets(ctx, source)
}

func (s *SSMStore) prefix() string { return strings.TrimSuffix(s.Path, "/") + "/" }

func (s *SSMStore) load(ctx context.Context) (ssmSources, error) {
	prefix := s.prefix()
	out := ssmSources{ok: Sources{}, broken: map[string]string{}}
	// Follow NextToken until it is empty; a page may hold fewer than
	// MaxResults parameters, even none, and still not be the last (results
	// are "best-effort", same page).
	in := &GetParametersByPathInput{
		Path:           strings.TrimSuffix(prefix, "/"),
		WithDecryption: true,
		MaxResults:     maxResultsByPath,
	}
	for first := true; first || in.NextToken != ""; first = false {
		page, err := s.Client.GetParametersByPath(ctx, in)
		if err != nil {
			// A partial read replaces nothing: the sources of later pages
			// would look deleted.
			return ssmSources{}, fmt.Errorf("read webhook secrets under %s: %w", prefix, err)
		}
		in.NextToken = page.NextToken
		for _, param := range page.Parameters {
			full := param.Name
			name := strings.TrimPrefix(full, prefix)
			secrets, err := parseParameter(name, param)
			if err != nil {
				s.log().Warn("webhook secrets: parameter skipped", "parameter", full, "reason", err.Error())
				if ValidSourceName(name) {
					out.broken[name] = err.Error()
				}
				continue
			}
			out.ok[name] = secrets
		}
	}
	return out, nil
}

// parseParameter parses one source's parameter. Errors name the source and
// the secret's position, never a value.
func parseParameter(name string, param Parameter) (*SourceSecrets, error) {
	if param.Type != ParameterTypeSecureString {
		// A String parameter is stored and shown unencrypted: refuse the
		// secret rather than use one that may have leaked.
		return nil, fmt.Errorf("parameter is a %s, not a SecureString", param.Type)
	}
	list := strings.FieldsFunc(param.Value, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r'
	})
	return parseSourceSecrets(name, list)
}

func (s *SSMStore) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
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
// SSMStore reading EnvSecretsPath every RefreshPeriod with the client newSSM
// makes (called only then, so local runs need no SSM client).
func StoreFromEnv(lookup func(string) (string, bool), newSSM func() ParameterReader, log *slog.Logger) (Store, error) {
	if inline, ok := lookup(EnvSecrets); ok && inline != "" {
		return ParseSources(inline)
	}
	if path, ok := lookup(EnvSecretsPath); ok && path != "" {
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%s must be an absolute parameter path such as /flagline/prod/sources", EnvSecretsPath)
		}
		return &SSMStore{Client: newSSM(), Path: path, TTL: RefreshPeriod, Log: log}, nil
	}
	return nil, fmt.Errorf("set %s (SSM path, deployed) or %s (inline JSON, local)", EnvSecretsPath, EnvSecrets)
}
