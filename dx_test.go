package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestSetLifetime: "remember me" for 30 days on one session, the default
// for others, within MaxLifetime; the cookie follows the session's own
// deadline.
func TestSetLifetime(t *testing.T) {
	clock := newClock()
	st := memstore.New(memstore.Options{Now: clock.Now, SweepInterval: -1})
	m := newMgr[cart](t, st, session.Options{Now: clock.Now, Lifetime: time.Hour, MaxLifetime: 30 * 24 * time.Hour})
	ctx := context.Background()
	s := m.Begin(ctx, "")
	p, _ := s.Get()
	p.User = "ann"
	if err := s.SetLifetime(31 * 24 * time.Hour); !errors.Is(err, session.ErrOptions) {
		t.Fatalf("SetLifetime over MaxLifetime: %v", err)
	}
	if err := s.SetLifetime(30 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	res, err := s.Commit(ctx)
	if err != nil || !res.Expires.Equal(clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("commit %+v, %v; want the cookie to last 30 days", res, err)
	}
	short := saved(t, m, cart{User: "bob"})
	clock.Advance(2 * time.Hour)
	if p := load(t, m, res.Token); p.User != "ann" {
		t.Fatalf("the remembered session ended after 2h: %+v", p)
	}
	if p := load(t, m, short); p.User != "" {
		t.Fatalf("a default session outlived Lifetime: %+v", p)
	}
	// Lowering MaxLifetime in an emergency ends the long ones.
	m2 := newMgr[cart](t, st, session.Options{Now: clock.Now, Lifetime: time.Hour})
	if p := load(t, m2, res.Token); p.User != "" {
		t.Fatalf("a 30-day session outlived a MaxLifetime of 1h: %+v", p)
	}
	if _, err := session.New[cart](st, session.Options{Lifetime: time.Hour, MaxLifetime: time.Minute}); !errors.Is(err, session.ErrOptions) {
		t.Fatalf("MaxLifetime below Lifetime: %v", err)
	}
}

// TestTokenAndOnCommit: a handler learns the token the client will hold,
// after middleware.Commit for a new one, and OnCommit runs once the session
// is saved, with that token; not when the commit fails.
func TestTokenAndOnCommit(t *testing.T) {
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	var before, after, hooked string
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).User = "ann"
		m.OnCommit(r, func(tok string) { hooked = tok })
		before, _ = m.Token(r)
		if err := middleware.Commit(w); err != nil {
			t.Error(err)
		}
		after, _ = m.Token(r)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	cookie := w.Result().Cookies()[0].Value
	if before != "" || after != cookie || hooked != cookie {
		t.Fatalf("token before commit %q, after %q, in OnCommit %q; want \"\", then the cookie's %q", before, after, hooked, cookie)
	}
	// A read of an existing session: the token it came with, hook included.
	hooked = ""
	h = middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.OnCommit(r, func(tok string) { hooked = tok })
		if tok, _ := m.Token(r); tok != cookie {
			t.Errorf("Token of a loaded session = %q", tok)
		}
	}))
	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: cookie})
	h.ServeHTTP(httptest.NewRecorder(), r)
	if hooked != cookie {
		t.Fatalf("OnCommit after a read got %q", hooked)
	}
	// A failed commit runs no hook.
	fail := newMgr[cart](t, failingWrites{memstore.New(memstore.Options{SweepInterval: -1})}, session.Options{})
	ran := false
	h = middleware.New(fail, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail.Get(r).User = "x"
		fail.OnCommit(r, func(string) { ran = true })
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/", nil))
	if ran {
		t.Fatal("OnCommit ran after a failed commit")
	}
}

func TestFlash(t *testing.T) {
	type withFlash struct {
		User  string
		Flash session.Flash[string]
	}
	m := newMgr[withFlash](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	tok := saved(t, m, withFlash{User: "ann"})
	ctx := context.Background()
	s := m.Begin(ctx, tok)
	p, _ := s.Get()
	p.Flash.Add("Saved.", "Welcome back.")
	s.Commit(ctx)
	s = m.Begin(ctx, tok)
	p, _ = s.Get()
	if got := strings.Join(p.Flash.Pop(), "|"); got != "Saved.|Welcome back." {
		t.Fatalf("Pop = %q", got)
	}
	s.Commit(ctx)
	if p := load(t, m, tok); len(p.Flash) != 0 || p.User != "ann" {
		t.Fatalf("after Pop the session holds %+v", p)
	}
}

// failingWrites is a store whose writes all fail.
type failingWrites struct{ *memstore.Store }

func (failingWrites) Write(context.Context, []store.Op) error { return errDown }
