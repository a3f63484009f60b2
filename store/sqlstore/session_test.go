package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/internal/sitetest"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
)

// The end-to-end tests run the demo's routes through the manager and the
// middleware against each database.

// TestRaces runs concurrent requests of one session through the middleware:
// none loses a write silently.
func TestRaces(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		racetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
			return newStore(t, db, d.dialect, sqlstore.Options{Now: now, Timeout: 5 * time.Second})
		})
	})
}

// TestOwners binds, lists and revokes sessions through two instances, each
// with a pool of its own on one database (on SQLite, one file): a
// revocation on one takes effect on the other's next request.
func TestOwners(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		racetest.Owners(t, func(t *testing.T, now func() time.Time) (store.Store, store.Store) {
			var db1, db2 *sql.DB
			if d.dialect == sqlstore.SQLite {
				path := filepath.Join(t.TempDir(), "sessions.db")
				db1, db2 = openSQLiteAt(t, path), openSQLiteAt(t, path)
			} else {
				db1, db2 = d.open(t), d.open(t)
			}
			opts := sqlstore.Options{Table: newTable(t, db1, d.dialect), Now: now, Timeout: 5 * time.Second, SweepInterval: -1}
			return newStore(t, db1, d.dialect, opts), newStore(t, db2, d.dialect, opts)
		})
	})
}

// site is the demo's routes on one dialect's table.
type site struct {
	*sitetest.Site
	t     *testing.T
	db    *sql.DB
	table string
	store *sqlstore.Store
}

func newSite(t *testing.T, d dialect, opts session.Options) *site {
	t.Helper()
	s := &site{t: t, db: d.open(t)}
	clock := sessiontest.NewClock(time.Now().Truncate(time.Millisecond))
	s.table = newTable(t, s.db, d.dialect)
	s.store = newStore(t, s.db, d.dialect, sqlstore.Options{
		Table: s.table, Now: clock.Now, Timeout: 300 * time.Millisecond, SweepInterval: -1,
	})
	s.Site = sitetest.New(t, s.store, clock, opts)
	return s
}

// row is one row of the site's table.
type row struct {
	key, record []byte
	expiry      time.Time
}

// rows returns every row of the site's table, expired ones included.
func (s *site) rows() []row {
	s.t.Helper()
	rs, err := s.db.QueryContext(context.Background(), `SELECT key, record, expiry FROM "`+s.table+`" ORDER BY expiry`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var ms int64
		if err := rs.Scan(&r.key, &r.record, &ms); err != nil {
			s.t.Fatal(err)
		}
		r.expiry = time.UnixMilli(ms)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// audit checks what a dump of the table would show: no key or record holds
// a token the site handed out.
func (s *site) audit() {
	s.t.Helper()
	for _, r := range s.rows() {
		for _, tok := range s.Tokens() {
			if bytes.Contains(r.key, []byte(tok)) || bytes.Contains(r.record, []byte(tok)) {
				s.t.Errorf("row %q (or its record) contains a session token", r.key)
			}
		}
	}
}

// shortLived counts the rows that expire within RotationGrace: markers of
// retired tokens.
func (s *site) shortLived() int {
	n := 0
	for _, r := range s.rows() {
		if r.expiry.Sub(s.Clock.Now()) <= session.DefaultRotationGrace {
			n++
		}
	}
	return n
}

func TestSessionLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newSite(t, d, session.Options{})
		if a := s.Do("GET", "/whoami", nil); a.Code != 200 || a.SetCookie != "" || len(s.rows()) != 0 {
			t.Fatalf("anonymous read: %+v, %d rows; want no cookie and no row", a, len(s.rows()))
		}
		for want := 1; want <= 3; want++ {
			if a := s.Do("GET", "/", nil); a.Counter != want {
				t.Fatalf("counter = %d, want %d", a.Counter, want)
			}
		}
		before := s.Token()
		if a := s.Do("POST", "/login", url.Values{"user": {"ann"}}); a.User != "ann" || s.Token() == before {
			t.Fatalf("login: %+v; want a new token", a)
		}
		if rows := s.rows(); len(rows) != 2 || s.shortLived() != 1 {
			t.Fatalf("after regenerate the table holds %d rows, %d short-lived; want the session and a marker", len(rows), s.shortLived())
		}
		if a := s.Do("GET", "/whoami", nil); a.User != "ann" || a.Counter != 3 {
			t.Fatalf("whoami after login = %+v", a)
		}
		s.audit()
		s.Do("POST", "/logout", nil)
		if rows := s.rows(); len(rows) != 1 || s.shortLived() != 1 {
			t.Fatalf("after logout the table holds %d rows; want only the login's marker", len(rows))
		}
		if a := s.Do("GET", "/whoami", nil); a.User != "" || a.Counter != 0 {
			t.Fatalf("after logout whoami = %+v", a)
		}
		// The marker expires; the sweeper's statement removes it.
		s.Clock.Advance(session.DefaultRotationGrace)
		if n, err := s.store.Sweep(context.Background()); err != nil || n != 1 || len(s.rows()) != 0 {
			t.Fatalf("Sweep = %d, %v, %d rows left; want the marker gone", n, err, len(s.rows()))
		}
		if errs := s.Srv.Errors(); len(errs) != 0 {
			t.Fatalf("errors: %v", errs)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newSite(t, d, session.Options{Lifetime: time.Hour, IdleTimeout: 20 * time.Minute})
		s.Do("GET", "/", nil)
		rows := s.rows()
		if len(rows) != 1 || rows[0].expiry.Sub(s.Clock.Now()) != 20*time.Minute {
			t.Fatalf("rows %+v; want one, expiring with the idle timeout", rows)
		}
		s.Clock.Advance(21 * time.Minute)
		if a := s.Do("GET", "/whoami", nil); a.Counter != 0 {
			t.Fatalf("idle session alive: %+v", a)
		}
		// Absolute: activity every 10 minutes does not get past an hour.
		s.Do("GET", "/", nil)
		for range 5 {
			s.Clock.Advance(10 * time.Minute)
			if a := s.Do("GET", "/whoami", nil); a.Counter != 1 {
				t.Fatalf("active session lost: %+v", a)
			}
		}
		s.Clock.Advance(10 * time.Minute)
		if a := s.Do("GET", "/whoami", nil); a.Counter != 0 {
			t.Fatalf("session outlived its absolute lifetime: %+v", a)
		}
		s.audit()
		// Every row the two sessions left has expired by now.
		if _, err := s.store.Sweep(context.Background()); err != nil || len(s.rows()) != 0 {
			t.Fatalf("Sweep: %v, %d rows left; want none", err, len(s.rows()))
		}
	})
}

// TestSessionStoreBlocked: a table locked by another transaction makes
// requests fail promptly through the error handler (Options.Timeout), with
// no cookie and nothing written over the stored session; once the lock is
// gone the same site serves again.
func TestSessionStoreBlocked(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newSite(t, d, session.Options{})
		s.Do("POST", "/login", url.Values{"user": {"bo"}})
		s.Do("GET", "/", nil)
		stored := s.rows()

		release := lockTable(t, s.db, d, s.table)
		for range 2 {
			start := time.Now()
			a := s.Do("GET", "/", nil)
			if a.Code != http.StatusServiceUnavailable || a.SetCookie != "" {
				t.Fatalf("GET / with the table locked: %+v; want the error handler and no cookie", a)
			}
			if took := time.Since(start); took > 300*time.Millisecond+slack {
				t.Fatalf("GET / with the table locked took %v", took)
			}
		}
		release()
		if got := s.rows(); len(got) != len(stored) || !bytes.Equal(got[len(got)-1].record, stored[len(stored)-1].record) {
			t.Fatal("the stored session changed while the table was locked")
		}
		if a := s.Do("GET", "/", nil); a.Code != 200 || a.Counter != 2 {
			t.Fatalf("after the lock: %+v", a)
		}
		for _, err := range s.Srv.Errors() {
			if !errors.Is(err, session.ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v; want session.ErrStore and context.DeadlineExceeded", err)
			}
		}
	})
}
