package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/tokens"
)

const tokenUsage = `usage: flagline contacts token create --contact-point ID [--table NAME]
       flagline contacts token list   --contact-point ID [--table NAME]
       flagline contacts token revoke --contact-point ID --token-id ID [--table NAME]

create issues a bearer token for the case API to a contact point of the
contact directory stored in the table (flagline contacts apply stores it).
The token is printed once, alone on stdout; only its SHA-256 is stored, so
it cannot be shown again: a lost token is revoked and replaced. The desk
sends it as "Authorization: Bearer <token>".

list prints the contact point's tokens (id, created, revoked), never a
token nor its hash. revoke stops a token at once; revoking a revoked token
changes nothing.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

flags:
`

// tokenOptions are the parsed flags of "flagline contacts token …".
type tokenOptions struct {
	contactPoint string
	tokenID      string
	table        string
}

func parseTokenFlags(sub string, args []string, stderr io.Writer) (*tokenOptions, error) {
	o := &tokenOptions{}
	fs := newFlagSet("contacts token "+sub, tokenUsage, stderr)
	fs.StringVar(&o.contactPoint, "contact-point", "", "`id` of the contact point (required)")
	tableFlag(fs, &o.table)
	if sub == "revoke" {
		fs.StringVar(&o.tokenID, "token-id", "", "`id` of the token to revoke, as list shows it (required)")
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	var missing missingFlags
	missing.need(o.contactPoint != "", "--contact-point")
	missing.need(sub != "revoke" || o.tokenID != "", "--token-id")
	missing.need(resolveTable(&o.table), missingTable)
	if err := missing.err(); err != nil {
		return nil, err
	}
	return o, nil
}

func runContactsToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "token subcommand", tokenUsage, stderr, "create", "list", "revoke")
	if err != nil {
		return err
	}
	o, err := parseTokenFlags(sub, args[1:], stderr)
	if err != nil {
		return err
	}
	db, err := dynamoDB(ctx)
	if err != nil {
		return err
	}
	store := &tokens.Store{DB: db, Table: o.table}
	switch sub {
	case "create":
		return createToken(ctx, store, db, o.contactPoint, stdout, stderr)
	case "list":
		return listTokens(ctx, store, o.contactPoint, stdout)
	default:
		return revokeToken(ctx, store, o.contactPoint, o.tokenID, stdout)
	}
}

// createToken prints the token alone on stdout (so that it can be piped or
// captured) and what to know about it on stderr.
func createToken(ctx context.Context, store *tokens.Store, dir contacts.TableReader, contactPoint string, stdout, stderr io.Writer) error {
	token, info, err := store.Create(ctx, contactPoint)
	if errors.Is(err, tokens.ErrNoContactPoint) {
		known := "none"
		if cps, lerr := contacts.StoredContactPoints(ctx, dir, store.Table); lerr == nil && len(cps) > 0 {
			ids := make([]string, len(cps))
			for i, cp := range cps {
				ids[i] = cp.ID
			}
			known = strings.Join(ids, ", ")
		}
		return fmt.Errorf("contact point %q is not in the contact directory stored in %s (stored: %s); add it to the file and run flagline contacts apply first",
			contactPoint, store.Table, known)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Created token %s for %s. Store it now: it will not be shown again (only its hash is kept).\n"+
		"Send it as \"Authorization: Bearer <token>\"; revoke it with flagline contacts token revoke --contact-point %s --token-id %s.\n",
		info.ID, contactPoint, contactPoint, info.ID)
	fmt.Fprintln(stdout, token)
	return nil
}

func listTokens(ctx context.Context, store *tokens.Store, contactPoint string, stdout io.Writer) error {
	infos, err := store.List(ctx, contactPoint)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintf(stdout, "No tokens for %s.\n", contactPoint)
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tCREATED\tREVOKED")
	for _, i := range infos {
		revoked := "-"
		if i.Revoked() {
			revoked = i.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", i.ID, i.CreatedAt.UTC().Format(time.RFC3339), revoked)
	}
	return w.Flush()
}

func revokeToken(ctx context.Context, store *tokens.Store, contactPoint, tokenID string, stdout io.Writer) error {
	// Read first only to say what happened: Revoke itself is idempotent.
	var before tokens.Info
	if infos, err := store.List(ctx, contactPoint); err == nil {
		for _, i := range infos {
			if i.ID == tokenID {
				before = i
			}
		}
	}
	err := store.Revoke(ctx, contactPoint, tokenID)
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		return fmt.Errorf("%s has no token %s (see flagline contacts token list --contact-point %s)", contactPoint, tokenID, contactPoint)
	case err != nil:
		return err
	case before.Revoked():
		fmt.Fprintf(stdout, "Token %s of %s was already revoked at %s; nothing changed.\n", tokenID, contactPoint, before.RevokedAt.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(stdout, "Revoked token %s of %s: it is refused from now on.\n", tokenID, contactPoint)
	}
	return nil
}
