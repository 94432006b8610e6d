package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flagline/flagline/shared/webhook"
)

// ErrRefused: an endpoint Flagline will not call (not https on AWS, a
// non-public address, credentials in the URL). Never retried.
var ErrRefused = errors.New("outcome endpoint refused")

// Policy says which endpoints may be called. On AWS (Local false) only
// https URLs, and only public addresses: the dialer refuses every address
// that is not global unicast or lies in a private, shared or special range
// (the instance metadata service at 169.254.169.254, the VPC's own
// addresses, loopback), checked on the address actually dialled, after
// DNS, so a name that resolves to a private address is refused too.
// Locally (Local true: the functions point at a local AWS) http is allowed
// to loopback addresses, which are then dialled as well.
type Policy struct {
	Local bool
}

// CheckURL refuses a URL the policy does not allow, before any dial.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not a URL", ErrRefused)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials in the URL", ErrRefused)
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: no host", ErrRefused)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !p.Local || !loopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%w: %s endpoint must be https (http only to loopback when run locally)", ErrRefused, u.Scheme)
		}
	default:
		return nil, fmt.Errorf("%w: scheme %q is not https", ErrRefused, u.Scheme)
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !p.allowed(ip) {
		return nil, fmt.Errorf("%w: address %s is not public", ErrRefused, ip)
	}
	return u, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// globalUnicast6 is the only IPv6 space dialled: 2000::/3, the global
// unicast space IANA allocates to the regional registries
// (https://www.iana.org/assignments/ipv6-unicast-address-assignments).
// Everything else is refused, among it the IPv4-compatible (::/96),
// IPv4-mapped (::ffff:0:0/96, checked as the IPv4 address it holds) and
// SIIT-translated (::ffff:0:0:0/96) forms, NAT64 (64:ff9b::/96),
// discard (100::/64), unique local (fc00::/7) and link-local (fe80::/10)
// addresses.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// nonPublic are the special-purpose ranges (RFC 6890 and successors, the
// IANA special-purpose address registries) that the checks above do not
// already cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: may reach any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("2001::/23"),      // IETF protocol assignments
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds any IPv4 address
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
}

// allowed reports whether ip may be dialled.
func (p Policy) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if p.Local && ip.IsLoopback() {
		return true
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return false
	}
	for _, n := range nonPublic {
		if n.Contains(ip) {
			return false
		}
	}
	return true
}

// control is the dialer's Control hook: it runs after DNS, on the address
// about to be dialled, for every connection (redirects are not followed).
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if !p.allowed(ip) {
		return fmt.Errorf("%w: address %s is not public", ErrRefused, ip)
	}
	return nil
}

// Timeouts of one POST.
const (
	DialTimeout = 5 * time.Second
	PostTimeout = 10 * time.Second
)

// Client is the HTTP client that POSTs outcomes under policy p: no proxy
// from the environment (the dial check must see the endpoint itself), no
// redirect followed (a 3xx is the endpoint's answer), PostTimeout for the
// whole exchange.
func (p Policy) Client() *http.Client {
	d := &net.Dialer{Timeout: DialTimeout, Control: p.control}
	return &http.Client{
		Timeout: PostTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   DialTimeout,
			ResponseHeaderTimeout: PostTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Endpoints gives a source's outcome endpoint URL ("" for none).
type Endpoints interface {
	Endpoint(ctx context.Context, source string) (string, error)
}

// InlineEndpoints are the endpoints of FLAGLINE_OUTCOME_ENDPOINTS.
type InlineEndpoints map[string]string

// Endpoint implements Endpoints.
func (e InlineEndpoints) Endpoint(_ context.Context, source string) (string, error) {
	return e[source], nil
}

// ParseEndpoints parses FLAGLINE_OUTCOME_ENDPOINTS, {"<source>":"<url>"},
// checking every name and URL against p. Errors name the source, not the
// URL (which may carry a token in its path).
func ParseEndpoints(data string, p Policy) (InlineEndpoints, error) {
	var raw map[string]string
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		return nil, errors.New(`outcome endpoints must be a JSON object such as {"demo":"https://forms.example/outcomes"}`)
	}
	out := make(InlineEndpoints, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !webhook.ValidSourceName(name) {
			return nil, fmt.Errorf("outcome endpoint source name %q must be lower-case letters, digits, - or _", name)
		}
		if _, err := p.CheckURL(raw[name]); err != nil {
			return nil, fmt.Errorf("outcome endpoint of source %q: %w", name, err)
		}
		out[name] = raw[name]
	}
	return out, nil
}

// SSMEndpoints reads one String parameter per source, <Path>/<source>,
// whose value is the endpoint URL, every TTL (webhook.Refresher: backoff
// after a failed read, fail closed past MaxStale). A parameter whose URL
// the policy refuses is kept: its deliveries are parked with the reason.
type SSMEndpoints struct {
	Client webhook.ParameterReader
	Path   string
	TTL    time.Duration
	Log    *slog.Logger

	r *webhook.Refresher[map[string]string]
}

// NewSSMEndpoints makes the store.
func NewSSMEndpoints(client webhook.ParameterReader, path string, ttl time.Duration, log *slog.Logger) *SSMEndpoints {
	s := &SSMEndpoints{Client: client, Path: strings.TrimSuffix(path, "/"), TTL: ttl, Log: log}
	s.r = &webhook.Refresher[map[string]string]{Load: s.load, Period: ttl}
	return s
}

// Endpoint implements Endpoints.
func (s *SSMEndpoints) Endpoint(ctx context.Context, source string) (string, error) {
	all, err := s.r.Get(ctx)
	if err != nil {
		return "", err
	}
	return all[source], nil
}

// maxResultsByPath: "Valid Range: Minimum value of 1. Maximum value of 10."
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
const maxResultsByPath = 10

func (s *SSMEndpoints) load(ctx context.Context) (map[string]string, error) {
	prefix := s.Path + "/"
	out := map[string]string{}
	in := &webhook.GetParametersByPathInput{Path: s.Path, MaxResults: maxResultsByPath}
	for first := true; first || in.NextToken != ""; first = false {
		page, err := s.Client.GetParametersByPath(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read outcome endpoints under %s: %w", prefix, err)
		}
		in.NextToken = page.NextToken
		for _, param := range page.Parameters {
			name := strings.TrimPrefix(param.Name, prefix)
			if !webhook.ValidSourceName(name) {
				if s.Log != nil {
					s.Log.Warn("outcome endpoints: parameter skipped", "parameter", param.Name, "reason", "not a source name")
				}
				continue
			}
			out[name] = strings.TrimSpace(param.Value)
		}
	}
	return out, nil
}
