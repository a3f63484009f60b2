// Package sessiontest helps test handlers that use sessions: a request that
// carries a session seeded with a value, what a response did to the session,
// a test server with a browser-like client, and a clock to move.
//
// A handler test without a server:
//
//	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
//	r := sessiontest.NewRequest(t, mgr, "GET", "/cart", Sess{UserID: 7})
//	res := sessiontest.Serve(t, mgr, cartHandler, r)
//	if res.Code != 200 || len(res.Session.Cart) != 1 { ... }
//
// An end-to-end test:
//
//	clock := sessiontest.NewClock(time.Now())
//	mgr, _ := session.New[Sess](st, session.Options{Now: clock.Now, IdleTimeout: time.Hour})
//	srv := sessiontest.NewServer(t, mgr, app)
//	c := srv.Client() // keeps cookies, as a browser does
//	c.Get(srv.URL + "/login")
//	clock.Advance(2 * time.Hour)
package sessiontest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Seed saves v as a new session of mgr, as an earlier request would have,
// and returns its token. It fails the test if the session cannot be saved.
func Seed[T any](tb testing.TB, mgr *session.Manager[T], v T) string {
	tb.Helper()
	s := mgr.Begin(context.Background(), "")
	p, err := s.Get()
	if err != nil {
		tb.Fatalf("sessiontest: seed: %v", err)
	}
	*p = v
	res, err := s.Commit(context.Background())
	if err != nil {
		tb.Fatalf("sessiontest: seed: %v", err)
	}
	if !res.Send {
		tb.Fatalf("sessiontest: seed: a zero %T is no session; seed a value", v)
	}
	return res.Token
}

// NewRequest returns a request (as httptest.NewRequest makes) whose session
// cookie carries a session of mgr seeded with v. It is meant for [Serve],
// or for a handler mounted behind the middleware.
func NewRequest[T any](tb testing.TB, mgr *session.Manager[T], method, target string, v T) *http.Request {
	tb.Helper()
	return WithToken(httptest.NewRequest(method, target, nil), mgr, Seed(tb, mgr, v))
}

// WithToken returns r carrying token in mgr's session cookie.
func WithToken[T any](r *http.Request, mgr *session.Manager[T], token string) *http.Request {
	r.AddCookie(&http.Cookie{Name: mgr.CookieName(), Value: token})
	return r
}

// Response is what a request served by [Serve] did.
type Response[T any] struct {
	*httptest.ResponseRecorder

	// Token is the token the client holds after the response: the one it
	// sent, or the one the response set; empty when it has none or the
	// response cleared it.
	Token string

	// Sent reports that the response set a token; Cleared that it expired
	// the cookie.
	Sent, Cleared bool

	// Session is the session saved under Token after the response, loaded
	// afresh from the store; nil when there is none.
	Session *T
}

// Serve runs h behind mgr's middleware for r and reports what the response
// did to the session.
func Serve[T any](tb testing.TB, mgr *session.Manager[T], h http.Handler, r *http.Request) *Response[T] {
	tb.Helper()
	res := &Response[T]{ResponseRecorder: httptest.NewRecorder()}
	if c, err := r.Cookie(mgr.CookieName()); err == nil {
		res.Token = c.Value
	}
	middleware.New(mgr, middleware.Options{})(h).ServeHTTP(res.ResponseRecorder, r)
	for _, c := range res.Result().Cookies() {
		if c.Name != mgr.CookieName() {
			continue
		}
		if c.MaxAge < 0 {
			res.Token, res.Cleared = "", true
		} else {
			res.Token, res.Sent = c.Value, true
		}
	}
	if res.Token != "" {
		s := mgr.Begin(context.Background(), res.Token)
		p, err := s.Get()
		if err != nil {
			tb.Fatalf("sessiontest: loading the saved session: %v", err)
		}
		if info, _ := s.Info(); !info.New {
			res.Session = p
		}
	}
	return res
}

// Server is an HTTPS test server with the session middleware mounted.
type Server[T any] struct {
	*httptest.Server
	mgr *session.Manager[T]
}

// NewServer starts a TLS test server serving h behind mgr's middleware
// (TLS, since session cookies are Secure by default) and closes it when the
// test ends.
func NewServer[T any](tb testing.TB, mgr *session.Manager[T], h http.Handler) *Server[T] {
	s := &Server[T]{Server: httptest.NewTLSServer(middleware.New(mgr, middleware.Options{})(h)), mgr: mgr}
	tb.Cleanup(s.Close)
	return s
}

// Client returns a client of the server with a cookie jar of its own, as a
// browser: each call gives a new browser.
func (s *Server[T]) Client() *http.Client {
	c := s.Server.Client()
	jar, _ := cookiejar.New(nil) // never fails without options
	c.Jar = jar
	return c
}

// Token returns the session token the client c holds for the server, or "".
func (s *Server[T]) Token(c *http.Client) string {
	req, _ := http.NewRequest("GET", s.URL, nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == s.mgr.CookieName() {
			return ck.Value
		}
	}
	return ""
}

// Get sends a GET of path from c and returns the status and body.
func (s *Server[T]) Get(tb testing.TB, c *http.Client, path string) (int, string) {
	tb.Helper()
	res, err := c.Get(s.URL + path)
	if err != nil {
		tb.Fatalf("sessiontest: GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Clock is a clock that tests move by hand, so expiry is tested without
// sleeping: pass its Now method as session.Options.Now (and to the
// store's options where it has one). It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
