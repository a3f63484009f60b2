package session

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Outcome says what happened to a session when it was loaded or committed.
type Outcome string

// Outcomes of a load.
const (
	Hit         Outcome = "hit"         // a live session
	Miss        Outcome = "miss"        // no record (or a token of the wrong shape)
	Expired     Outcome = "expired"     // past a deadline
	Unreadable  Outcome = "unreadable"  // sealed with a key this instance lacks, or tampered
	Undecodable Outcome = "undecodable" // opened, but not a T (another version of it)
	Revoked     Outcome = "revoked"     // its owner signed it out
	Retired     Outcome = "retired"     // its token was replaced by a login
)

// Outcomes of a commit.
const (
	Unchanged Outcome = "unchanged" // nothing to write
	Created   Outcome = "created"   // a new session
	Saved     Outcome = "saved"     // changes written
	Refreshed Outcome = "refreshed" // only the idle deadline moved
	Merged    Outcome = "merged"    // written after merging another request's changes
	Rotated   Outcome = "rotated"   // a new token (Regenerate, Login)
	Deleted   Outcome = "deleted"   // ended (Destroy)
	Conflict  Outcome = "conflict"  // not written: ErrConflict
	Failed    Outcome = "failed"    // not done: the store failed (ErrStore) or worse
	Late      Outcome = "late"      // changed after the response started, not saved: ErrLate
)

// Event is what an [Observer] learns about one load or commit.
type Event struct {
	// Commit is false for a load, true for a commit.
	Commit bool

	// Outcome is what happened.
	Outcome Outcome

	// Duration is how long the load or commit took, store calls included.
	Duration time.Duration

	// Size is the length in bytes of the record read (a load) or written
	// (a commit), sealed as the store keeps it; 0 when there was none.
	Size int

	// Merges counts the merges with other requests' changes before a
	// commit was written or refused.
	Merges int

	// Err is the error of a Failed or Conflict outcome.
	Err error
}

// Observer learns what the manager did with each session, for logs,
// metrics or traces. Enabled is asked first, so an observer that is off
// costs almost nothing; both must be safe for concurrent use and quick, as
// they run in the request. Events never hold a token.
type Observer interface {
	Enabled(ctx context.Context) bool
	Observe(ctx context.Context, e Event)
}

// LogObserver returns an Observer that logs each event to logger at debug
// level (nil means slog.Default()), so it costs a level check when debug
// logging is off. It is the default when Options.Observer is nil.
func LogObserver(logger *slog.Logger) Observer { return logObserver{logger} }

type logObserver struct{ l *slog.Logger }

func (o logObserver) logger() *slog.Logger {
	if o.l == nil {
		return slog.Default()
	}
	return o.l
}

func (o logObserver) Enabled(ctx context.Context) bool {
	return o.logger().Enabled(ctx, slog.LevelDebug)
}

func (o logObserver) Observe(ctx context.Context, e Event) {
	what := "session load"
	if e.Commit {
		what = "session commit"
	}
	attrs := []slog.Attr{slog.String("outcome", string(e.Outcome)), slog.Duration("took", e.Duration)}
	if e.Size > 0 {
		attrs = append(attrs, slog.Int("size", e.Size))
	}
	if e.Merges > 0 {
		attrs = append(attrs, slog.Int("merges", e.Merges))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	o.logger().LogAttrs(ctx, slog.LevelDebug, what, attrs...)
}

// observeLoad reports the load s just did, which started at start.
func (s *Scope[T]) observeLoad(start time.Time) {
	e := Event{Outcome: s.outcome, Duration: time.Since(start), Size: s.size}
	switch {
	case s.err != nil:
		e.Outcome, e.Err = Failed, s.err
	case s.found:
		e.Outcome = Hit
	case e.Outcome != "":
	case s.base.md.marker():
		e.Outcome = Retired
	case len(s.base.raw) > 0:
		e.Outcome = Undecodable
	default:
		e.Outcome = Miss
	}
	s.m.observer.Observe(s.ctx, e)
}

// observeCommit reports the commit s just did, which started at start.
func (s *Scope[T]) observeCommit(ctx context.Context, start time.Time, err error) {
	e := Event{Commit: true, Outcome: s.outcome, Duration: time.Since(start), Size: s.size, Merges: s.merges, Err: err}
	switch {
	case errors.Is(err, ErrConflict):
		e.Outcome = Conflict
	case errors.Is(err, ErrLate):
		e.Outcome = Late
	case err != nil:
		e.Outcome = Failed
	case e.Outcome == "":
		e.Outcome = Unchanged
	}
	s.m.observer.Observe(ctx, e)
}
