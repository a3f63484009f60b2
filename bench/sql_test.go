package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/typedsession/session/store/sqlstore"
)

// Both libraries reach each database through the same database/sql driver
// (pgx's stdlib for PostgreSQL, modernc.org/sqlite for SQLite), opened the
// same way, so that the figures compare the libraries and not the drivers.

// sqlDB is a database opened for one implementation, with the count of the
// round trips made on it.
type sqlDB struct {
	db    *sql.DB
	trips *atomic.Int64
}

// openPostgres opens the server PG_DSN names, which must be on the loopback
// interface (the benchmarks create and drop tables there), with connections
// that count their round trips.
func openPostgres(tb testing.TB) sqlDB {
	tb.Helper()
	dsn := os.Getenv("PG_DSN")
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("PG_DSN: %v", err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		tb.Fatalf("PG_DSN: host %q is not a loopback address; the benchmarks only use local servers", u.Hostname())
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("PG_DSN: %v", err)
	}
	trips := new(atomic.Int64)
	cfg.DialFunc = countingDial(trips)
	db := stdlib.OpenDB(*cfg)
	// As sqlstore's documentation advises, for both libraries: without it
	// database/sql keeps 2 idle connections and reconnects on bursts.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	tb.Cleanup(func() { db.Close() })
	return sqlDB{db, trips}
}

// openSQLite opens a new SQLite file with the settings sqlstore's
// documentation gives (WAL, commits that do not wait for fsync, a busy
// timeout), for both libraries, with connections that count statements.
func openSQLite(tb testing.TB) sqlDB {
	tb.Helper()
	dsn := "file:" + filepath.Join(tb.TempDir(), "sessions.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	trips := new(atomic.Int64)
	db := sql.OpenDB(countingConnector{c, trips})
	tb.Cleanup(func() { db.Close() })
	return sqlDB{db, trips}
}

// tableName returns a table name no other run uses, so that runs sharing a
// server do not meet.
func tableName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// dropAtCleanup drops tables when the test or benchmark ends.
func dropAtCleanup(tb testing.TB, db *sql.DB, tables ...string) {
	tb.Cleanup(func() {
		for _, t := range tables {
			if _, err := db.Exec(`DROP TABLE IF EXISTS "` + t + `"`); err != nil {
				tb.Errorf("drop table %s: %v", t, err)
			}
		}
	})
}

// sqlStore builds this library on store/sqlstore as its documentation sets
// it up (with a Timeout), on a table of its own, with no sweeper (scs's
// cleanup goroutine is off too).
func sqlStore(tb testing.TB, d sqlDB, dialect sqlstore.Dialect) lib {
	tb.Helper()
	ctx := context.Background()
	opts := sqlstore.Options{Dialect: dialect, Table: tableName("ts_"), Timeout: time.Second, SweepInterval: -1}
	if err := sqlstore.CreateSchema(ctx, d.db, opts); err != nil {
		tb.Fatal(err)
	}
	dropAtCleanup(tb, d.db, opts.Table, opts.Table+"_owners", opts.Table+"_epochs")
	st, err := sqlstore.New(ctx, d.db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	l := ours(tb, st, nil)
	l.trips = d.trips
	return l
}

// scsSQL builds scs on its PostgreSQL or SQLite store, on a table of its
// own made with the statements of the store's README, with its cleanup
// goroutine off (as for scs-memory; sqlstore's sweeper is off too).
func scsSQL(tb testing.TB, d sqlDB, postgres bool) lib {
	tb.Helper()
	table := tableName("scs_")
	schema := []string{
		`CREATE TABLE ` + table + ` (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
		`CREATE INDEX ` + table + `_expiry_idx ON ` + table + ` (expiry)`,
	}
	if !postgres {
		schema[0] = `CREATE TABLE ` + table + ` (token TEXT PRIMARY KEY, data BLOB NOT NULL, expiry REAL NOT NULL)`
	}
	for _, q := range schema {
		if _, err := d.db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	dropAtCleanup(tb, d.db, table)
	var l lib
	if postgres {
		l = scsLib(postgresstore.NewWithConfig(d.db, postgresstore.Config{TableName: table}))
	} else {
		l = scsLib(sqlite3store.NewWithConfig(d.db, sqlite3store.Config{TableName: table}))
	}
	l.trips = d.trips
	return l
}
