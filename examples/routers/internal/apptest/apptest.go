// Package apptest runs the app's scenarios through a router, over HTTP: the
// same checks for every router this module mounts the app on.
package apptest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/typedsession/session/examples/routers/app"
)

// Server serves the app, mounted on a router, over HTTP on loopback.
type Server struct {
	// App is the app the router serves.
	App *app.App
	// URL is the server's base URL.
	URL string
	// Name is the session cookie's name.
	Name string

	t      testing.TB
	client *http.Client
}

// Start builds an App, mounts it with mount and serves the result until the
// test ends.
func Start(t testing.TB, mount func(*app.App) http.Handler) *Server {
	t.Helper()
	a, err := app.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(mount(a))
	t.Cleanup(srv.Close)
	return &Server{
		App:  a,
		URL:  srv.URL,
		Name: a.Mgr.CookieName(),
		t:    t,
		client: &http.Client{
			// Redirects are answers to look at, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Result is what the server answered.
type Result struct {
	Status int
	Header http.Header
	Body   string
	// Cookie is the session cookie the answer set, or nil.
	Cookie *http.Cookie
}

// Cleared reports whether the answer expired the session cookie.
func (r Result) Cleared() bool { return r.Cookie != nil && r.Cookie.MaxAge < 0 }

// Issued reports whether the answer handed out a session token.
func (r Result) Issued() bool { return r.Cookie != nil && r.Cookie.MaxAge >= 0 && r.Cookie.Value != "" }

// Do sends a request with the session cookie c, if not nil, and with form,
// if not nil, as an urlencoded body. A transport failure is reported with
// t.Errorf (Do may run in other goroutines) and gives a zero Result.
func (s *Server) Do(method, path string, form url.Values, c *http.Cookie) Result {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Errorf("%s %s: %v", method, path, err)
		return Result{}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Errorf("%s %s: %v", method, path, err)
		return Result{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Errorf("%s %s: reading the body: %v", method, path, err)
	}
	out := Result{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	for _, ck := range resp.Cookies() {
		if ck.Name == s.Name {
			out.Cookie = ck
		}
	}
	return out
}

// Decode decodes the JSON body of r into v.
func Decode[V any](t testing.TB, r Result) V {
	t.Helper()
	var v V
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return v
}

// Want fails the test unless r has the status code and issued, or did not
// issue, a session token.
func Want(t testing.TB, what string, r Result, code int, issued bool) {
	t.Helper()
	if r.Status != code {
		t.Errorf("%s: status %d, want %d (body %q)", what, r.Status, code, r.Body)
	}
	if r.Issued() != issued {
		t.Errorf("%s: session token sent = %v, want %v (Set-Cookie %q)", what, r.Issued(), issued, r.Header.Values("Set-Cookie"))
	}
}

// Concurrency is how many increments Run sends at once with one cookie.
const Concurrency = 20

// Run checks the app mounted by mount, through its router: the session
// cookie is sent on an answer with a body and on a refusal, the session comes
// back on the next request, a login hands out a new token and retires the
// old one, a logout expires the cookie, and Concurrency increments sent at
// once with one cookie all count.
func Run(t *testing.T, mount func(*app.App) http.Handler) {
	t.Run("anonymous", func(t *testing.T) {
		s := Start(t, mount)
		r := s.Do(http.MethodGet, "/whoami", nil, nil)
		Want(t, "GET /whoami without a session", r, http.StatusOK, false)
		if got := Decode[app.Whoami](t, r); got != (app.Whoami{}) {
			t.Errorf("GET /whoami without a session = %+v, want zero", got)
		}
	})

	t.Run("body", func(t *testing.T) {
		s := Start(t, mount)
		r := s.Do(http.MethodPost, "/count", nil, nil)
		Want(t, "POST /count", r, http.StatusOK, true)
		if got := Decode[app.Counted](t, r).Counter; got != 1 {
			t.Errorf("POST /count: counter %d, want 1", got)
		}
		if !strings.Contains(strings.Join(r.Header.Values("Cache-Control"), ","), "no-store") {
			t.Errorf("POST /count: Cache-Control %q, want no-store on an answer that sets a cookie", r.Header.Values("Cache-Control"))
		}
		if r.Cookie == nil {
			return
		}
		// The session comes back, and a read sends no cookie.
		again := s.Do(http.MethodGet, "/whoami", nil, r.Cookie)
		Want(t, "GET /whoami with the cookie", again, http.StatusOK, false)
		if got := Decode[app.Whoami](t, again); got.Counter != 1 {
			t.Errorf("GET /whoami with the cookie = %+v, want counter 1", got)
		}
	})

	t.Run("aborted", func(t *testing.T) {
		s := Start(t, mount)
		r := s.Do(http.MethodGet, "/private", nil, nil)
		Want(t, "GET /private without a login", r, http.StatusUnauthorized, true)
		if r.Cookie == nil {
			return
		}
		// The refusal's cookie carried the page asked for to the login.
		in := s.Do(http.MethodPost, "/login", url.Values{"user": {"ada"}}, r.Cookie)
		Want(t, "POST /login", in, http.StatusOK, true)
		if got, want := Decode[app.LoggedIn](t, in), (app.LoggedIn{User: "ada", ReturnTo: "/private"}); got != want {
			t.Errorf("POST /login = %+v, want %+v", got, want)
		}
		if in.Cookie == nil {
			return
		}
		if in.Cookie.Value == r.Cookie.Value {
			t.Error("POST /login kept the token; want a new one")
		}
		in2 := s.Do(http.MethodGet, "/private", nil, in.Cookie)
		Want(t, "GET /private after the login", in2, http.StatusOK, false)
		if got := Decode[app.Whoami](t, in2).User; got != "ada" {
			t.Errorf("GET /private after the login: user %q, want ada", got)
		}
		old := s.Do(http.MethodGet, "/whoami", nil, r.Cookie)
		if got := Decode[app.Whoami](t, old).User; got != "" {
			t.Errorf("GET /whoami with the token from before the login: user %q, want none", got)
		}
	})

	t.Run("logout", func(t *testing.T) {
		s := Start(t, mount)
		in := s.Do(http.MethodPost, "/login", url.Values{"user": {"ada"}}, nil)
		Want(t, "POST /login", in, http.StatusOK, true)
		if in.Cookie == nil {
			return
		}
		out := s.Do(http.MethodPost, "/logout", nil, in.Cookie)
		Want(t, "POST /logout", out, http.StatusNoContent, false)
		if !out.Cleared() {
			t.Errorf("POST /logout: Set-Cookie %q, want the session cookie expired", out.Header.Values("Set-Cookie"))
		}
		after := s.Do(http.MethodGet, "/whoami", nil, in.Cookie)
		if got := Decode[app.Whoami](t, after).User; got != "" {
			t.Errorf("GET /whoami after the logout: user %q, want none", got)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		s := Start(t, mount)
		first := s.Do(http.MethodPost, "/count", nil, nil)
		Want(t, "POST /count", first, http.StatusOK, true)
		if first.Cookie == nil {
			return
		}
		var wg sync.WaitGroup
		for range Concurrency {
			wg.Go(func() {
				r := s.Do(http.MethodPost, "/count", nil, first.Cookie)
				Want(t, "concurrent POST /count", r, http.StatusOK, false)
			})
		}
		wg.Wait()
		r := s.Do(http.MethodGet, "/whoami", nil, first.Cookie)
		if got, want := Decode[app.Whoami](t, r).Counter, int64(1+Concurrency); got != want {
			t.Errorf("after %d concurrent increments: counter %d, want %d", Concurrency, got, want)
		}
	})
}
