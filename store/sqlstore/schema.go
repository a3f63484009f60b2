package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrSchema reports that the table a Store was given is missing, or lacks a
// column the Store uses. [CreateSchema] makes it.
var ErrSchema = errors.New("sqlstore: the session table is missing or incomplete")

// tableName is what Options.Table may be: a lower-case identifier that
// needs no quoting rules beyond double quotes, short enough that the index
// names made from it stay within PostgreSQL's 63 bytes.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

// queries are the statements of one dialect on one table.
type queries struct {
	dialect Dialect
	table   string // validated, unquoted
	schema  []string

	load, create, replace, delete, sweep string
}

func newQueries(opts Options) (queries, error) {
	table := opts.Table
	if table == "" {
		table = DefaultTable
	}
	if !tableName.MatchString(table) || strings.HasPrefix(table, "sqlite_") {
		return queries{}, fmt.Errorf("sqlstore: Options.Table %q is not a lower-case identifier of at most 48 characters (a-z, 0-9, _, not starting with a digit or sqlite_)", table)
	}
	// The table name is quoted as well as checked, so that a name that is
	// also a keyword (order, user) works.
	t := `"` + table + `"`
	var p func(int) string // the n-th parameter
	q := queries{dialect: opts.Dialect, table: table}
	switch opts.Dialect {
	case PostgreSQL:
		p = func(n int) string { return fmt.Sprintf("$%d", n) }
		q.schema = []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	key    bytea  PRIMARY KEY,
	record bytea  NOT NULL,
	expiry bigint NOT NULL,
	owner  bytea
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_expiry" ON ` + t + ` (expiry)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_owner" ON ` + t + ` (owner) WHERE owner IS NOT NULL`,
		}
	case SQLite:
		// ?NNN binds the NNN-th argument in every SQLite driver.
		p = func(n int) string { return fmt.Sprintf("?%d", n) }
		q.schema = []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	key    BLOB    PRIMARY KEY NOT NULL,
	record BLOB    NOT NULL,
	expiry INTEGER NOT NULL,
	owner  BLOB
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_expiry" ON ` + t + ` (expiry)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_owner" ON ` + t + ` (owner) WHERE owner IS NOT NULL`,
		}
	default:
		return queries{}, fmt.Errorf("sqlstore: Options.Dialect is %v; want PostgreSQL or SQLite", opts.Dialect)
	}
	q.load = `SELECT record FROM ` + t + ` WHERE key = ` + p(1) + ` AND expiry > ` + p(2)
	// A create inserts, or takes the place of an expired row: the update
	// of a conflicting row applies only when that row has expired.
	q.create = `INSERT INTO ` + t + ` (key, record, expiry) VALUES (` + p(1) + `, ` + p(2) + `, ` + p(3) + `)
ON CONFLICT (key) DO UPDATE SET record = excluded.record, expiry = excluded.expiry, owner = NULL
WHERE ` + t + `.expiry <= ` + p(4)
	q.replace = `UPDATE ` + t + ` SET record = ` + p(1) + `, expiry = ` + p(2) +
		` WHERE key = ` + p(3) + ` AND record = ` + p(4) + ` AND expiry > ` + p(5)
	q.delete = `DELETE FROM ` + t + ` WHERE key = ` + p(1) + ` AND record = ` + p(2) + ` AND expiry > ` + p(3)
	// The outer condition is checked again on the row itself: a row that a
	// create made live again after the inner SELECT saw it expired stays.
	q.sweep = fmt.Sprintf(`DELETE FROM %[1]s WHERE key IN (SELECT key FROM %[1]s WHERE expiry <= %[2]s LIMIT %[3]d) AND expiry <= %[2]s`,
		t, p(1), SweepBatch)
	return q, nil
}

// Schema returns the statements CreateSchema runs for opts.Dialect and
// opts.Table, separated by semicolons: the table and its indexes, each
// created only if it does not exist. For those who apply schema changes
// with a migration tool of their own.
func Schema(opts Options) (string, error) {
	q, err := newQueries(opts)
	if err != nil {
		return "", err
	}
	return strings.Join(q.schema, ";\n") + ";\n", nil
}

// CreateSchema creates the table that opts names and its indexes in db,
// unless they exist already; the package documentation shows the
// statements. It is safe to call at every start, from several instances at
// once: on PostgreSQL it holds a transaction-scoped advisory lock while it
// runs, so that concurrent first runs do not collide.
func CreateSchema(ctx context.Context, db *sql.DB, opts Options) error {
	q, err := newQueries(opts)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create schema: %w", err)
	}
	defer tx.Rollback()
	if q.dialect == PostgreSQL {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "typedsession/sqlstore:"+q.table); err != nil {
			return fmt.Errorf("sqlstore: create schema: %w", err)
		}
	}
	for _, stmt := range q.schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: create schema: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create schema: %w", err)
	}
	return nil
}

// checkTable makes sure the table is there with every column the Store
// reads or writes.
func (s *Store) checkTable(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT key, record, expiry, owner FROM "`+s.q.table+`" WHERE 1 = 0`)
	if err == nil {
		err = rows.Close()
	}
	switch {
	case err == nil:
		return nil
	case isUndefined(err):
		return fmt.Errorf("%w: table %q (create it with sqlstore.CreateSchema, or with the SQL in the package documentation): %w",
			ErrSchema, s.q.table, err)
	}
	return wrap(ctx, "checking the table", err)
}

// isUndefined reports whether err is the database's answer to a table or a
// column that does not exist: SQLSTATE 42P01 or 42703 on PostgreSQL (every
// common driver's error has a SQLState method), "no such table" or "no such
// column" on SQLite.
func isUndefined(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		code := state.SQLState()
		return code == "42P01" || code == "42703"
	}
	msg := err.Error()
	return strings.Contains(msg, "no such table") || strings.Contains(msg, "no such column")
}

// checkBusyTimeout warns when SQLite connections would fail at once, rather
// than wait, on a lock another connection holds.
func (s *Store) checkBusyTimeout(ctx context.Context) {
	if s.db.Stats().MaxOpenConnections == 1 {
		return // one connection: no lock to wait for within this process
	}
	var ms int64
	if err := s.db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&ms); err == nil && ms == 0 {
		s.logger.Warn("sqlstore: SQLite busy_timeout is 0: concurrent writes will fail with SQLITE_BUSY; " +
			"set it on every connection (modernc.org/sqlite: ?_pragma=busy_timeout(5000)) or call db.SetMaxOpenConns(1)")
	}
}
