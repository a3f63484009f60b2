package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/typedsession/session/internal/teststore"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type appSess struct {
	User    string
	Counter int
	Flash   []string
}

func newClock() *sessiontest.Clock {
	return sessiontest.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
}

// countingStore wraps a store, counts its calls and can be made to fail.
type countingStore struct {
	store.Store
	loads, saves, deletes atomic.Int64
	failLoad, failSave    atomic.Bool
	failDelete            atomic.Bool
}

var errDown = errors.New("store is down")

func (s *countingStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	s.loads.Add(1)
	if s.failLoad.Load() {
		return nil, false, errDown
	}
	return s.Store.Load(ctx, key)
}

func (s *countingStore) Write(ctx context.Context, ops []store.Op) error {
	for _, op := range ops {
		if len(op.New) > 0 {
			s.saves.Add(1)
			if s.failSave.Load() {
				return errDown
			}
		} else {
			s.deletes.Add(1)
			if s.failDelete.Load() {
				return errDown
			}
		}
	}
	return s.Store.Write(ctx, ops)
}

// memTally is a memstore that can say which records it holds.
type memTally struct {
	*memstore.Store
	mu   sync.Mutex
	keys map[string]bool
}

func newMem(opts memstore.Options) *memTally {
	return &memTally{Store: memstore.New(opts), keys: map[string]bool{}}
}

func (s *memTally) Write(ctx context.Context, ops []store.Op) error {
	err := s.Store.Write(ctx, ops)
	s.mu.Lock()
	for _, op := range ops {
		s.keys[op.Key] = true
	}
	s.mu.Unlock()
	return err
}

// Range calls f with each live record, in no particular order, until f
// returns false.
func (s *memTally) Range(f func(key string, rec []byte) bool) {
	s.mu.Lock()
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		if rec, ok, _ := s.Load(context.Background(), k); ok && !f(k, rec) {
			return
		}
	}
}

// Len reports how many live records the store holds.
func (s *memTally) Len() int {
	n := 0
	s.Range(func(string, []byte) bool { n++; return true })
	return n
}

type app struct {
	t     *testing.T
	clock *sessiontest.Clock
	mem   *memTally
	store *countingStore
	mgr   *session.Manager[appSess]
	srv   *sessiontest.Server[appSess]
}

// newApp serves the demo's routes through the middleware on a TLS test
// server.
func newApp(t *testing.T, opts session.Options, mwOpts middleware.Options) *app {
	t.Helper()
	a := &app{t: t, clock: newClock()}
	a.mem = newMem(memstore.Options{Now: a.clock.Now, SweepInterval: -1})
	a.store = &countingStore{Store: a.mem}
	if opts.Now == nil {
		opts.Now = a.clock.Now
	}
	if opts.Cipher == nil {
		ring, err := cipher.NewRing(bytes.Repeat([]byte{7}, 32))
		if err != nil {
			t.Fatal(err)
		}
		opts.Cipher = ring
	}
	mgr, err := session.New[appSess](a.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	a.mgr = mgr
	if mwOpts.ErrorHandler == nil {
		mwOpts.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "session trouble", http.StatusServiceUnavailable)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Counter++
		writeJSON(w, map[string]any{"counter": s.Counter})
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		writeJSON(w, map[string]any{"user": s.User, "counter": s.Counter})
	})
	mux.HandleFunc("GET /static", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "no session here")
	})
	mux.HandleFunc("GET /load", func(w http.ResponseWriter, r *http.Request) {
		if _, err := mgr.Load(r); err != nil {
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "degraded")
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := mgr.Regenerate(r); err != nil {
			return
		}
		mgr.Get(r).User = r.FormValue("user")
		if r.FormValue("remember") == "no" {
			mgr.RememberMe(r, false)
		}
		writeJSON(w, map[string]any{"user": mgr.Get(r).User})
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		mgr.Destroy(r)
		writeJSON(w, map[string]any{"user": ""})
	})
	mux.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
		mgr.Get(r).Counter = 42
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through ResponseController: %v", err)
		}
		mgr.Get(r).Counter = 99 // after the response started: saved at the handler's return
	})
	a.srv = sessiontest.NewServer(t, mgr, mux, mwOpts)
	return a
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

type reply struct {
	code int
	body map[string]any
	h    http.Header
	raw  string
}

func (a *app) do(c *http.Client, method, path string, form url.Values) reply {
	a.t.Helper()
	res := a.srv.Do(a.t, c, method, path, form)
	raw, _ := io.ReadAll(res.Body)
	r := reply{code: res.StatusCode, h: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r
}

// holding returns a new browser that holds token: a token replayed, or
// planted by an attacker.
func (a *app) holding(token string) *http.Client {
	c := a.srv.Client()
	a.srv.SetToken(c, token)
	return c
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func TestCounter(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	for want := 1; want <= 3; want++ {
		r := a.do(c, "GET", "/", nil)
		if r.code != 200 || num(r.body["counter"]) != want {
			t.Fatalf("request %d: %d %v, want counter %d", want, r.code, r.body, want)
		}
	}
	if n := a.mem.Len(); n != 1 {
		t.Fatalf("store holds %d records, want 1", n)
	}
}

func TestCookieAttributes(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	r := a.do(a.srv.Client(), "GET", "/", nil)
	sc := r.h.Get("Set-Cookie")
	for _, want := range []string{"__Host-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=86400"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain") {
		t.Errorf("Set-Cookie %q has a Domain", sc)
	}
	value := strings.TrimPrefix(strings.SplitN(sc, ";", 2)[0], "__Host-session=")
	if len(value) != 43 {
		t.Errorf("token %q has %d characters, want 43", value, len(value))
	}
}

func TestInvalidCookieOptions(t *testing.T) {
	mem := newMem(memstore.Options{SweepInterval: -1})
	for _, c := range []session.Cookie{
		{Name: "__Host-s", InsecureNoSecure: true},
		{Name: "__Host-s", Path: "/app"},
		{Name: "__Host-s", Domain: "example.com"},
		{Name: "__Secure-s", InsecureNoSecure: true},
		{SameSite: http.SameSiteNoneMode, InsecureNoSecure: true},
		{Name: "bad name"},
		{Name: "semi;colon"},
		{Path: "relative"},
		{SameSite: 9},
		{Name: "__host-s", Domain: "example.com"},
		{Name: "__SECURE-s", InsecureNoSecure: true},
	} {
		if _, err := session.New[appSess](mem, session.Options{Cookie: c}); !errors.Is(err, session.ErrOptions) {
			t.Errorf("New with cookie %+v: err = %v, want ErrOptions", c, err)
		}
	}
	for _, o := range []session.Options{{Lifetime: -time.Second}, {IdleTimeout: -1}} {
		if _, err := session.New[appSess](mem, o); !errors.Is(err, session.ErrOptions) {
			t.Errorf("New(%+v): err = %v, want ErrOptions", o, err)
		}
	}
	if _, err := session.New[appSess](mem, session.Options{Cookie: session.Cookie{Name: "__Host-s"}}); err != nil {
		t.Errorf("a valid __Host- cookie was refused: %v", err)
	}
}

func TestHostPrefixCookie(t *testing.T) {
	a := newApp(t, session.Options{Cookie: session.Cookie{Name: "__Host-sid"}}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	if r := a.do(c, "GET", "/", nil); num(r.body["counter"]) != 2 {
		t.Fatalf("counter = %v, want 2", r.body["counter"])
	}
}

func TestAnonymousVisitStoresNothing(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	for _, path := range []string{"/whoami", "/static"} {
		r := a.do(c, "GET", path, nil)
		if r.code != 200 || r.h.Get("Set-Cookie") != "" {
			t.Fatalf("GET %s: %d, Set-Cookie %q; want 200 and no cookie", path, r.code, r.h.Get("Set-Cookie"))
		}
	}
	if n := a.mem.Len(); n != 0 {
		t.Fatalf("store holds %d records after anonymous reads, want 0", n)
	}
	if n := a.store.loads.Load(); n != 0 {
		t.Fatalf("store was read %d times for a visitor with no cookie", n)
	}
}

func TestNoStoreIOWithoutGet(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	before := a.store.loads.Load() + a.store.saves.Load()
	r := a.do(c, "GET", "/static", nil)
	if after := a.store.loads.Load() + a.store.saves.Load(); after != before {
		t.Fatalf("a request that never called Get did %d store calls", after-before)
	}
	if v := r.h.Values("Vary"); len(v) != 0 {
		t.Fatalf("untouched response has Vary %q", v)
	}
}

func TestHeaders(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	r := a.do(c, "GET", "/", nil)
	if got := r.h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("response setting a cookie: Cache-Control %q, want no-store", got)
	}
	if got := r.h.Get("Vary"); got != "Cookie" {
		t.Errorf("response setting a cookie: Vary %q, want Cookie", got)
	}
	r = a.do(c, "GET", "/whoami", nil)
	if r.h.Get("Set-Cookie") != "" {
		t.Errorf("read-only request set a cookie: %q", r.h.Get("Set-Cookie"))
	}
	if got := r.h.Get("Vary"); got != "Cookie" {
		t.Errorf("response that read the session: Vary %q, want Cookie", got)
	}
	if got := r.h.Get("Cache-Control"); got != "" {
		t.Errorf("read-only response: Cache-Control %q, want none", got)
	}
}

func TestReadOnlyWritesNothing(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	saves := a.store.saves.Load()
	for range 3 {
		if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 1 {
			t.Fatalf("whoami = %v", r.body)
		}
	}
	if n := a.store.saves.Load() - saves; n != 0 {
		t.Fatalf("read-only requests saved %d times", n)
	}
}

func TestRegenerateOnLogin(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	old := a.srv.Token(c)
	r := a.do(c, "POST", "/login", url.Values{"user": {"ann"}})
	if r.body["user"] != "ann" {
		t.Fatalf("login = %v", r.body)
	}
	if a.srv.Token(c) == old {
		t.Fatal("login kept the token")
	}
	if r := a.do(c, "GET", "/whoami", nil); r.body["user"] != "ann" || num(r.body["counter"]) != 1 {
		t.Fatalf("after login whoami = %v, want ann with the counter kept", r.body)
	}
	// The pre-login token is worthless now.
	if r := a.do(a.holding(old), "GET", "/whoami", nil); r.body["user"] != "" || num(r.body["counter"]) != 0 {
		t.Fatalf("old token still logged in: %v", r.body)
	}
	// The old key holds only a marker of the rotation, which lives for
	// RotationGrace and reads as no session.
	if n := a.mem.Len(); n != 2 {
		t.Fatalf("store holds %d records after regenerate, want the session and a marker", n)
	}
	a.clock.Advance(session.DefaultRotationGrace)
	if n := a.mem.Len(); n != 1 {
		t.Fatalf("store holds %d records after the rotation grace, want 1", n)
	}
}

func TestDestroy(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "POST", "/login", url.Values{"user": {"bob"}})
	old := a.srv.Token(c)
	r := a.do(c, "POST", "/logout", nil)
	if sc := r.h.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("logout Set-Cookie %q does not expire the cookie", sc)
	}
	if a.srv.Token(c) != "" {
		t.Fatal("the jar still holds the session cookie")
	}
	if n := a.mem.Len(); n != 0 {
		t.Fatalf("store holds %d records after logout", n)
	}
	if r := a.do(a.holding(old), "GET", "/whoami", nil); r.body["user"] != "" {
		t.Fatalf("replayed cookie after logout: %v", r.body)
	}
}

func TestUnknownTokenIsNotAdopted(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	planted := strings.Repeat("A", 43)
	r := a.do(a.holding(planted), "GET", "/", nil)
	sc := r.h.Get("Set-Cookie")
	if sc == "" || strings.Contains(sc, planted) {
		t.Fatalf("Set-Cookie %q: want a fresh token, not the planted one", sc)
	}
}

func TestHostileCookies(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	good := a.srv.Token(c)
	flipped := []byte(good)
	flipped[10] ^= 1
	for name, v := range map[string]string{
		"empty":     "",
		"short":     good[:42],
		"long":      good + "A",
		"10kB":      strings.Repeat("x", 10_000),
		"dotdot":    "../../../../etc/passwd" + strings.Repeat("a", 21),
		"alphabet":  strings.Repeat("+", 43),
		"padding":   good[:42] + "B",
		"forged":    strings.Repeat("A", 43),
		"bitflip":   string(flipped),
		"quoted":    `"` + strings.Repeat("Q", 43) + `"`,
		"highbytes": strings.Repeat("\xff", 43),
	} {
		t.Run(name, func(t *testing.T) {
			loads := a.store.loads.Load()
			req, _ := http.NewRequest("GET", a.srv.URL+"/whoami", nil)
			req.Header.Set("Cookie", a.mgr.CookieName()+"="+v)
			res, err := a.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(body), `"counter":0`) {
				t.Fatalf("got %d %s, want 200 with an empty session", res.StatusCode, body)
			}
			if name != "forged" && name != "bitflip" && name != "quoted" && a.store.loads.Load() != loads {
				t.Fatalf("a malformed token reached the store")
			}
		})
	}
	// CR, LF and NUL cannot be sent by a client library; check the manager
	// directly.
	for _, v := range []string{"abc\r\nSet-Cookie: x=y", strings.Repeat("a", 41) + "\r\n", strings.Repeat("\x00", 43)} {
		loads := a.store.loads.Load()
		p, err := a.mgr.Begin(context.Background(), v).Get()
		if err != nil || p.Counter != 0 || a.store.loads.Load() != loads {
			t.Fatalf("token %q: %+v, %v (store touched: %v)", v, p, err, a.store.loads.Load() != loads)
		}
	}
	if errs := a.srv.Errors(); len(errs) != 0 {
		t.Fatalf("error handler called: %v", errs)
	}
}

func TestIdleTimeout(t *testing.T) {
	a := newApp(t, session.Options{IdleTimeout: 20 * time.Minute}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	// Reads keep the session alive; the refresh is throttled.
	saves := a.store.saves.Load()
	for range 6 {
		a.clock.Advance(4 * time.Minute)
		if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 1 {
			t.Fatalf("session lost while in use: %v", r.body)
		}
	}
	if n := a.store.saves.Load() - saves; n < 2 || n > 6 {
		t.Fatalf("6 reads over 24 minutes saved %d times; want a throttled refresh", n)
	}
	a.clock.Advance(20 * time.Minute)
	if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 0 {
		t.Fatalf("idle session still alive: %v", r.body)
	}
}

func TestIdleRefreshIsThrottled(t *testing.T) {
	a := newApp(t, session.Options{IdleTimeout: 40 * time.Minute}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	saves := a.store.saves.Load()
	a.clock.Advance(9 * time.Minute) // under a quarter of the window
	r := a.do(c, "GET", "/whoami", nil)
	if a.store.saves.Load() != saves || r.h.Get("Set-Cookie") != "" {
		t.Fatal("a read early in the idle window wrote")
	}
	a.clock.Advance(2 * time.Minute) // past a quarter
	r = a.do(c, "GET", "/whoami", nil)
	if a.store.saves.Load() != saves+1 {
		t.Fatal("a read past a quarter of the idle window did not refresh")
	}
	// The cookie lasts until the absolute deadline already: a refresh is
	// no news to the client.
	if sc := r.h.Get("Set-Cookie"); sc != "" {
		t.Fatalf("refresh Set-Cookie %q, want none", sc)
	}
}

func TestNoRefreshPastAbsolute(t *testing.T) {
	a := newApp(t, session.Options{Lifetime: time.Hour, IdleTimeout: 10 * time.Minute}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	for range 10 {
		a.clock.Advance(5 * time.Minute)
		a.do(c, "GET", "/whoami", nil)
	}
	// 50 minutes in: the idle deadline has met the absolute one and can move
	// no further, so reads must not write.
	saves := a.store.saves.Load()
	for range 4 {
		a.clock.Advance(2 * time.Minute)
		if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 1 || r.h.Get("Set-Cookie") != "" {
			t.Fatalf("read near the end of the lifetime: %v, Set-Cookie %q", r.body, r.h.Get("Set-Cookie"))
		}
	}
	if n := a.store.saves.Load() - saves; n != 0 {
		t.Fatalf("%d writes for reads that could not extend the session", n)
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	a := newApp(t, session.Options{Lifetime: time.Hour, IdleTimeout: 30 * time.Minute}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	old := a.srv.Token(c)
	for range 5 {
		a.clock.Advance(10 * time.Minute)
		a.do(c, "GET", "/", nil)
	}
	// 50 minutes in, activity all along: the session lives...
	info := a.do(c, "GET", "/whoami", nil)
	if num(info.body["counter"]) != 6 {
		t.Fatalf("counter = %v, want 6", info.body)
	}
	// ...but activity never extends the absolute deadline.
	a.clock.Advance(10 * time.Minute)
	if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 0 {
		t.Fatalf("session outlived its absolute lifetime: %v", r.body)
	}
	// A replayed cookie from the start is as dead.
	if r := a.do(a.holding(old), "GET", "/whoami", nil); num(r.body["counter"]) != 0 {
		t.Fatalf("replayed cookie outlived the lifetime: %v", r.body)
	}
}

func TestLoadFailureNeverOverwrites(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "POST", "/login", url.Values{"user": {"cy"}})
	key, rec := onlyRecord(t, a.mem)

	a.store.failLoad.Store(true)
	saves := a.store.saves.Load()
	for _, path := range []string{"/", "/whoami"} {
		r := a.do(c, "GET", path, nil)
		if r.code != http.StatusServiceUnavailable || r.h.Get("Set-Cookie") != "" {
			t.Fatalf("GET %s with the store down: %d, Set-Cookie %q; want the error handler and no cookie", path, r.code, r.h.Get("Set-Cookie"))
		}
	}
	if r := a.do(c, "POST", "/login", url.Values{"user": {"eve"}}); r.code != http.StatusServiceUnavailable {
		t.Fatalf("login with the store down: %d", r.code)
	}
	if a.store.saves.Load() != saves {
		t.Fatal("a failed load was followed by a save")
	}
	if errs := a.srv.Errors(); len(errs) != 3 || !errors.Is(errs[0], session.ErrStore) || !errors.Is(errs[0], errDown) {
		t.Fatalf("error handler got %v, want 3 errors wrapping ErrStore and the cause", errs)
	}
	a.store.failLoad.Store(false)
	if k2, rec2 := onlyRecord(t, a.mem); k2 != key || !bytes.Equal(rec, rec2) {
		t.Fatal("the stored record changed while the store was failing")
	}
	if r := a.do(c, "GET", "/whoami", nil); r.body["user"] != "cy" {
		t.Fatalf("after recovery whoami = %v, want cy", r.body)
	}
}

func TestLoadErrorSeenByHandler(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	a.store.failLoad.Store(true)
	r := a.do(c, "GET", "/load", nil)
	if r.code != http.StatusTeapot || r.raw != "degraded" {
		t.Fatalf("got %d %q; the handler that saw the error should answer", r.code, r.raw)
	}
	if errs := a.srv.Errors(); len(errs) != 0 {
		t.Fatalf("error handler called for an error the handler saw: %v", errs)
	}
}

func TestSaveFailureIssuesNoCookie(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	old := a.srv.Token(c)
	a.store.failSave.Store(true)
	r := a.do(c, "POST", "/login", url.Values{"user": {"dan"}})
	if r.code != http.StatusServiceUnavailable || r.h.Get("Set-Cookie") != "" {
		t.Fatalf("login with failing saves: %d, Set-Cookie %q", r.code, r.h.Get("Set-Cookie"))
	}
	if errs := a.srv.Errors(); len(errs) != 1 || !errors.Is(errs[0], session.ErrStore) {
		t.Fatalf("errors = %v", errs)
	}
	a.store.failSave.Store(false)
	if a.srv.Token(c) != old {
		t.Fatal("the client's cookie changed")
	}
	if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 1 || r.body["user"] != "" {
		t.Fatalf("old session after failed login = %v", r.body)
	}
}

func TestTokenNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	a := newApp(t, session.Options{}, middleware.Options{ErrorHandler: middleware.DefaultErrorHandler(logger)})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	token := a.srv.Token(c)
	a.store.failLoad.Store(true)
	r := a.do(c, "GET", "/", nil)
	if r.code != 500 || strings.Contains(r.raw, "down") {
		t.Fatalf("default error handler: %d %q; want 500 with a generic text", r.code, r.raw)
	}
	if !strings.Contains(logs.String(), "store is down") {
		t.Fatalf("log lacks the cause: %s", logs.String())
	}
	if strings.Contains(logs.String(), token) || strings.Contains(r.raw, token) {
		t.Fatal("the token appears in the log or the answer")
	}
}

func TestFlushCommitsFirst(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	r := a.do(c, "GET", "/flush", nil)
	if r.h.Get("Set-Cookie") == "" {
		t.Fatal("a flushed response carried no cookie")
	}
	if r := a.do(c, "GET", "/whoami", nil); num(r.body["counter"]) != 99 {
		t.Fatalf("counter = %v, want 99 (the value at the handler's return)", r.body["counter"])
	}
}

func TestHeaderTokens(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{Header: "X-Session"})
	c := a.srv.Client()
	r := a.do(c, "GET", "/", nil)
	tok := r.h.Get("X-Session")
	if len(tok) != 43 || r.h.Get("Set-Cookie") != "" || r.h.Get("Vary") != "X-Session" {
		t.Fatalf("header mode: token %q, Set-Cookie %q, Vary %q", tok, r.h.Get("Set-Cookie"), r.h.Get("Vary"))
	}
	req, _ := http.NewRequest("GET", a.srv.URL+"/", nil)
	req.Header.Set("X-Session", tok)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if num(body["counter"]) != 2 || res.Header.Get("X-Session") != "" {
		t.Fatalf("second call: %v, header %q; want counter 2 and no new token", body, res.Header.Get("X-Session"))
	}
}

func TestBrowserSessionAndRememberMe(t *testing.T) {
	a := newApp(t, session.Options{Cookie: session.Cookie{BrowserSession: true}}, middleware.Options{})
	c := a.srv.Client()
	r := a.do(c, "GET", "/", nil)
	if sc := r.h.Get("Set-Cookie"); strings.Contains(sc, "Max-Age") || strings.Contains(sc, "Expires") {
		t.Fatalf("browser-session cookie has an expiry: %q", sc)
	}

	b := newApp(t, session.Options{}, middleware.Options{})
	c = b.srv.Client()
	r = b.do(c, "POST", "/login", url.Values{"user": {"x"}, "remember": {"no"}})
	if sc := r.h.Get("Set-Cookie"); strings.Contains(sc, "Max-Age") {
		t.Fatalf("RememberMe(false) cookie has an expiry: %q", sc)
	}
	r = b.do(c, "GET", "/", nil)
	if sc := r.h.Get("Set-Cookie"); sc != "" {
		t.Fatalf("the per-session choice was not kept: %q", sc)
	}
}

func TestKeyRotationThroughManager(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	mem := newMem(memstore.Options{SweepInterval: -1})
	ctx := context.Background()
	mgr := func(keys ...[]byte) *session.Manager[appSess] {
		r, err := cipher.NewRing(keys...)
		if err != nil {
			t.Fatal(err)
		}
		m, err := session.New[appSess](mem, session.Options{Cipher: r})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tx := mgr(oldKey).Begin(ctx, "")
	p, _ := tx.Get()
	p.User = "rot"
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, before := onlyRecord(t, mem)

	// A read under the rotated ring opens the record and leaves it as it
	// is, so instances still on the old ring can read it during a deploy.
	tx = mgr(newKey, oldKey).Begin(ctx, res.Token)
	if p, err := tx.Get(); err != nil || p.User != "rot" {
		t.Fatalf("rotated ring: %+v, %v", p, err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, same := onlyRecord(t, mem); !bytes.Equal(before, same) {
		t.Fatal("a read-only request re-sealed the record")
	}
	// The next write re-seals with the first key.
	tx = mgr(newKey, oldKey).Begin(ctx, res.Token)
	p, _ = tx.Get()
	p.Counter++
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, after := onlyRecord(t, mem)
	if bytes.Equal(before[1:5], after[1:5]) {
		t.Fatal("a write under a rotated ring did not re-seal with the new key")
	}
	if p, _ := mgr(newKey).Begin(ctx, res.Token).Get(); p.User != "rot" {
		t.Fatal("the re-sealed record does not open with the new key alone")
	}
}

// TestSchemaChange: records written by an older T load into a newer one where
// they can, and are dropped (never a 500) where they cannot.
func TestSchemaChange(t *testing.T) {
	type v1 struct {
		User    string
		Counter int
		Old     string
	}
	type v2 struct {
		User    string
		Counter int
		Added   []string
	}
	type v3 struct {
		User    int // retyped
		Counter int
	}
	mem := newMem(memstore.Options{SweepInterval: -1})
	ctx := context.Background()
	m1, _ := session.New[v1](mem, session.Options{})
	tx := m1.Begin(ctx, "")
	p, _ := tx.Get()
	*p = v1{User: "ann", Counter: 5, Old: "gone"}
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := session.New[v2](mem, session.Options{})
	got, err := m2.Begin(ctx, res.Token).Get()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&v2{User: "ann", Counter: 5}, got); diff != "" {
		t.Fatalf("v1 record read as v2 (-want +got):\n%s", diff)
	}
	m3, _ := session.New[v3](mem, session.Options{})
	got3, err := m3.Begin(ctx, res.Token).Get()
	if err != nil || *got3 != (v3{}) {
		t.Fatalf("incompatible record: %+v, %v; want an empty session", got3, err)
	}
	// Left alone: an instance still running v1 reads it.
	if mem.Len() != 1 {
		t.Fatal("the undecodable record was deleted")
	}
	if got, _ := m1.Begin(ctx, res.Token).Get(); got.User != "ann" {
		t.Fatalf("v1 reads %+v after v3 saw the record", got)
	}
}

func TestTxnAPI(t *testing.T) {
	clock := newClock()
	mem := newMem(memstore.Options{SweepInterval: -1, Now: clock.Now})
	m, _ := session.New[appSess](mem, session.Options{Now: clock.Now, Lifetime: time.Hour})
	ctx := context.Background()
	tx := m.Begin(ctx, "")
	info, err := tx.Info()
	if err != nil || !info.New || !info.Created.Equal(clock.Now()) || !info.Absolute.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("Info of a new session = %+v, %v", info, err)
	}
	p, _ := tx.Get()
	p.Flash = []string{"hi"}
	res, err := tx.Commit(ctx)
	if err != nil || !res.Send || res.Token == "" {
		t.Fatalf("Commit = %+v, %v", res, err)
	}
	if err := tx.Regenerate(); !errors.Is(err, session.ErrCommitted) {
		t.Fatalf("Regenerate after commit: %v, want ErrCommitted", err)
	}
	clock.Advance(time.Minute)
	tx = m.Begin(ctx, res.Token)
	info, _ = tx.Info()
	if info.New || !info.Created.Equal(clock.Now().Add(-time.Minute)) {
		t.Fatalf("Info of a loaded session = %+v", info)
	}
	if r, err := tx.Commit(ctx); err != nil || r.Send {
		t.Fatalf("Commit of an unchanged session = %+v, %v", r, err)
	}
}

func TestGetWithoutMiddlewarePanics(t *testing.T) {
	m, _ := session.New[appSess](newMem(memstore.Options{SweepInterval: -1}), session.Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("Get on a request without the middleware did not panic")
		}
	}()
	m.Get(httptest.NewRequest("GET", "/", nil))
}

func TestConcurrentRequests(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if r := a.do(c, "GET", "/whoami", nil); r.code != 200 {
					t.Errorf("status %d", r.code)
				}
			}
		}()
	}
	wg.Wait()
}

func onlyRecord(t *testing.T, s *memTally) (string, []byte) {
	t.Helper()
	if s.Len() != 1 {
		t.Fatalf("store holds %d records, want 1", s.Len())
	}
	var key string
	var rec []byte
	s.Range(func(k string, r []byte) bool { key, rec = k, r; return false })
	return key, rec
}

// TestDestroyIsNotUndone: a request that loaded a session before another
// request logged it out must not bring the record back when it commits.
func TestDestroyIsNotUndone(t *testing.T) {
	mem := newMem(memstore.Options{SweepInterval: -1})
	m, _ := session.New[appSess](mem, session.Options{})
	ctx := context.Background()
	token := sessiontest.Seed(t, m, appSess{User: "alice"})

	slow := m.Begin(ctx, token)
	p, _ := slow.Get()
	logout := m.Begin(ctx, token)
	logout.Destroy()
	if _, err := logout.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	p.User = "alice2"
	got, err := slow.Commit(ctx)
	if !errors.Is(err, session.ErrConflict) {
		t.Fatalf("a change to a session logged out meanwhile: err = %v, want ErrConflict", err)
	}
	// Nothing is saved, and the cookie is left alone: clearing it could wipe
	// a cookie another request (a login) has just set.
	if mem.Len() != 0 || got.Send || got.Clear {
		t.Fatalf("after logout, a slower request's commit = %+v and %d records; want nothing saved or sent", got, mem.Len())
	}
	if p, _ := m.Begin(ctx, token).Get(); p.User != "" {
		t.Fatalf("the logged-out token opens %+v", p)
	}
}

// TestRegenerateAfterDestroy: a login racing a logout of the same session
// must not carry the logged-out session on under a new token.
func TestRegenerateAfterDestroy(t *testing.T) {
	mem := newMem(memstore.Options{SweepInterval: -1})
	m, _ := session.New[appSess](mem, session.Options{})
	ctx := context.Background()
	token := sessiontest.Seed(t, m, appSess{User: "alice"})

	login := m.Begin(ctx, token)
	login.Regenerate()
	logout := m.Begin(ctx, token)
	logout.Destroy()
	if _, err := logout.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := login.Commit(ctx)
	if !errors.Is(err, session.ErrConflict) {
		t.Fatalf("a login racing a logout: err = %v, want ErrConflict", err)
	}
	if got.Send || mem.Len() != 0 {
		t.Fatalf("login after a racing logout = %+v with %d records; want nothing issued and nothing kept", got, mem.Len())
	}

	// Two logins racing (a double-submitted form): both end logged in, the
	// second as a session of its own, and the old token opens neither.
	token = sessiontest.Seed(t, m, appSess{User: "bob"})
	a, b := m.Begin(ctx, token), m.Begin(ctx, token)
	a.Regenerate()
	b.Regenerate()
	ra, erra := a.Commit(ctx)
	rb, errb := b.Commit(ctx)
	if erra != nil || errb != nil || !ra.Send || !rb.Send || ra.Token == rb.Token {
		t.Fatalf("racing logins: first %+v, %v; second %+v, %v; want two new tokens", ra, erra, rb, errb)
	}
	for _, tok := range []string{ra.Token, rb.Token} {
		if p, err := m.Begin(ctx, tok).Get(); err != nil || p.User != "bob" {
			t.Fatalf("a racing login's token opens %+v, %v; want bob", p, err)
		}
	}
	if p, _ := m.Begin(ctx, token).Get(); p.User != "" {
		t.Fatalf("the pre-login token opens %+v", p)
	}
}

// TestMapPayloadReadOnly: payloads holding maps encode in varying order;
// reading one must still write nothing.
func TestMapPayloadReadOnly(t *testing.T) {
	type withMaps struct {
		Prefs  map[string]int
		Nested map[int]map[string]bool
		Any    any
	}
	for _, c := range []struct {
		name  string
		codec codec.Codec
	}{{"msgpack", codec.MsgPack()}, {"json", codec.JSON()}} {
		t.Run(c.name, func(t *testing.T) {
			st := &countingStore{Store: newMem(memstore.Options{SweepInterval: -1})}
			m, _ := session.New[withMaps](st, session.Options{Codec: c.codec})
			ctx := context.Background()
			tx := m.Begin(ctx, "")
			p, _ := tx.Get()
			p.Prefs = map[string]int{}
			for i := range 40 {
				p.Prefs[fmt.Sprint("k", i)] = i
			}
			p.Nested = map[int]map[string]bool{1: {"a": true, "b": false}, 2: {"c": true}, 3: {}}
			p.Any = map[string]any{"x": 1, "y": "z", "w": []any{1, 2}}
			res, _ := tx.Commit(ctx)
			saves := st.saves.Load()
			for range 10 {
				tx := m.Begin(ctx, res.Token)
				if p, _ := tx.Get(); len(p.Prefs) != 40 {
					t.Fatalf("loaded %+v", p)
				}
				if r, err := tx.Commit(ctx); err != nil || r.Send {
					t.Fatalf("read-only commit = %+v, %v", r, err)
				}
			}
			if n := st.saves.Load() - saves; n != 0 {
				t.Fatalf("10 read-only requests saved %d times", n)
			}
			tx = m.Begin(ctx, res.Token)
			p, _ = tx.Get()
			p.Prefs["k1"] = 100
			tx.Commit(ctx)
			if st.saves.Load() == saves {
				t.Fatal("a change inside a map was not saved")
			}
		})
	}
}

// TestRecordsAreBoundToTheirKey: a sealed record moved under another
// session's key does not open.
func TestRecordsAreBoundToTheirKey(t *testing.T) {
	mem := newMem(memstore.Options{SweepInterval: -1})
	ring, _ := cipher.NewRing(bytes.Repeat([]byte{3}, 32))
	m, _ := session.New[appSess](mem, session.Options{Cipher: ring})
	ctx := context.Background()
	tokens := map[string]string{}
	for _, user := range []string{"admin", "mallory"} {
		tokens[user] = sessiontest.Seed(t, m, appSess{User: user})
	}
	recs := map[string][]byte{}
	mem.Range(func(k string, r []byte) bool { recs[k] = r; return true })
	var keys []string
	for k := range recs {
		keys = append(keys, k)
	}
	// Swap the two records between their keys.
	teststore.Put(ctx, mem, keys[0], recs[keys[1]], time.Now().Add(time.Hour))
	teststore.Put(ctx, mem, keys[1], recs[keys[0]], time.Now().Add(time.Hour))
	for user, tok := range tokens {
		if p, err := m.Begin(ctx, tok).Get(); err != nil || p.User != "" {
			t.Fatalf("%s's token opened %+v, %v after the records were swapped", user, p, err)
		}
	}
}

func TestRegenerateKeepsCookieChoice(t *testing.T) {
	a := newApp(t, session.Options{Cookie: session.Cookie{BrowserSession: true}}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "GET", "/", nil)
	tx := a.mgr.Begin(context.Background(), a.srv.Token(c))
	tx.RememberMe(true)
	res, err := tx.Commit(context.Background())
	if err != nil || res.Expires.IsZero() {
		t.Fatalf("RememberMe(true) commit = %+v, %v", res, err)
	}
	tx = a.mgr.Begin(context.Background(), res.Token)
	tx.Regenerate()
	res2, err := tx.Commit(context.Background())
	if err != nil || res2.Token == res.Token || !res2.Expires.Equal(res.Expires) {
		t.Fatalf("regenerate: %+v, %v; want a new token with the remembered expiry %v", res2, err, res.Expires)
	}
	ck := a.mgr.Cookie(res2)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("regenerated cookie %+v lost its attributes", ck)
	}
}

func TestDestroyFailure(t *testing.T) {
	a := newApp(t, session.Options{}, middleware.Options{})
	c := a.srv.Client()
	a.do(c, "POST", "/login", url.Values{"user": {"ann"}})
	a.store.failDelete.Store(true)
	r := a.do(c, "POST", "/logout", nil)
	if r.code != http.StatusServiceUnavailable || r.h.Get("Set-Cookie") != "" {
		t.Fatalf("logout with a failing delete: %d, Set-Cookie %q; want the error handler and no cookie", r.code, r.h.Get("Set-Cookie"))
	}
	if got := r.h.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("error answer Cache-Control %q", got)
	}
	a.store.failDelete.Store(false)
	r = a.do(c, "POST", "/logout", nil)
	if got := r.h.Get("Cache-Control"); !strings.Contains(r.h.Get("Set-Cookie"), "Max-Age=0") || got != "no-store" {
		t.Fatalf("logout: Set-Cookie %q, Cache-Control %q", r.h.Get("Set-Cookie"), got)
	}
}

func TestExtremeDurations(t *testing.T) {
	mem := newMem(memstore.Options{SweepInterval: -1})
	m, err := session.New[appSess](mem, session.Options{Lifetime: math.MaxInt64, IdleTimeout: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx := m.Begin(ctx, "")
	p, _ := tx.Get()
	p.User = "forever"
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Browsers cap cookies at 400 days (RFC 6265bis), and so do we.
	if ck := m.Cookie(res); ck.MaxAge != 400*24*3600 || ck.Expires.After(time.Now().Add(401*24*time.Hour)) {
		t.Fatalf("Max-Age %d, Expires %v for a lifetime of centuries; want 400 days", ck.MaxAge, ck.Expires)
	}
	if p, _ := m.Begin(ctx, res.Token).Get(); p.User != "forever" {
		t.Fatalf("loaded %+v", p)
	}
}

// TestShorterLifetimeAppliesToIssuedSessions: cutting Lifetime in an
// emergency ends sessions issued under the longer one.
func TestShorterLifetimeAppliesToIssuedSessions(t *testing.T) {
	clock := newClock()
	mem := newMem(memstore.Options{SweepInterval: -1, Now: clock.Now})
	long, _ := session.New[appSess](mem, session.Options{Now: clock.Now, Lifetime: 30 * 24 * time.Hour})
	ctx := context.Background()
	token := sessiontest.Seed(t, long, appSess{User: "u"})
	clock.Advance(2 * time.Hour)
	short, _ := session.New[appSess](mem, session.Options{Now: clock.Now, Lifetime: time.Hour})
	if p, _ := short.Begin(ctx, token).Get(); p.User != "" {
		t.Fatal("a session older than the new Lifetime still opens")
	}
}
