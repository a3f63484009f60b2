package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
	"github.com/typedsession/session/store/storetest"
)

// TestMain fails the package's tests if any goroutine is left running at
// the end: every sweeper stops with Close, every pool is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		clock := sessiontest.NewClock(time.Now())
		storetest.Run(t, func(t *testing.T) store.Store {
			return newStore(t, db, d.dialect, sqlstore.Options{Now: clock.Now})
		}, storetest.Options{Advance: clock.Advance, Now: clock.Now})
	})
}

// TestBinaryKeys: keys are bytes, compared as bytes: a NUL, invalid UTF-8
// and a trailing space make different keys.
func TestBinaryKeys(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newStore(t, d.open(t), d.dialect, sqlstore.Options{})
		keys := []string{"k", "k\x00", "k\xff", "k ", "K", strings.Repeat("k", 1000)}
		for i, k := range keys {
			create(t, s, k, fmt.Appendf(nil, "record %d", i), later())
		}
		for i, k := range keys {
			mustLoad(t, s, k, fmt.Appendf(nil, "record %d", i))
		}
	})
}

// TestSweep: a sweep deletes the rows that have expired, in batches, and
// only those.
func TestSweep(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		clock := sessiontest.NewClock(time.Now())
		table := newTable(t, db, d.dialect)
		s := newStore(t, db, d.dialect, sqlstore.Options{Table: table, Now: clock.Now, SweepInterval: -1})
		ctx := context.Background()
		const expiring = 2*sqlstore.SweepBatch + 7
		soon, far := clock.Now().Add(time.Minute), clock.Now().Add(time.Hour)
		// Written in a few statements, not one Write per row: this is the
		// sweep's test, not the writes'.
		insert(t, db, d.dialect, table, "old", expiring, soon)
		insert(t, db, d.dialect, table, "live", 3, far)
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("Sweep before anything expired = %d, %v; want 0", n, err)
		}
		clock.Advance(time.Minute) // the first rows expire: expiry == now
		if n, err := s.Sweep(ctx); err != nil || n != expiring {
			t.Fatalf("Sweep = %d, %v; want %d", n, err, expiring)
		}
		if n := countRows(t, db, table); n != 3 {
			t.Fatalf("%d rows left; want the 3 live ones", n)
		}
		for i := range 3 {
			mustLoad(t, s, fmt.Sprint("live", i), []byte("x"))
		}

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Sweep(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sweep with a cancelled context: %v; want context.Canceled", err)
		}
	})
}

// TestSweepIndex: a sweep deletes the index's expired entries and epochs
// too, in batches, and counts them; live ones stay.
func TestSweepIndex(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		clock := sessiontest.NewClock(time.Now())
		s := newStore(t, db, d.dialect, sqlstore.Options{Now: clock.Now, SweepInterval: -1})
		x := s.Index()
		ctx := context.Background()
		soon, far := clock.Now().Add(time.Minute), clock.Now().Add(time.Hour)
		const owners = sqlstore.SweepBatch + 3 // an entry and an epoch each
		for i := range owners {
			if _, err := x.Bind(ctx, fmt.Sprint("owner", i), "k", soon, []byte("e")); err != nil {
				t.Fatal(err)
			}
		}
		create(t, s, "live", []byte("r"), far)
		if _, err := x.Bind(ctx, "stays", "live", far, []byte("e")); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("Sweep before anything expired = %d, %v; want 0", n, err)
		}
		clock.Advance(time.Minute)
		if n, err := s.Sweep(ctx); err != nil || n != 2*owners {
			t.Fatalf("Sweep = %d, %v; want %d", n, err, 2*owners)
		}
		if list, err := x.Sessions(ctx, "stays"); err != nil || len(list) != 1 {
			t.Fatalf("Sessions after the sweep = %v, %v; want the live one", list, err)
		}
		if ep, err := x.Epoch(ctx, "stays"); err != nil || string(ep) != "e" {
			t.Fatalf("Epoch after the sweep = %q, %v", ep, err)
		}
	})
}

// insert writes n rows prefix0... with the record "x" straight into table.
func insert(t *testing.T, db *sql.DB, d sqlstore.Dialect, table, prefix string, n int, exp time.Time) {
	t.Helper()
	p := "$"
	if d == sqlstore.SQLite {
		p = "?"
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		_, err := tx.Exec(`INSERT INTO "`+table+`" (key, record, expiry) VALUES (`+p+`1, `+p+`2, `+p+`3)`,
			[]byte(fmt.Sprint(prefix, i)), []byte("x"), exp.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepKeepsRevived: a create that takes the place of an expired row
// makes it live again; a sweep that runs at the same time leaves it.
func TestSweepKeepsRevived(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		clock := sessiontest.NewClock(time.Now())
		s := newStore(t, db, d.dialect, sqlstore.Options{Now: clock.Now, SweepInterval: -1})
		ctx := context.Background()
		const keys = 50
		for round := range 5 {
			for i := range keys {
				create(t, s, fmt.Sprint(i), []byte("old"), clock.Now().Add(time.Second))
			}
			clock.Advance(time.Second)
			var wg sync.WaitGroup
			wg.Go(func() {
				if _, err := s.Sweep(ctx); err != nil {
					t.Error(err)
				}
			})
			for i := range keys {
				create(t, s, fmt.Sprint(i), fmt.Appendf(nil, "new %d", round), clock.Now().Add(time.Hour))
			}
			wg.Wait()
			for i := range keys {
				mustLoad(t, s, fmt.Sprint(i), fmt.Appendf(nil, "new %d", round))
				// Gone again for the next round.
				ops := []store.Op{{Key: fmt.Sprint(i), Old: fmt.Appendf(nil, "new %d", round)}}
				if err := s.Write(ctx, ops); err != nil || !ops[0].Applied {
					t.Fatal(ops[0].Applied, err)
				}
			}
		}
	})
}

// TestNewChecksTable: a table that is missing, or lacks a column, is an
// error at construction that matches ErrSchema and says what to do.
func TestNewChecksTable(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		ctx := context.Background()
		_, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: d.dialect, Table: "no_such_table"})
		if !errors.Is(err, sqlstore.ErrSchema) || !strings.Contains(err.Error(), "CreateSchema") {
			t.Fatalf("New on a missing table: %v; want ErrSchema, naming CreateSchema", err)
		}
		t.Log(err)

		// Another program's sessions table, with a column of another name.
		table := "t_other_sessions"
		if _, err := db.ExecContext(ctx, `CREATE TABLE `+table+` (key bytea PRIMARY KEY, data bytea, expiry bigint)`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.ExecContext(ctx, `DROP TABLE `+table) })
		if _, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: d.dialect, Table: table}); !errors.Is(err, sqlstore.ErrSchema) {
			t.Fatalf("New on a table without the record column: %v; want ErrSchema", err)
		}

		// A sessions table made before the per-owner index was: each of
		// the index's tables missing is ErrSchema, naming that table, and
		// CreateSchema adds it.
		opts := sqlstore.Options{Dialect: d.dialect, Table: newTable(t, db, d.dialect)}
		for _, suffix := range []string{"_owners", "_epochs"} {
			if _, err := db.ExecContext(ctx, `DROP TABLE "`+opts.Table+suffix+`"`); err != nil {
				t.Fatal(err)
			}
			_, err := sqlstore.New(ctx, db, opts)
			if !errors.Is(err, sqlstore.ErrSchema) || !strings.Contains(err.Error(), opts.Table+suffix) {
				t.Fatalf("New without the %s table: %v; want ErrSchema, naming it", suffix, err)
			}
			if err := sqlstore.CreateSchema(ctx, db, opts); err != nil {
				t.Fatal(err)
			}
			s, err := sqlstore.New(ctx, db, opts)
			if err != nil {
				t.Fatalf("New after CreateSchema: %v", err)
			}
			s.Close()
		}
	})
}

// TestNewOnClosedDB: a database that cannot be reached is an error at
// construction too, but not ErrSchema.
func TestNewOnClosedDB(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		db.Close()
		_, err := sqlstore.New(context.Background(), db, sqlstore.Options{Dialect: d.dialect})
		if err == nil || errors.Is(err, sqlstore.ErrSchema) {
			t.Fatalf("New on a closed pool: %v; want an error other than ErrSchema", err)
		}
	})
}

// TestOptionsRefused: a table name that is not a plain identifier, or no
// dialect, is refused before any statement runs.
func TestOptionsRefused(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	bad := []string{
		`x; DROP TABLE y`, `x"`, `"x"`, `x--`, `x y`, `X`, `Sessions`, `1x`, `a.b`, `x'`,
		`sqlite_master`, strings.Repeat("x", 49), "x\x00", "é",
	}
	for _, table := range bad {
		opts := sqlstore.Options{Dialect: sqlstore.SQLite, Table: table}
		if _, err := sqlstore.New(ctx, db, opts); err == nil || errors.Is(err, sqlstore.ErrSchema) {
			t.Errorf("New with table %q: %v; want the name refused", table, err)
		}
		if err := sqlstore.CreateSchema(ctx, db, opts); err == nil {
			t.Errorf("CreateSchema with table %q: no error", table)
		}
		if _, err := sqlstore.Schema(opts); err == nil {
			t.Errorf("Schema with table %q: no error", table)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the database holds %d objects, %v; want none", n, err)
	}
	for _, d := range []sqlstore.Dialect{0, 3} {
		if _, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: d}); err == nil {
			t.Errorf("New with dialect %v: no error", d)
		}
	}
	if _, err := sqlstore.New(ctx, nil, sqlstore.Options{Dialect: sqlstore.SQLite}); err == nil {
		t.Error("New with a nil *sql.DB: no error")
	}
}

// TestTableNames: the longest name allowed, a keyword and the default all
// work; CreateSchema can run again, and from several callers at once.
func TestTableNames(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		ctx := context.Background()
		for _, table := range []string{"order", "_" + strings.Repeat("x", 47), sqlstore.DefaultTable} {
			opts := sqlstore.Options{Dialect: d.dialect, Table: table}
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					if err := sqlstore.CreateSchema(ctx, db, opts); err != nil {
						t.Errorf("CreateSchema(%s): %v", table, err)
					}
				})
			}
			wg.Wait()
			if err := sqlstore.CreateSchema(ctx, db, opts); err != nil {
				t.Fatalf("CreateSchema(%s) again: %v", table, err)
			}
			s, err := sqlstore.New(ctx, db, opts)
			if err != nil {
				t.Fatal(err)
			}
			create(t, s, "k", []byte("r"), later())
			mustLoad(t, s, "k", []byte("r"))
			s.Close()
			dropTables(t, db, table)
		}
	})
}

// TestSchemaDocumented: the package documentation shows the statements
// Schema returns for the default table, as they are.
func TestSchemaDocumented(t *testing.T) {
	raw, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// The documentation's code blocks, without the comment markers and
	// their indentation.
	var doc strings.Builder
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimPrefix(line, "//")
		line = strings.TrimPrefix(line, "\t")
		doc.WriteString(line)
	}
	for _, d := range []sqlstore.Dialect{sqlstore.PostgreSQL, sqlstore.SQLite} {
		sql, err := sqlstore.Schema(sqlstore.Options{Dialect: d})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(doc.String(), sql) {
			t.Errorf("doc.go does not show the %v schema as Schema returns it:\n%s", d, sql)
		}
	}
}

// TestSweeper: the sweeper deletes expired rows every SweepInterval. The
// bubble's clock is fake, so a minute passes at once.
func TestSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openSQLite(t)
		table := newTable(t, db, sqlstore.SQLite)
		s := newStore(t, db, sqlstore.SQLite, sqlstore.Options{Table: table, SweepInterval: time.Minute})
		for i := range 3 {
			create(t, s, fmt.Sprint(i), []byte("r"), time.Now().Add(30*time.Second))
		}
		create(t, s, "live", []byte("r"), time.Now().Add(2*time.Hour))
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if n := countRows(t, db, table); n != 4 {
			t.Fatalf("%d rows before the first sweep; want 4", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := countRows(t, db, table); n != 1 {
			t.Fatalf("%d rows after the first sweep; want the live one", n)
		}
		s.Close()
	})
}

// TestClose: Close stops the sweeper, even in the middle of a sweep, and
// leaves no goroutine behind; it may be called again; calls after it fail,
// and the *sql.DB stays open.
func TestClose(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		table := newTable(t, db, d.dialect)
		before := goleak.IgnoreCurrent()
		s := newStore(t, db, d.dialect, sqlstore.Options{Table: table, SweepInterval: time.Millisecond})
		create(t, s, "k", []byte("r"), later())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		goleak.VerifyNone(t, before)
		ctx := context.Background()
		if _, _, err := s.Load(ctx, "k"); err == nil {
			t.Error("Load after Close: no error")
		}
		if err := s.Write(ctx, []store.Op{{Key: "k", Old: []byte("r")}}); err == nil {
			t.Error("Write after Close: no error")
		}
		if _, err := s.Sweep(ctx); err == nil {
			t.Error("Sweep after Close: no error")
		}
		x := s.Index()
		if _, err := x.Bind(ctx, "o", "k", later(), []byte("e")); err == nil {
			t.Error("Bind after Close: no error")
		}
		if _, err := x.Sessions(ctx, "o"); err == nil {
			t.Error("Sessions after Close: no error")
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatalf("the pool after Close: %v", err)
		}
	})
}
