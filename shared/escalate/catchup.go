package escalate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/silences"
)

// catchUp sends each desk whose silence has ended (EndedAt <= now) and is
// not caught up one digest (kind digest, alert id <desk>-silence-<id>)
// listing every case it missed, then marks the silence caught up. The
// digest's delivery record makes a run that repeats this one (a failed
// MarkCaughtUp, an overlapping run) send nothing twice. A silence that
// fails is left for the next run; the others go on.
func (h *Handler) catchUp(ctx context.Context, inv *invocation, now time.Time, s *Summary) error {
	pending, err := h.silenced(ctx, inv)
	if err != nil {
		return err
	}
	var errs []error
	for _, sil := range pending {
		if !sil.CaughtUpAt.IsZero() || sil.EndedAt().Add(CatchUpGrace).After(now) {
			continue
		}
		if slices.ContainsFunc(pending, func(o silences.Silence) bool {
			return o.ContactPoint == sil.ContactPoint && o.ID != sil.ID && o.ActiveAt(now)
		}) {
			// The desk is silenced again (a holiday extended by a second
			// silence): its digest waits until it is back.
			continue
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < DeadlineMargin {
			return errors.Join(errs...)
		}
		if err := h.catchUpOne(ctx, inv, &alert.CatchUp{Silence: sil}, s); err != nil {
			errs = append(errs, fmt.Errorf("catch up silence %s of %s: %w", sil.ID, sil.ContactPoint, err))
		}
	}
	return errors.Join(errs...)
}

// CatchUpGrace is how long after a silence ends its digest waits: an
// alert function invocation that read the silences before the end (it
// reads them once, and runs up to its 30 s timeout) may still reroute a
// copy and file it as missed, and the digest must list it.
const CatchUpGrace = 2 * time.Minute

func (h *Handler) catchUpOne(ctx context.Context, inv *invocation, d *alert.CatchUp, s *Summary) error {
	log := h.log().With("contact_point", d.Silence.ContactPoint, "silence_id", d.Silence.ID, "alert_id", d.ID())
	sent, err := alert.CatchUpDelivered(ctx, h.DB, h.Table, d)
	if err != nil {
		return err
	}
	if !sent {
		if d.Missed, err = alert.MissedDuring(ctx, h.DB, h.Table, d.Silence.ContactPoint, d.Silence.ID); err != nil {
			return err
		}
		if len(d.Missed) == 0 {
			log.InfoContext(ctx, "silence ended with nothing missed: no digest")
		} else if err := h.sendCatchUp(ctx, inv, log, d); err != nil {
			return err
		} else {
			s.Digests++
			s.Published++
		}
	}
	return h.silences().MarkCaughtUp(ctx, d.Silence)
}

func (h *Handler) sendCatchUp(ctx context.Context, inv *invocation, log *slog.Logger, d *alert.CatchUp) error {
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	d.To = ids(alert.Recipients(dir, []string{alert.EU}))
	msg, err := alert.RenderCatchUp(d)
	if err != nil {
		return err
	}
	in, err := alert.CatchUpPublishInput(h.TopicARN, d, msg)
	if err != nil {
		return err
	}
	out, err := h.publishTo(ctx, d.Silence.ContactPoint, in)
	if err != nil {
		return fmt.Errorf("publish %s: %w", d.ID(), err)
	}
	log.InfoContext(ctx, "catch-up digest published", "missed", len(d.Missed), "message_id", aws.ToString(out.MessageId))
	return alert.RecordCatchUpDelivery(ctx, h.DB, h.Table, d, aws.ToString(out.MessageId), h.now())
}
