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
//	srv := sessiontest.NewServer(t, mgr, app, middleware.Options{})
//	c := srv.Client() // keeps cookies, as a browser does
//	srv.Do(t, c, "POST", "/login", url.Values{"user": {"ann"}})
//	clock.Advance(2 * time.Hour)
//	code, body := srv.Get(t, c, "/cart") // the session has expired
//	if errs := srv.Errors(); len(errs) != 0 { ... }
package sessiontest

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
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

	// Err is the error the middleware handed to its error handler (the
	// default one), if any: the session could not be loaded or saved.
	Err error
}

// Serve runs h behind mgr's middleware for r and reports what the response
// did to the session.
func Serve[T any](tb testing.TB, mgr *session.Manager[T], h http.Handler, r *http.Request) *Response[T] {
	tb.Helper()
	res := &Response[T]{ResponseRecorder: httptest.NewRecorder()}
	if c, err := r.Cookie(mgr.CookieName()); err == nil {
		res.Token = c.Value
	}
	handle := middleware.DefaultErrorHandler(nil)
	mw := middleware.New(mgr, middleware.Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		res.Err = err
		handle(w, r, err)
	}})
	mw(h).ServeHTTP(res.ResponseRecorder, r)
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

	mu   sync.Mutex
	errs []error
}

// NewServer starts a TLS test server serving h behind
// middleware.New(mgr, opts) (TLS, since session cookies are Secure by
// default) and closes it when the test ends. The server keeps every error
// the middleware hands to its error handler, for [Server.Errors].
//
// Like a browser's server, it speaks HTTP/2 to clients that offer it (those
// of [Server.Client]: concurrent requests share one connection rather than
// each paying for a TLS handshake) and HTTP/1.1 to the others, such as a
// websocket client, whose upgrade hijacks the connection.
func NewServer[T any](tb testing.TB, mgr *session.Manager[T], h http.Handler, opts middleware.Options) *Server[T] {
	s := &Server[T]{mgr: mgr}
	handle := opts.ErrorHandler
	if handle == nil {
		handle = middleware.DefaultErrorHandler(opts.Logger)
	}
	opts.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		handle(w, r, err)
	}
	s.Server = httptest.NewUnstartedServer(middleware.New(mgr, opts)(h))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	s.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

// Errors returns the errors the middleware has handed to its error handler
// so far, oldest first: sessions that could not be loaded or saved.
func (s *Server[T]) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// Client returns a client of the server with a cookie jar of its own, as a
// browser: each call gives a new browser.
func (s *Server[T]) Client() *http.Client {
	// A copy: httptest hands out one client, and a jar set on it would be
	// every caller's.
	c := *s.Server.Client()
	c.Jar, _ = cookiejar.New(nil) // never fails without options
	return &c
}

// Token returns the session token the client c (from [Server.Client])
// holds for the server, or "".
func (s *Server[T]) Token(c *http.Client) string {
	for _, ck := range c.Jar.Cookies(s.url()) {
		if ck.Name == s.mgr.CookieName() {
			return ck.Value
		}
	}
	return ""
}

// SetToken makes the client c (from [Server.Client]) hold token for the
// server, as if the server had set it: to replay an old token, or one
// copied from another client.
func (s *Server[T]) SetToken(c *http.Client, token string) {
	c.Jar.SetCookies(s.url(), []*http.Cookie{{Name: s.mgr.CookieName(), Value: token, Path: "/", Secure: true}})
}

func (s *Server[T]) url() *url.URL {
	u, _ := url.Parse(s.URL) // httptest makes it well formed
	return u
}

// Do sends a request from c to the server: method and path, with form (if
// not nil) as an HTML form sends it, in the query of a GET or HEAD and
// URL-encoded in the body otherwise. The response's body is read before Do
// returns and needs no closing.
//
// Do may run on any goroutine, for concurrent requests: when the request
// fails it reports the error with tb.Errorf (not Fatalf, which only the
// test's goroutine may call) and returns a response with status 0 and an
// empty body.
func (s *Server[T]) Do(tb testing.TB, c *http.Client, method, path string, form url.Values) *http.Response {
	tb.Helper()
	var body io.Reader
	if form != nil && (method == "GET" || method == "HEAD") {
		path += "?" + form.Encode()
	} else if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		return failed(tb, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		return failed(tb, method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return failed(tb, method, path, err)
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

// failed reports a request that got no response, and returns the empty
// response Do documents.
func failed(tb testing.TB, method, path string, err error) *http.Response {
	tb.Helper()
	tb.Errorf("sessiontest: %s %s: %v", method, path, err)
	return &http.Response{Header: http.Header{}, Body: http.NoBody}
}

// Get sends a GET of path from c, as [Server.Do] does, and returns the
// status and body.
func (s *Server[T]) Get(tb testing.TB, c *http.Client, path string) (int, string) {
	tb.Helper()
	res := s.Do(tb, c, "GET", path, nil)
	b, _ := io.ReadAll(res.Body) // in memory: cannot fail
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
