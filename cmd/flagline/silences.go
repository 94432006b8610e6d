package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flagline/flagline/shared/silences"
)

func init() {
	commands["silences"] = command{summary: "silence a contact point for a while (its alerts go to the EU coordinator)", run: runSilences}
}

const silencesUsage = `usage: flagline silences add    --contact-point ID --until TIME --reason TEXT [--table NAME]
       flagline silences list   [--contact-point ID] [--table NAME]
       flagline silences expire --contact-point ID --silence-id ID [--table NAME]

add silences a contact point of the stored contact directory from now
until TIME: an RFC 3339 time (2026-12-24T08:00:00+01:00) or a duration
from now in whole minutes, hours or days (90m, 12h, 3d), at most 90 days.
While it is silenced, the alerts it would get go to the EU coordinator,
marked as such; when the silence ends it gets one digest of what it
missed. The EU coordinator itself cannot be silenced.

list prints the silences that are active or still owe their digest.
expire ends a silence now; expiring an ended silence changes nothing.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

flags:
`

// silencesOptions are the parsed flags of "flagline silences …".
type silencesOptions struct {
	contactPoint string
	silenceID    string
	until        time.Time
	reason       string
	table        string
}

// parseUntil reads TIME: RFC 3339, or Nm, Nh or Nd from now.
func parseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	units := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	if len(s) >= 2 {
		if unit, ok := units[s[len(s)-1]]; ok {
			n, err := strconv.Atoi(s[:len(s)-1])
			if err == nil && n > 0 && n <= 1_000_000 && s[0] != '+' {
				return now.Add(time.Duration(n) * unit), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("--until %q is neither an RFC 3339 time (2026-12-24T08:00:00Z) nor a duration like 90m, 12h or 3d", s)
}

func parseSilencesFlags(sub string, args []string, now time.Time, stderr io.Writer) (*silencesOptions, error) {
	o := &silencesOptions{}
	fs := newFlagSet("silences "+sub, silencesUsage, stderr)
	var until string
	if sub == "list" {
		fs.StringVar(&o.contactPoint, "contact-point", "", "`id` of a contact point, to list only its silences")
	} else {
		fs.StringVar(&o.contactPoint, "contact-point", "", "`id` of the contact point (required)")
	}
	tableFlag(fs, &o.table)
	switch sub {
	case "add":
		fs.StringVar(&until, "until", "", "end of the silence: RFC 3339 `time`, or 90m, 12h, 3d from now (required)")
		fs.StringVar(&o.reason, "reason", "", "why, for the coordinator who gets the desk's alerts (required)")
	case "expire":
		fs.StringVar(&o.silenceID, "silence-id", "", "`id` of the silence, as list shows it (required)")
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	var missing missingFlags
	missing.need(sub == "list" || o.contactPoint != "", "--contact-point")
	missing.need(sub != "add" || until != "", "--until")
	missing.need(sub != "add" || strings.TrimSpace(o.reason) != "", "--reason")
	missing.need(sub != "expire" || o.silenceID != "", "--silence-id")
	missing.need(resolveTable(&o.table), missingTable)
	if err := missing.err(); err != nil {
		return nil, err
	}
	if sub == "add" {
		t, err := parseUntil(until, now)
		if err != nil {
			return nil, usageError{err}
		}
		o.until = t
	}
	return o, nil
}

func runSilences(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "subcommand", silencesUsage, stderr, "add", "list", "expire")
	if err != nil {
		return err
	}
	o, err := parseSilencesFlags(sub, args[1:], time.Now(), stderr)
	if err != nil {
		return err
	}
	db, err := dynamoDB(ctx)
	if err != nil {
		return err
	}
	store := &silences.Store{DB: db, Table: o.table}
	switch sub {
	case "add":
		return addSilence(ctx, store, o, operator(), stdout)
	case "list":
		return listSilences(ctx, store, o.contactPoint, time.Now(), stdout)
	default:
		return expireSilence(ctx, store, o, stdout)
	}
}

// operator names who added a silence from the command line.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func addSilence(ctx context.Context, store *silences.Store, o *silencesOptions, createdBy string, stdout io.Writer) error {
	sil, err := store.Add(ctx, o.contactPoint, o.until, o.reason, createdBy)
	switch {
	case errors.Is(err, silences.ErrNoContactPoint):
		return fmt.Errorf("contact point %q is not in the contact directory stored in %s; add it to the file and run flagline contacts apply first", o.contactPoint, store.Table)
	case errors.Is(err, silences.ErrCoordinator):
		return fmt.Errorf("%s is an EU coordinator, where silenced desks' alerts go: it cannot be silenced", o.contactPoint)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "Silenced %s until %s (silence %s): its alerts go to the EU coordinator meanwhile, then it gets one digest of what it missed.\n"+
		"End it early with flagline silences expire --contact-point %s --silence-id %s.\n",
		sil.ContactPoint, sil.Until.Format(time.RFC3339), sil.ID, sil.ContactPoint, sil.ID)
	return nil
}

func listSilences(ctx context.Context, store *silences.Store, contactPoint string, now time.Time, stdout io.Writer) error {
	list, err := store.List(ctx, contactPoint)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No silences.")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CONTACT POINT\tSILENCE ID\tFROM\tUNTIL\tSTATE\tCREATED BY\tREASON")
	for _, s := range list {
		state := "active"
		if !s.EndedAt().After(now) {
			state = "ended " + s.EndedAt().UTC().Format(time.RFC3339) + ", digest pending"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ContactPoint, s.ID, s.From.UTC().Format(time.RFC3339),
			s.Until.UTC().Format(time.RFC3339), state, s.CreatedBy, strings.Join(strings.Fields(s.Reason), " "))
	}
	return w.Flush()
}

func expireSilence(ctx context.Context, store *silences.Store, o *silencesOptions, stdout io.Writer) error {
	sil, err := store.Expire(ctx, o.contactPoint, o.silenceID)
	switch {
	case errors.Is(err, silences.ErrNotFound):
		return fmt.Errorf("%s has no silence %s (see flagline silences list --contact-point %s)", o.contactPoint, o.silenceID, o.contactPoint)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "Silence %s of %s ended at %s; its digest of missed alerts follows.\n", sil.ID, sil.ContactPoint, sil.EndedAt().UTC().Format(time.RFC3339))
	return nil
}
