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

// prepare sets up the Store's statements, preparing them on SQLite.
func (s *Store) prepare(ctx context.Context) error {
	for _, st := range []struct {
		dst   *stmt
		query string
	}{
		{&s.load, s.q.load},
		{&s.create, s.q.create},
		{&s.replace, s.q.replace},
		{&s.delete, s.q.delete},
		{&s.sweep, s.q.sweep},
	} {
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
	for _, st := range []*stmt{&s.load, &s.create, &s.replace, &s.delete, &s.sweep} {
		if st.prep != nil {
			errs = append(errs, st.prep.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}
