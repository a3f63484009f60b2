package valkeystore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/valkeystore"
)

// The end-to-end tests run the demo's routes through the manager and the
// middleware against a real server, standalone and cluster.

type sess struct {
	User    string
	Counter int
}

type site struct {
	t       *testing.T
	client  valkey.Client
	prefix  string
	clock   *sessiontest.Clock
	mgr     *session.Manager[sess]
	srv     *httptest.Server
	mu      sync.Mutex
	errs    []error
	tokens  []string // every token the site handed out
	browser *http.Client
}

func newSite(t *testing.T, client valkey.Client, opts session.Options, vopts valkeystore.Options) *site {
	t.Helper()
	s := &site{t: t, client: client, clock: sessiontest.NewClock(time.Now())}
	s.prefix = uniquePrefix(t, client)
	vopts.Prefix = s.prefix
	if vopts.Timeout == 0 {
		vopts.Timeout = 500 * time.Millisecond
	}
	ring, err := cipher.NewRing(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts.Cipher = ring
	opts.Now = s.clock.Now
	s.mgr, err = session.New[sess](valkeystore.New(client, vopts), opts)
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

// keys lists the site's keys on the server, with SCAN.
func (s *site) keys() []string {
	return scanKeys(s.t, context.Background(), s.client, s.prefix)
}

// audit checks what a dump of the server would show: every key has a TTL,
// and no key or value holds a token the site handed out.
func (s *site) audit() {
	s.t.Helper()
	checkTTLs(s.t, s.client, s.prefix)
	ctx := context.Background()
	for _, k := range s.keys() {
		v, err := s.client.Do(ctx, s.client.B().Get().Key(k).Build()).AsBytes()
		if err != nil && !valkey.IsValkeyNil(err) {
			s.t.Fatal(err)
		}
		for _, tok := range s.tokens {
			if strings.Contains(k, tok) || bytes.Contains(v, []byte(tok)) {
				s.t.Errorf("key %s (or its value) contains a session token", k)
			}
		}
	}
}

// shortLived counts the keys that expire within RotationGrace: markers of
// retired tokens.
func (s *site) shortLived() int {
	s.t.Helper()
	n := 0
	for _, k := range s.keys() {
		ms, err := s.client.Do(context.Background(), s.client.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			s.t.Fatal(err)
		}
		if ms > 0 && ms <= session.DefaultRotationGrace.Milliseconds() {
			n++
		}
	}
	return n
}

func forEachServer(t *testing.T, f func(t *testing.T, client valkey.Client)) {
	t.Run("standalone", func(t *testing.T) { f(t, newClient(t, serverAddrs(t, envAddr))) })
	t.Run("cluster", func(t *testing.T) { f(t, newClient(t, serverAddrs(t, envClusterAddrs))) })
}

func TestSessionLifecycle(t *testing.T) {
	forEachServer(t, func(t *testing.T, client valkey.Client) {
		for _, cache := range []time.Duration{0, time.Minute} {
			t.Run("cache="+cache.String(), func(t *testing.T) {
				s := newSite(t, client, session.Options{}, valkeystore.Options{CacheTTL: cache})
				if a := s.do("GET", "/whoami", nil); a.code != 200 || a.setCookie != "" || len(s.keys()) != 0 {
					t.Fatalf("anonymous read: %+v, %d keys; want no cookie and no key", a, len(s.keys()))
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
				// The old key holds a marker of the rotation that lives for
				// RotationGrace only.
				if keys := s.keys(); len(keys) != 2 || s.shortLived() != 1 {
					t.Fatalf("after regenerate the server holds %d keys, %d short-lived; want the session and a marker", len(keys), s.shortLived())
				}
				if a := s.do("GET", "/whoami", nil); a.user != "ann" || a.counter != 3 {
					t.Fatalf("whoami after login = %+v", a)
				}
				s.audit()
				s.do("POST", "/logout", nil)
				if keys := s.keys(); len(keys) != 1 || s.shortLived() != 1 {
					t.Fatalf("after logout the server holds %v; want only the login's marker", keys)
				}
				if a := s.do("GET", "/whoami", nil); a.user != "" || a.counter != 0 {
					t.Fatalf("after logout whoami = %+v", a)
				}
				if len(s.errs) != 0 {
					t.Fatalf("errors: %v", s.errs)
				}
			})
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	forEachServer(t, func(t *testing.T, client valkey.Client) {
		s := newSite(t, client, session.Options{Lifetime: time.Hour, IdleTimeout: 20 * time.Minute}, valkeystore.Options{})
		s.do("GET", "/", nil)
		pttl := func() time.Duration {
			keys := s.keys()
			if len(keys) != 1 {
				t.Fatalf("server holds %d keys, want 1", len(keys))
			}
			ms, err := client.Do(context.Background(), client.B().Pttl().Key(keys[0]).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			return time.Duration(ms) * time.Millisecond
		}
		if d := pttl(); d <= 19*time.Minute || d > 20*time.Minute {
			t.Fatalf("TTL %v, want the idle timeout", d)
		}
		// Idle: the server's copy outlives the manager's clock here, so the
		// sealed deadline is what ends the session.
		s.clock.Advance(21 * time.Minute)
		if a := s.do("GET", "/whoami", nil); a.counter != 0 {
			t.Fatalf("idle session alive: %+v", a)
		}
		if keys := s.keys(); len(keys) != 0 {
			t.Fatalf("the expired record was not deleted: %v", keys)
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
	})
}

// TestSessionStoreDown: a frozen server makes requests fail promptly through
// the error handler, with no cookie and no write over the stored session; a
// killed and restarted one serves again without rebuilding the client.
func TestSessionStoreDown(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, []string{srv.addr()})
	s := newSite(t, client, session.Options{}, valkeystore.Options{Timeout: 300 * time.Millisecond})
	s.do("POST", "/login", url.Values{"user": {"bo"}})
	s.do("GET", "/", nil)
	keys := s.keys()
	ctx := context.Background()
	stored, err := client.Do(ctx, client.B().Get().Key(keys[0]).Build()).AsBytes()
	if err != nil {
		t.Fatal(err)
	}

	srv.signal(syscall.SIGSTOP)
	for _, path := range []string{"/", "/whoami"} {
		start := time.Now()
		a := s.do("GET", path, nil)
		if a.code != http.StatusServiceUnavailable || a.setCookie != "" {
			t.Fatalf("GET %s with the server frozen: %+v; want the error handler and no cookie", path, a)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("GET %s took %v with the server frozen", path, d)
		}
	}
	srv.signal(syscall.SIGCONT)
	if got, err := client.Do(ctx, client.B().Get().Key(keys[0]).Build()).AsBytes(); err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("the stored session changed while the server was frozen (err %v)", err)
	}
	if a := s.do("GET", "/", nil); a.code != 200 || a.counter != 2 {
		t.Fatalf("after the server woke: %+v", a)
	}
	s.mu.Lock()
	for _, err := range s.errs {
		if !errors.Is(err, session.ErrStore) {
			t.Errorf("error %v does not match session.ErrStore", err)
		}
	}
	s.mu.Unlock()

	srv.kill()
	if a := s.do("GET", "/", nil); a.code != http.StatusServiceUnavailable || a.setCookie != "" {
		t.Fatalf("with the server gone: %+v", a)
	}
	srv.start()
	poll(t, 5*time.Second, "the site did not recover after the server restarted", func() bool {
		return s.do("GET", "/", nil).code == 200
	})
}

// TestSessionServerFull: a server refusing writes issues no new cookie.
func TestSessionServerFull(t *testing.T) {
	srv := startServer(t, "--maxmemory-policy", "noeviction")
	client := newClient(t, []string{srv.addr()})
	s := newSite(t, client, session.Options{}, valkeystore.Options{})
	s.do("POST", "/login", url.Values{"user": {"cy"}})
	old := s.cookie()
	ctx := context.Background()
	// Fill the server up to a limit just above what it uses.
	if err := client.Do(ctx, client.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	a := s.do("POST", "/login", url.Values{"user": {"dee"}})
	if a.code != http.StatusServiceUnavailable || a.setCookie != "" {
		t.Fatalf("login on a full server: %+v; want the error handler and no cookie", a)
	}
	if s.cookie() != old {
		t.Fatal("the browser's cookie changed")
	}
	if err := client.Do(ctx, client.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "0").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if a := s.do("GET", "/whoami", nil); a.user != "cy" {
		t.Fatalf("after the server has room again: %+v; want the old session", a)
	}
}

// TestSessionSchemaChange: a record written by an older payload type loads
// into the new one, or is dropped, never an error.
func TestSessionSchemaChange(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	st := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: time.Second})
	ctx := context.Background()
	type v1 struct {
		User  string
		Old   int
		Roles []string
	}
	type v2 struct {
		User  string
		Roles []string
		New   bool
	}
	type v3 struct{ User []int }
	m1, _ := session.New[v1](st, session.Options{})
	tx := m1.Begin(ctx, "")
	p, _ := tx.Get()
	*p = v1{User: "ann", Old: 4, Roles: []string{"a"}}
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := session.New[v2](st, session.Options{})
	if p, err := m2.Begin(ctx, res.Token).Get(); err != nil || p.User != "ann" || len(p.Roles) != 1 || p.New {
		t.Fatalf("v1 record as v2: %+v, %v", p, err)
	}
	m3, _ := session.New[v3](st, session.Options{})
	for range 2 {
		if p, err := m3.Begin(ctx, res.Token).Get(); err != nil || p.User != nil {
			t.Fatalf("incompatible record: %+v, %v; want an empty session", p, err)
		}
	}
	// Left alone: an instance still running v1 reads it.
	if keys := scanKeys(t, ctx, client, prefix); len(keys) != 1 {
		t.Fatalf("the undecodable record was deleted: %v", keys)
	}
}
