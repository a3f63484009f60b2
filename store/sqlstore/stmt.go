package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmt is one of a Store's statements: prepared once, when the dialect's
// drivers do not keep prepared statements themselves, or sent as text.
//
// SQLite drivers (modernc.org/sqlite, mattn/go-sqlite3) compile a
// statement's text on every call unless it is prepared, which doubles the
// cost of a Load. PostgreSQL drivers such as pgx cache prepared statements
// per connection by themselves, and a Store that prepared its own would
// get in the way of the driver's settings for poolers that cannot keep
// prepared statements (PgBouncer in transaction mode).
type stmt struct {
	db    *sql.DB
	query string
	prep  *sql.Stmt // nil: sent as text
}

func (s stmt) exec(ctx context.Context, args ...any) (sql.Result, error) {
	if s.prep != nil {
		return s.prep.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, s.query, args...)
}

func (s stmt) queryRow(ctx context.Context, args ...any) *sql.Row {
	if s.prep != nil {
		return s.prep.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, s.query, args...)
}

// tx returns the statement as part of tx.
func (s stmt) tx(ctx context.Context, tx *sql.Tx) *sql.Stmt {
	if s.prep != nil {
		return tx.StmtContext(ctx, s.prep)
	}
	return nil
}

// queryRowTx runs the statement in tx and returns its one row.
func (s stmt) queryRowTx(ctx context.Context, tx *sql.Tx, args ...any) *sql.Row {
	if p := s.tx(ctx, tx); p != nil {
		return p.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.query, args...)
}

// execTx runs the statement in tx.
func (s stmt) execTx(ctx context.Context, tx *sql.Tx, args ...any) (sql.Result, error) {
	if p := s.tx(ctx, tx); p != nil {
		return p.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.query, args...)
}

// queryRows runs the statement and returns its rows.
func (s stmt) queryRows(ctx context.Context, args ...any) (*sql.Rows, error) {
	if s.prep != nil {
		return s.prep.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, s.query, args...)
}

// statements pairs each of the Store's statements with its text; those the
// dialect does not use are left out.
func (s *Store) statements() []struct {
	dst   *stmt
	query string
} {
	type pair = struct {
		dst   *stmt
		query string
	}
	list := []pair{
		{&s.load, s.q.load},
		{&s.create, s.q.create},
		{&s.replace, s.q.replace},
		{&s.delete, s.q.delete},
		{&s.unbind, s.q.unbind},
		{&s.sessions, s.q.sessions},
		{&s.epoch, s.q.epoch},
		{&s.setEpoch, s.q.setEpoch},
		{&s.dropEpoch, s.q.dropEpoch},
	}
	for i := range s.sweep {
		list = append(list, pair{&s.sweep[i], s.q.sweep[i]})
	}
	if s.q.dialect == SQLite {
		list = append(list, pair{&s.bindEpoch, s.q.bindEpoch}, pair{&s.bindEntry, s.q.bindEntry})
	} else {
		list = append(list, pair{&s.bind, s.q.bind})
	}
	return list
}

// prepare sets up the Store's statements, preparing them on SQLite.
func (s *Store) prepare(ctx context.Context) error {
	for _, st := range s.statements() {
		*st.dst = stmt{db: s.db, query: st.query}
		if s.q.dialect != SQLite {
			continue
		}
		p, err := s.db.PrepareContext(ctx, st.query)
		if err != nil {
			s.closeStatements()
			return fmt.Errorf("sqlstore: preparing statements: %w", err)
		}
		st.dst.prep = p
	}
	return nil
}

// closeStatements releases the prepared statements.
func (s *Store) closeStatements() error {
	var errs []error
	for _, st := range s.statements() {
		if st.dst.prep != nil {
			errs = append(errs, st.dst.prep.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}
