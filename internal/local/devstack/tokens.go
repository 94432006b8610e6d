package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

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

func (s *Stack) serveTokens(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.Tokens)
}
