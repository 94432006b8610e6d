package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrSecretsUnavailable: the secrets (source secrets, the notifier key)
// could not be read, or what is held is older than a Refresher's MaxStale.
// Intake answers 503, so the sender delivers again later.
var ErrSecretsUnavailable = errors.New("secrets unavailable")

// Refresher holds a value read from a remote store (SSM Parameter Store) and
// reads it again once Period has passed, so a change there (a rotation, a
// removed source) reaches a running function within Period.
//
// A read that fails keeps the value already held and is retried only after a
// backoff: exponential from one second with equal jitter, capped at Period.
// So a throttled or unreachable SSM sees about one call per Period from each
// function instance, not one per request.
//
// A value is served at most MaxStale after it was read. Past that Get fails
// with ErrSecretsUnavailable (fail closed): a source removed or a secret
// rotated out must stop being accepted within a known time even while SSM
// cannot be read, and an instance started during the outage could not
// serve anyway (its first read fails), so all instances answer alike.
// Senders deliver a 503 again later, so nothing is lost but time.
type Refresher[T any] struct {
	// Load reads the value; it is called with the lock held, so at most one
	// read is in flight.
	Load func(ctx context.Context) (T, error)
	// Period is how old a value may be before it is read again.
	Period time.Duration
	// MaxStale is how old a value may be and still be served while reads
	// fail; zero means DefaultMaxStale periods.
	MaxStale time.Duration
	// LoadTimeout bounds one Load, whatever the caller's context allows;
	// zero means DefaultLoadTimeout.
	LoadTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a random duration in [0, d); nil means math/rand/v2.
	Jitter func(d time.Duration) time.Duration

	mu       sync.Mutex
	value    T
	has      bool
	loadedAt time.Time
	failures int
	retryAt  time.Time
	lastErr  error
}

// DefaultMaxStale is MaxStale, in periods, when unset: 15 minutes with the
// 5-minute period the intake uses.
const DefaultMaxStale = 3

// DefaultLoadTimeout is LoadTimeout when unset. A read that hangs (SSM
// stalled or unreachable) gives up after it and counts as a failed read, so
// the request is answered 503 with Retry-After within the function's
// 10-second timeout, and the instance keeps its backoff instead of being
// reset by a Lambda timeout. Three one-second attempts of the SSM client fit.
const DefaultLoadTimeout = 3 * time.Second

// firstBackoff is the backoff after the first failed read.
const firstBackoff = time.Second

// Get returns the value, reading it first when it is older than Period and
// no backoff is running.
func (r *Refresher[T]) Get(ctx context.Context) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	t := now()
	if (!r.has || t.Sub(r.loadedAt) >= r.Period) && !t.Before(r.retryAt) {
		v, err := r.load(ctx)
		if err == nil {
			r.value, r.has, r.loadedAt = v, true, t
			r.failures, r.retryAt, r.lastErr = 0, time.Time{}, nil
		} else {
			r.failures++
			r.lastErr = err
			r.retryAt = t.Add(r.backoff())
		}
	}
	if r.has && t.Sub(r.loadedAt) <= r.maxStale() {
		return r.value, nil
	}
	var zero T
	if r.has {
		return zero, fmt.Errorf("%w: last read %s ago, over the %s allowed: %w", ErrSecretsUnavailable, t.Sub(r.loadedAt).Round(time.Second), r.maxStale(), r.lastErr)
	}
	return zero, fmt.Errorf("%w: %w", ErrSecretsUnavailable, r.lastErr)
}

func (r *Refresher[T]) load(ctx context.Context) (T, error) {
	timeout := r.LoadTimeout
	if timeout <= 0 {
		timeout = DefaultLoadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.Load(ctx)
}

func (r *Refresher[T]) maxStale() time.Duration {
	if r.MaxStale > 0 {
		return r.MaxStale
	}
	return DefaultMaxStale * r.Period
}

// backoff is the wait after the r.failures-th failure in a row: d/2 plus a
// random part of d/2, where d doubles from firstBackoff up to Period ("equal
// jitter": never less than half, so retries cannot bunch up at zero).
func (r *Refresher[T]) backoff() time.Duration {
	d := r.Period
	if shift := r.failures - 1; shift < 32 && firstBackoff<<shift < d {
		d = firstBackoff << shift
	}
	jitter := r.Jitter
	if jitter == nil {
		jitter = func(d time.Duration) time.Duration { return rand.N(d) }
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + jitter(half)
}
