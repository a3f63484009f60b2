package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// Sweep deletes every row that has expired by the Store's clock (records,
// and the per-owner index's entries and epochs), SweepBatch rows per
// statement, until a statement deletes fewer or ctx ends, and returns how
// many rows it deleted in all. Expired rows are never returned anyway;
// Sweep frees their space. The sweeper calls it every
// Options.SweepInterval; call it yourself when the sweeper is off.
//
// A sweep never deletes a live row: a row that a write made live again
// while the sweep ran is left alone.
func (s *Store) Sweep(ctx context.Context) (deleted int64, err error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("sqlstore: sweep: %w", errClosed)
	}
	for i := range s.sweep {
		for {
			n, err := s.sweepBatch(ctx, s.sweep[i])
			deleted += n
			if err != nil {
				return deleted, wrap(ctx, "sweep", err)
			}
			if err := ctx.Err(); err != nil {
				return deleted, wrap(ctx, "sweep", err)
			}
			if n < SweepBatch {
				break
			}
		}
	}
	return deleted, nil
}

// sweepBatch runs one statement of a sweep, bounded by Options.Timeout.
func (s *Store) sweepBatch(ctx context.Context, st stmt) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res, err := st.exec(ctx, s.now().UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweeper sweeps every interval until ctx ends (Close), logging failures.
func (s *Store) sweeper(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("sqlstore: sweep failed", "table", s.q.table, "err", err)
			}
		}
	}
}
