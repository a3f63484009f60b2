// Package sitetest is the demo's routes on a test server, for the
// end-to-end tests of the server-side stores: each store's tests build a
// Site on their store and look at what it leaves on the server.
package sitetest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
)

// Sess is the payload of the site's sessions.
type Sess struct {
	User    string
	Counter int
}

// Site serves GET / (count), GET /whoami, POST /login (regenerate, set the
// user) and POST /logout on a TLS test server. Its error handler answers
// 503, so a test tells a store failure from a bug, and the server keeps the
// errors (Srv.Errors).
type Site struct {
	Srv     *sessiontest.Server[Sess]
	Mgr     *session.Manager[Sess]
	Clock   *sessiontest.Clock
	Browser *http.Client // the one browser the tests drive

	t      *testing.T
	mu     sync.Mutex
	tokens []string
}

// New builds a site on st, sealing with a fixed key, reading time from
// clock (which st should read too).
func New(t *testing.T, st store.Store, clock *sessiontest.Clock, opts session.Options) *Site {
	t.Helper()
	ring, err := cipher.NewRing(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts.Cipher = ring
	opts.Now = clock.Now
	mgr, err := session.New[Sess](st, opts)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(w http.ResponseWriter, v map[string]any) { json.NewEncoder(w).Encode(v) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		p := mgr.Get(r)
		p.Counter++
		reply(w, map[string]any{"counter": p.Counter})
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		p := mgr.Get(r)
		reply(w, map[string]any{"user": p.User, "counter": p.Counter})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if mgr.Regenerate(r) != nil {
			return
		}
		mgr.Get(r).User = r.FormValue("user")
		reply(w, map[string]any{"user": mgr.Get(r).User})
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		mgr.Destroy(r)
		reply(w, map[string]any{"user": ""})
	})
	srv := sessiontest.NewServer(t, mgr, mux, middleware.Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
	}})
	return &Site{Srv: srv, Mgr: mgr, Clock: clock, Browser: srv.Client(), t: t}
}

// Answer is what the site answered.
type Answer struct {
	Code      int
	User      string
	Counter   int
	SetCookie string // the Set-Cookie header, if any
}

// Do sends a request from the site's browser; form may be nil.
func (s *Site) Do(method, path string, form url.Values) Answer {
	s.t.Helper()
	res := s.Srv.Do(s.t, s.Browser, method, path, form)
	var body struct {
		User    string
		Counter int
	}
	json.NewDecoder(res.Body).Decode(&body)
	for _, c := range res.Cookies() {
		if c.Name == s.Mgr.CookieName() && c.Value != "" {
			s.mu.Lock()
			s.tokens = append(s.tokens, c.Value)
			s.mu.Unlock()
		}
	}
	return Answer{Code: res.StatusCode, User: body.User, Counter: body.Counter, SetCookie: res.Header.Get("Set-Cookie")}
}

// Token returns the session token the site's browser holds.
func (s *Site) Token() string { return s.Srv.Token(s.Browser) }

// Tokens returns every token the site has handed out, for an audit of what
// the store keeps: none may appear in it.
func (s *Site) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}
