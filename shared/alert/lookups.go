package alert

import (
	"context"
	"fmt"

	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
)

// Lookups reads what every copy of an invocation needs, once per
// invocation: the stored contact directory and the silences not yet caught
// up. The alert function and the escalate function both keep one per
// invocation; nothing survives it.
type Lookups struct {
	dir     []contacts.ContactPoint
	dirRead bool

	silenced     []silences.Silence
	silencedRead bool
}

// Directory is the stored contact directory (contacts.StoredContactPoints),
// read at the first call.
func (l *Lookups) Directory(ctx context.Context, db contacts.TableReader, table string) ([]contacts.ContactPoint, error) {
	if !l.dirRead {
		dir, err := contacts.StoredContactPoints(ctx, db, table)
		if err != nil {
			return nil, err
		}
		l.dir, l.dirRead = dir, true
	}
	return l.dir, nil
}

// Silenced is what src lists as pending (one GetItem and one BatchGetItem
// with silences.Store), read at the first call.
func (l *Lookups) Silenced(ctx context.Context, src Silences) ([]silences.Silence, error) {
	if !l.silencedRead {
		ss, err := src.Pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
		l.silenced, l.silencedRead = ss, true
	}
	return l.silenced, nil
}
