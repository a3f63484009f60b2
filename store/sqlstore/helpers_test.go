package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
)

const (
	envDSN      = "PG_DSN"
	envData     = "PG_DATA"
	skipMessage = "set PG_DSN (and PG_DATA) or run `make test`, which starts a throwaway PostgreSQL"
)

// inCI reports whether a missing server must fail the test rather than skip
// it.
func inCI() bool { return os.Getenv("CI") == "true" }

// needEnv returns the environment variable env, skipping the test when it is
// unset (failing it under CI=true).
func needEnv(tb testing.TB, env string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if inCI() {
			tb.Fatalf("%s is not set: under CI=true a missing server is a failure (%s)", env, skipMessage)
		}
		tb.Skip(skipMessage)
	}
	return v
}

// openPostgres opens the server PG_DSN names, which must be on the loopback
// interface, and closes the pool when the test ends.
func openPostgres(tb testing.TB) *sql.DB {
	tb.Helper()
	dsn := needEnv(tb, envDSN)
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", envDSN, err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		tb.Fatalf("%s: host %q is not a loopback address; the tests only use local servers", envDSN, u.Hostname())
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	// As the package documentation advises: keep as many idle connections
	// as requests run at once, or each burst opens new ones.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	tb.Cleanup(func() { db.Close() })
	return db
}

// sqliteDSN is the data source name of a SQLite file as the package
// documentation recommends it: WAL, commits that do not wait for fsync, a
// busy timeout, and transactions that take the write lock at BEGIN.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// openSQLite opens a new SQLite file in a temporary directory.
func openSQLite(tb testing.TB) *sql.DB {
	tb.Helper()
	return openSQLiteAt(tb, filepath.Join(tb.TempDir(), "sessions.db"))
}

// openSQLiteAt opens the SQLite file at path, as another instance would.
func openSQLiteAt(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// dialect is one database the tests run against.
type dialect struct {
	name    string
	dialect sqlstore.Dialect
	open    func(testing.TB) *sql.DB
}

var dialects = []dialect{
	{"PostgreSQL", sqlstore.PostgreSQL, openPostgres},
	{"SQLite", sqlstore.SQLite, openSQLite},
}

// forEachDialect runs f as a subtest per dialect.
func forEachDialect(t *testing.T, f func(t *testing.T, d dialect)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { f(t, d) })
	}
}

// newTable creates a table of a name no other test uses, with CreateSchema,
// and drops it when the test ends.
func newTable(tb testing.TB, db *sql.DB, d sqlstore.Dialect) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	table := "t_" + hex.EncodeToString(b)
	ctx := context.Background()
	if err := sqlstore.CreateSchema(ctx, db, sqlstore.Options{Dialect: d, Table: table}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dropTables(tb, db, table) })
	return table
}

// dropTables drops the sessions table and the index's two tables next to
// it.
func dropTables(tb testing.TB, db *sql.DB, table string) {
	tb.Helper()
	for _, t := range []string{table, table + "_owners", table + "_epochs"} {
		if _, err := db.ExecContext(context.Background(), `DROP TABLE "`+t+`"`); err != nil {
			tb.Errorf("drop table: %v", err)
		}
	}
}

// newStore returns a Store on a table of its own, closed when the test
// ends. opts.Dialect and opts.Table are filled in.
func newStore(tb testing.TB, db *sql.DB, d sqlstore.Dialect, opts sqlstore.Options) *sqlstore.Store {
	tb.Helper()
	opts.Dialect = d
	if opts.Table == "" {
		opts.Table = newTable(tb, db, d)
	}
	s, err := sqlstore.New(context.Background(), db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// countRows returns how many rows table holds, expired ones included.
func countRows(tb testing.TB, db *sql.DB, table string) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM "`+table+`"`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// later is an expiry far enough away not to matter to a test.
func later() time.Time { return time.Now().Add(time.Hour) }

// create writes rec under key as a new record, failing the test unless it
// applied.
func create(tb testing.TB, s store.Store, key string, rec []byte, exp time.Time) {
	tb.Helper()
	ops := []store.Op{{Key: key, New: rec, Expiry: exp}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied {
		tb.Fatalf("create %s: applied %v, %v", key, ops[0].Applied, err)
	}
}

// mustLoad fails the test unless key holds want.
func mustLoad(tb testing.TB, s store.Store, key string, want []byte) {
	tb.Helper()
	got, found, err := s.Load(context.Background(), key)
	if err != nil || !found || !bytes.Equal(got, want) {
		tb.Fatalf("Load(%s) = %.40q, %v, %v; want %.40q", key, got, found, err, want)
	}
}

// poll calls f every few milliseconds until it reports true, failing the
// test with msg when limit passes first. It is for waiting on a real
// server, never on the store's own clock.
func poll(tb testing.TB, limit time.Duration, msg string, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", limit, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hasEnv reports whether the environment variable env is set.
func hasEnv(env string) bool { return os.Getenv(env) != "" }

// slack is how late past its bound a failing call may return: scheduling
// noise on a loaded machine.
const slack = 500 * time.Millisecond

// lockTable holds a lock on table, and the index's tables next to it, that
// stops writes (and, on PostgreSQL, reads) until the returned function
// releases it.
func lockTable(t *testing.T, db *sql.DB, d dialect, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	if d.dialect == sqlstore.PostgreSQL {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `LOCK TABLE "`+table+`", "`+table+`_owners", "`+table+`_epochs" IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback() }
	}
	// SQLite locks the whole file: a second pool whose transactions begin
	// EXCLUSIVE.
	var file string
	if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+file+"?_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		other.Close()
	}
}
