package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/typedsession/session/store"
)

// index is a Store's per-owner index, kept in the two tables next to the
// sessions table: <table>_owners (an owner's session keys, each until the
// session's absolute deadline) and <table>_epochs (an owner's epoch).
// Entries are rows of their own, not a column of the record: a login binds
// a session after writing it, and a refresh of the record never touches
// the index.
type index struct{ s *Store }

// Index implements [store.Store]: the Store keeps a per-owner index in two
// tables next to the sessions table; see the package documentation.
func (s *Store) Index() store.Index { return index{s} }

var _ store.Index = index{}

// begin checks that the Store is open and bounds ctx for one call.
func (x index) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if x.s.closed.Load() {
		return ctx, noop, fmt.Errorf("sqlstore: %s: %w", op, errClosed)
	}
	ctx, cancel := x.s.bound(ctx)
	return ctx, cancel, nil
}

// Bind implements [store.Index]. On PostgreSQL it is one statement that
// upserts the epoch and the entry; on SQLite, the same two upserts in one
// transaction. A Bind whose expiry has passed writes nothing: it reads the
// owner's live epoch, and returns it or the one given.
func (x index) Bind(ctx context.Context, owner, key string, expiry time.Time, epoch []byte) ([]byte, error) {
	ctx, cancel, err := x.begin(ctx, "bind")
	if err != nil {
		return nil, err
	}
	defer cancel()
	now, exp := x.s.now().UnixMilli(), expiry.UnixMilli()
	if exp <= now {
		cur, err := x.s.liveEpoch(ctx, owner, now)
		if err != nil {
			return nil, wrap(ctx, "bind", err)
		}
		if cur == nil {
			cur = append([]byte{}, epoch...)
		}
		return cur, nil
	}
	var cur []byte
	if x.s.q.dialect == PostgreSQL {
		err = x.s.bind.queryRow(ctx, []byte(owner), epoch, exp, now, []byte(key)).Scan(&cur)
	} else {
		cur, err = x.bindTx(ctx, []byte(owner), []byte(key), exp, now, epoch)
	}
	if err != nil {
		return nil, wrap(ctx, "bind", err)
	}
	return cur, nil
}

// bindTx runs Bind's two upserts in one transaction. Its first statement
// writes, so even a transaction that does not begin IMMEDIATE takes the
// write lock at once, and no other writer comes between the two.
func (x index) bindTx(ctx context.Context, owner, key []byte, exp, now int64, epoch []byte) (cur []byte, err error) {
	tx, err := x.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := x.s.bindEpoch.queryRowTx(ctx, tx, owner, epoch, exp, now).Scan(&cur); err != nil {
		return nil, err
	}
	if _, err := x.s.bindEntry.execTx(ctx, tx, owner, key, exp); err != nil {
		return nil, err
	}
	return cur, tx.Commit()
}

// Unbind implements [store.Index]: one DELETE.
func (x index) Unbind(ctx context.Context, owner, key string) error {
	ctx, cancel, err := x.begin(ctx, "unbind")
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := x.s.unbind.exec(ctx, []byte(owner), []byte(key)); err != nil {
		return wrap(ctx, "unbind", err)
	}
	return nil
}

// Sessions implements [store.Index]: one SELECT that joins the owner's live
// entries to their live records. Entries whose record is gone stay until
// their expiry (the sweeper deletes them then): such an entry cannot be
// told apart from one that a login has bound and is about to write.
func (x index) Sessions(ctx context.Context, owner string) ([]store.Entry, error) {
	ctx, cancel, err := x.begin(ctx, "sessions")
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := x.s.sessions.queryRows(ctx, []byte(owner), x.s.now().UnixMilli())
	if err != nil {
		return nil, wrap(ctx, "sessions", err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var key sql.RawBytes
		var e store.Entry
		if err := rows.Scan(&key, &e.Record); err != nil {
			return nil, wrap(ctx, "sessions", err)
		}
		e.Key = string(key)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(ctx, "sessions", err)
	}
	return out, nil
}

// Epoch implements [store.Index]: one SELECT.
func (x index) Epoch(ctx context.Context, owner string) ([]byte, error) {
	ctx, cancel, err := x.begin(ctx, "epoch")
	if err != nil {
		return nil, err
	}
	defer cancel()
	cur, err := x.s.liveEpoch(ctx, owner, x.s.now().UnixMilli())
	if err != nil {
		return nil, wrap(ctx, "epoch", err)
	}
	return cur, nil
}

// liveEpoch reads owner's unexpired epoch, or nil when it has none.
func (s *Store) liveEpoch(ctx context.Context, owner string, now int64) ([]byte, error) {
	var cur []byte
	err := s.epoch.queryRow(ctx, []byte(owner), now).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return cur, err
}

// SetEpoch implements [store.Index]: one upsert, or one DELETE when epoch
// is empty.
func (x index) SetEpoch(ctx context.Context, owner string, epoch []byte, expiry time.Time) error {
	ctx, cancel, err := x.begin(ctx, "set epoch")
	if err != nil {
		return err
	}
	defer cancel()
	if len(epoch) == 0 {
		_, err = x.s.dropEpoch.exec(ctx, []byte(owner))
	} else {
		_, err = x.s.setEpoch.exec(ctx, []byte(owner), epoch, expiry.UnixMilli())
	}
	if err != nil {
		return wrap(ctx, "set epoch", err)
	}
	return nil
}
