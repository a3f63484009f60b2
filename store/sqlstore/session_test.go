package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/middleware"
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

type sess struct {
	User    string
	Counter int
}

type site struct {
	t       *testing.T
	db      *sql.DB
	table   string
	store   *sqlstore.Store
	clock   *sessiontest.Clock
	mgr     *session.Manager[sess]
	srv     *httptest.Server
	mu      sync.Mutex
	errs    []error
	tokens  []string // every token the site handed out
	browser *http.Client
}

func newSite(t *testing.T, d dialect, opts session.Options) *site {
	t.Helper()
	s := &site{t: t, db: d.open(t), clock: sessiontest.NewClock(time.Now().Truncate(time.Millisecond))}
	s.table = newTable(t, s.db, d.dialect)
	s.store = newStore(t, s.db, d.dialect, sqlstore.Options{
		Table: s.table, Now: s.clock.Now, Timeout: 300 * time.Millisecond, SweepInterval: -1,
	})
	ring, err := cipher.NewRing(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts.Cipher = ring
	opts.Now = s.clock.Now
	s.mgr, err = session.New[sess](s.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		p := s.mgr.Get(r)
		p.Counter++
		json.NewEncoder(w).Encode(map[string]any{"counter": p.Counter})
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		p := s.mgr.Get(r)
		json.NewEncoder(w).Encode(map[string]any{"user": p.User, "counter": p.Counter})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if s.mgr.Regenerate(r) != nil {
			return
		}
		s.mgr.Get(r).User = r.FormValue("user")
		json.NewEncoder(w).Encode(map[string]any{"user": s.mgr.Get(r).User})
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		s.mgr.Destroy(r)
		json.NewEncoder(w).Encode(map[string]any{"user": ""})
	})
	h := middleware.New(s.mgr, middleware.Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
	}})(mux)
	s.srv = httptest.NewTLSServer(h)
	t.Cleanup(s.srv.Close)
	s.browser = s.srv.Client()
	s.browser.Jar, _ = cookiejar.New(nil)
	return s
}

type answer struct {
	code      int
	user      string
	counter   int
	setCookie string
}

func (s *site) do(method, path string, form url.Values) answer {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := s.browser.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body struct {
		User    string
		Counter int
	}
	json.Unmarshal(raw, &body)
	a := answer{code: res.StatusCode, user: body.User, counter: body.Counter, setCookie: res.Header.Get("Set-Cookie")}
	if a.setCookie != "" {
		v, _, _ := strings.Cut(a.setCookie, ";")
		_, tok, _ := strings.Cut(v, "=")
		if tok != "" {
			s.tokens = append(s.tokens, tok)
		}
	}
	return a
}

// cookie returns the browser's session cookie value.
func (s *site) cookie() string {
	u, _ := url.Parse(s.srv.URL)
	for _, c := range s.browser.Jar.Cookies(u) {
		if c.Name == s.mgr.CookieName() {
			return c.Value
		}
	}
	return ""
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
		for _, tok := range s.tokens {
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
		if r.expiry.Sub(s.clock.Now()) <= session.DefaultRotationGrace {
			n++
		}
	}
	return n
}

func TestSessionLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newSite(t, d, session.Options{})
		if a := s.do("GET", "/whoami", nil); a.code != 200 || a.setCookie != "" || len(s.rows()) != 0 {
			t.Fatalf("anonymous read: %+v, %d rows; want no cookie and no row", a, len(s.rows()))
		}
		for want := 1; want <= 3; want++ {
			if a := s.do("GET", "/", nil); a.counter != want {
				t.Fatalf("counter = %d, want %d", a.counter, want)
			}
		}
		before := s.cookie()
		if a := s.do("POST", "/login", url.Values{"user": {"ann"}}); a.user != "ann" || s.cookie() == before {
			t.Fatalf("login: %+v; want a new token", a)
		}
		if rows := s.rows(); len(rows) != 2 || s.shortLived() != 1 {
			t.Fatalf("after regenerate the table holds %d rows, %d short-lived; want the session and a marker", len(rows), s.shortLived())
		}
		if a := s.do("GET", "/whoami", nil); a.user != "ann" || a.counter != 3 {
			t.Fatalf("whoami after login = %+v", a)
		}
		s.audit()
		s.do("POST", "/logout", nil)
		if rows := s.rows(); len(rows) != 1 || s.shortLived() != 1 {
			t.Fatalf("after logout the table holds %d rows; want only the login's marker", len(rows))
		}
		if a := s.do("GET", "/whoami", nil); a.user != "" || a.counter != 0 {
			t.Fatalf("after logout whoami = %+v", a)
		}
		// The marker expires; the sweeper's statement removes it.
		s.clock.Advance(session.DefaultRotationGrace)
		if n, err := s.store.Sweep(context.Background()); err != nil || n != 1 || len(s.rows()) != 0 {
			t.Fatalf("Sweep = %d, %v, %d rows left; want the marker gone", n, err, len(s.rows()))
		}
		if len(s.errs) != 0 {
			t.Fatalf("errors: %v", s.errs)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		s := newSite(t, d, session.Options{Lifetime: time.Hour, IdleTimeout: 20 * time.Minute})
		s.do("GET", "/", nil)
		rows := s.rows()
		if len(rows) != 1 || rows[0].expiry.Sub(s.clock.Now()) != 20*time.Minute {
			t.Fatalf("rows %+v; want one, expiring with the idle timeout", rows)
		}
		s.clock.Advance(21 * time.Minute)
		if a := s.do("GET", "/whoami", nil); a.counter != 0 {
			t.Fatalf("idle session alive: %+v", a)
		}
		// Absolute: activity every 10 minutes does not get past an hour.
		s.do("GET", "/", nil)
		for range 5 {
			s.clock.Advance(10 * time.Minute)
			if a := s.do("GET", "/whoami", nil); a.counter != 1 {
				t.Fatalf("active session lost: %+v", a)
			}
		}
		s.clock.Advance(10 * time.Minute)
		if a := s.do("GET", "/whoami", nil); a.counter != 0 {
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
		s.do("POST", "/login", url.Values{"user": {"bo"}})
		s.do("GET", "/", nil)
		stored := s.rows()

		release := lockTable(t, s.db, d, s.table)
		for range 2 {
			start := time.Now()
			a := s.do("GET", "/", nil)
			if a.code != http.StatusServiceUnavailable || a.setCookie != "" {
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
		if a := s.do("GET", "/", nil); a.code != 200 || a.counter != 2 {
			t.Fatalf("after the lock: %+v", a)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			if !errors.Is(err, session.ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v; want session.ErrStore and context.DeadlineExceeded", err)
			}
		}
	})
}
