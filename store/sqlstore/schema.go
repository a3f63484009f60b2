package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrSchema reports that a table the Store uses (the sessions table, or one
// of the two of the per-owner index next to it) is missing, or lacks a
// column the Store uses. [CreateSchema] makes them.
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
	check   []string // one SELECT per table, of every column the Store uses

	load, create, replace, delete string
	sweep                         []string // one per table

	// The per-owner index. On PostgreSQL bind is one statement; on SQLite,
	// which has no INSERT inside a WITH, it is bindEpoch then bindEntry in
	// one transaction.
	bind, bindEpoch, bindEntry, liveEpoch string
	unbind, sessions, epoch               string
	setEpoch, dropEpoch                   string
}

func newQueries(opts Options) (queries, error) {
	table := opts.Table
	if table == "" {
		table = DefaultTable
	}
	if !tableName.MatchString(table) || strings.HasPrefix(table, "sqlite_") {
		return queries{}, fmt.Errorf("sqlstore: Options.Table %q is not a lower-case identifier of at most 48 characters (a-z, 0-9, _, not starting with a digit or sqlite_)", table)
	}
	// The table names are quoted as well as checked, so that a name that
	// is also a keyword (order, user) works.
	t := `"` + table + `"`
	o := `"` + table + `_owners"`
	e := `"` + table + `_epochs"`
	var p func(int) string // the n-th parameter
	var greatest string    // the larger of two values
	q := queries{dialect: opts.Dialect, table: table}
	switch opts.Dialect {
	case PostgreSQL:
		p = func(n int) string { return fmt.Sprintf("$%d", n) }
		greatest = "GREATEST"
		q.schema = []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	key    bytea  PRIMARY KEY,
	record bytea  NOT NULL,
	expiry bigint NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_expiry" ON ` + t + ` (expiry)`,
			`CREATE TABLE IF NOT EXISTS ` + o + ` (
	owner  bytea  NOT NULL,
	key    bytea  NOT NULL,
	expiry bigint NOT NULL,
	PRIMARY KEY (owner, key)
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_owners_expiry" ON ` + o + ` (expiry)`,
			`CREATE TABLE IF NOT EXISTS ` + e + ` (
	owner  bytea  PRIMARY KEY,
	epoch  bytea  NOT NULL,
	expiry bigint NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_epochs_expiry" ON ` + e + ` (expiry)`,
		}
	case SQLite:
		// ?NNN binds the NNN-th argument in every SQLite driver.
		p = func(n int) string { return fmt.Sprintf("?%d", n) }
		greatest = "max"
		// The owners table is WITHOUT ROWID: its rows are then stored in
		// the order of the primary key, so an owner's entries sit
		// together and are not kept a second time in the key's index.
		q.schema = []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	key    BLOB    PRIMARY KEY NOT NULL,
	record BLOB    NOT NULL,
	expiry INTEGER NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_expiry" ON ` + t + ` (expiry)`,
			`CREATE TABLE IF NOT EXISTS ` + o + ` (
	owner  BLOB    NOT NULL,
	key    BLOB    NOT NULL,
	expiry INTEGER NOT NULL,
	PRIMARY KEY (owner, key)
) WITHOUT ROWID`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_owners_expiry" ON ` + o + ` (expiry)`,
			`CREATE TABLE IF NOT EXISTS ` + e + ` (
	owner  BLOB    PRIMARY KEY NOT NULL,
	epoch  BLOB    NOT NULL,
	expiry INTEGER NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS "` + table + `_epochs_expiry" ON ` + e + ` (expiry)`,
		}
	default:
		return queries{}, fmt.Errorf("sqlstore: Options.Dialect is %v; want PostgreSQL or SQLite", opts.Dialect)
	}
	q.check = []string{
		`SELECT key, record, expiry FROM ` + t + ` WHERE 1 = 0`,
		`SELECT owner, key, expiry FROM ` + o + ` WHERE 1 = 0`,
		`SELECT owner, epoch, expiry FROM ` + e + ` WHERE 1 = 0`,
	}
	q.load = `SELECT record FROM ` + t + ` WHERE key = ` + p(1) + ` AND expiry > ` + p(2)
	// A create inserts, or takes the place of an expired row: the update
	// of a conflicting row applies only when that row has expired.
	q.create = `INSERT INTO ` + t + ` (key, record, expiry) VALUES (` + p(1) + `, ` + p(2) + `, ` + p(3) + `)
ON CONFLICT (key) DO UPDATE SET record = excluded.record, expiry = excluded.expiry
WHERE ` + t + `.expiry <= ` + p(4)
	q.replace = `UPDATE ` + t + ` SET record = ` + p(1) + `, expiry = ` + p(2) +
		` WHERE key = ` + p(3) + ` AND record = ` + p(4) + ` AND expiry > ` + p(5)
	q.delete = `DELETE FROM ` + t + ` WHERE key = ` + p(1) + ` AND record = ` + p(2) + ` AND expiry > ` + p(3)
	// The outer condition is checked again on the row itself: a row that a
	// write made live again after the inner SELECT saw it expired stays.
	// (A row value IN a subquery works on both dialects.)
	q.sweep = []string{
		fmt.Sprintf(`DELETE FROM %[1]s WHERE key IN (SELECT key FROM %[1]s WHERE expiry <= %[2]s LIMIT %[3]d) AND expiry <= %[2]s`,
			t, p(1), SweepBatch),
		fmt.Sprintf(`DELETE FROM %[1]s WHERE (owner, key) IN (SELECT owner, key FROM %[1]s WHERE expiry <= %[2]s LIMIT %[3]d) AND expiry <= %[2]s`,
			o, p(1), SweepBatch),
		fmt.Sprintf(`DELETE FROM %[1]s WHERE owner IN (SELECT owner FROM %[1]s WHERE expiry <= %[2]s LIMIT %[3]d) AND expiry <= %[2]s`,
			e, p(1), SweepBatch),
	}

	// Bind's epoch: inserted, or kept when the owner has a live one, or
	// replaced when the owner's has expired; its expiry never moves
	// earlier. Every SET expression reads the row as it was, and the
	// conflicting row is locked while they run (on SQLite the whole
	// database is), so concurrent binds of one owner all return the epoch
	// that the first of them stored.
	q.bindEpoch = `INSERT INTO ` + e + ` (owner, epoch, expiry) VALUES (` + p(1) + `, ` + p(2) + `, ` + p(3) + `)
ON CONFLICT (owner) DO UPDATE SET
	epoch = CASE WHEN ` + e + `.expiry <= ` + p(4) + ` THEN excluded.epoch ELSE ` + e + `.epoch END,
	expiry = ` + greatest + `(` + e + `.expiry, excluded.expiry)
RETURNING epoch`
	entry := func(owner, key, expiry int) string {
		return `INSERT INTO ` + o + ` (owner, key, expiry) VALUES (` + p(owner) + `, ` + p(key) + `, ` + p(expiry) + `)
ON CONFLICT (owner, key) DO UPDATE SET expiry = excluded.expiry`
	}
	q.bindEntry = entry(1, 2, 3)
	// On PostgreSQL the two are one statement: one round trip, and one
	// implicit transaction.
	q.bind = `WITH e AS (
` + q.bindEpoch + `
), k AS (
` + entry(1, 5, 3) + `
)
SELECT epoch FROM e`
	q.liveEpoch = `SELECT epoch FROM ` + e + ` WHERE owner = ` + p(1) + ` AND expiry > ` + p(2)
	q.epoch = q.liveEpoch
	q.unbind = `DELETE FROM ` + o + ` WHERE owner = ` + p(1) + ` AND key = ` + p(2)
	// The entries and their records in one statement: entries whose record
	// is gone or expired are left out by the join.
	q.sessions = `SELECT o.key, s.record FROM ` + o + ` o JOIN ` + t + ` s ON s.key = o.key
WHERE o.owner = ` + p(1) + ` AND o.expiry > ` + p(2) + ` AND s.expiry > ` + p(2)
	// A new epoch keeps the later of the two expiries: the one it replaces
	// may be carried by sessions that outlive the expiry given. An expired
	// one's expiry is in the past, so the larger is the new one's.
	q.setEpoch = `INSERT INTO ` + e + ` (owner, epoch, expiry) VALUES (` + p(1) + `, ` + p(2) + `, ` + p(3) + `)
ON CONFLICT (owner) DO UPDATE SET epoch = excluded.epoch, expiry = ` + greatest + `(` + e + `.expiry, excluded.expiry)`
	q.dropEpoch = `DELETE FROM ` + e + ` WHERE owner = ` + p(1)
	return q, nil
}

// Schema returns the statements CreateSchema runs for opts.Dialect and
// opts.Table, separated by semicolons: the sessions table, the two tables
// of the per-owner index (named after it, with _owners and _epochs) and
// their indexes, each created only if it does not exist. For those who
// apply schema changes with a migration tool of their own.
func Schema(opts Options) (string, error) {
	q, err := newQueries(opts)
	if err != nil {
		return "", err
	}
	return strings.Join(q.schema, ";\n") + ";\n", nil
}

// CreateSchema creates the table that opts names, the per-owner index's two
// tables next to it, and their indexes in db, unless they exist already; the package documentation shows the
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

// checkTable makes sure the tables are there with every column the Store
// reads or writes.
func (s *Store) checkTable(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	names := []string{s.q.table, s.q.table + "_owners", s.q.table + "_epochs"}
	for i, query := range s.q.check {
		rows, err := s.db.QueryContext(ctx, query)
		if err == nil {
			err = rows.Close()
		}
		switch {
		case err == nil:
			continue
		case isUndefined(err):
			return fmt.Errorf("%w: table %q (create it with sqlstore.CreateSchema, or with the SQL in the package documentation): %w",
				ErrSchema, names[i], err)
		}
		return wrap(ctx, "checking the table", err)
	}
	return nil
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
