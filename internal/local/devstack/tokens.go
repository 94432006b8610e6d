package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/tokens"
)

// TokensPath serves the stack's tokens as {"<contact point>": "<token>"}.
// It exists only in the local stack, for developers and browser tests to
// call the case API as any desk: a deployment shows a token once, when
// `flagline contacts token create` makes it, and never serves one.
const TokensPath = "/_dev/tokens.json"

// createTokens makes one case API token per contact point of dir, with the
// store the CLI and the cases function use, after the directory is in the
// table (a token is issued only to a stored contact point).
func (s *Stack) createTokens(ctx context.Context, dir *contacts.Directory) error {
	store := &tokens.Store{DB: dynamodb.NewFromConfig(s.AWS), Table: s.Locals.Refs["Table"]}
	for _, cp := range dir.ContactPoints {
		token, _, err := store.Create(ctx, cp.ID)
		if err != nil {
			return fmt.Errorf("token for %s: %w", cp.ID, err)
		}
		s.Tokens[cp.ID] = token
	}
	return nil
}

// serveTokens answers TokensPath only to a request from this machine that
// names this machine: its remote address is a loopback address, and its Host
// is localhost or a loopback address (any port). The Host check stops DNS
// rebinding: a web page on a name that its owner re-points at 127.0.0.1
// reaches the server from the browser's loopback address, but its requests
// carry that name as Host. Anything else is 403.
func (s *Stack) serveTokens(w http.ResponseWriter, r *http.Request) {
	if !loopbackAddr(r.RemoteAddr) || !loopbackHost(r.Host) {
		http.Error(w, "the tokens are served only to http://localhost or a loopback address on this machine", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.Tokens)
}

// loopbackAddr reports whether a request's RemoteAddr ("ip:port") is a
// loopback address (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6).
func loopbackAddr(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a loopback address literal, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if strings.Contains(host, "%") { // a zone names an interface, not this machine
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
