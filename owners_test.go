package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
	"github.com/typedsession/session/store/memstore"
)

func TestOwnerSessions(t *testing.T) {
	racetest.Owners(t, func(t *testing.T, now func() time.Time) (store.Store, store.Store) {
		st := memstore.New(memstore.Options{Now: now, SweepInterval: -1})
		return st, st
	})
}

func TestOwnerSessionsNeedAnIndex(t *testing.T) {
	m := newMgr[cart](t, cookiestore.New(cookiestore.Options{}), session.Options{})
	if _, err := m.Sessions(context.Background(), "ann"); !errors.Is(err, session.ErrNoIndex) {
		t.Fatalf("Sessions on the cookie store: %v, want ErrNoIndex", err)
	}
	if _, err := m.RevokeAll(context.Background(), "ann"); !errors.Is(err, session.ErrNoIndex) {
		t.Fatalf("RevokeAll on the cookie store: %v, want ErrNoIndex", err)
	}
	// Login still works: the owner travels in the cookie.
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r, "ann"); err != nil {
			t.Errorf("Login with the cookie store: %v", err)
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "https://example.com/", nil))
	c := w.Result().Cookies()
	if len(c) != 1 {
		t.Fatal("no cookie")
	}
	s := m.Begin(context.Background(), c[0].Value)
	if info, _ := s.Info(); info.Owner != "ann" {
		t.Fatalf("owner %q in the cookie", info.Owner)
	}
}

// TestCookieEpochs: with Options.Epochs, cookie sessions can be signed out
// everywhere (else), though nothing of them is kept on the server.
func TestCookieEpochs(t *testing.T) {
	epochs := memstore.New(memstore.Options{SweepInterval: -1})
	m := newMgr[cart](t, cookiestore.New(cookiestore.Options{}), session.Options{Epochs: epochs})
	login := func() string {
		w := httptest.NewRecorder()
		middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := m.Login(r, "ann"); err != nil {
				t.Error(err)
			}
			m.Get(r).User = "ann"
		})).ServeHTTP(w, httptest.NewRequest("POST", "https://example.com/", nil))
		return w.Result().Cookies()[0].Value
	}
	laptop, phone := login(), login()
	if p := load(t, m, phone); p.User != "ann" {
		t.Fatalf("the phone reads %+v", p)
	}
	// Sign out the others, from the laptop: its cookie is re-sealed.
	var fresh string
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.RevokeOthers(r); err != nil {
			t.Error(err)
		}
	}))
	r := httptest.NewRequest("POST", "https://example.com/", nil)
	r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: laptop})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if c := w.Result().Cookies(); len(c) == 1 {
		fresh = c[0].Value
	}
	if p := load(t, m, phone); p.User != "" {
		t.Fatalf("after RevokeOthers the phone's cookie reads %+v", p)
	}
	if p := load(t, m, fresh); p.User != "ann" {
		t.Fatalf("the laptop's new cookie reads %+v", p)
	}
	if p := load(t, m, laptop); p.User != "" {
		t.Fatalf("the laptop's old cookie still reads %+v", p)
	}
	if _, err := m.RevokeAll(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if p := load(t, m, fresh); p.User != "" {
		t.Fatalf("after RevokeAll the laptop reads %+v", p)
	}
	if _, err := m.Sessions(context.Background(), "ann"); !errors.Is(err, session.ErrNoIndex) {
		t.Fatalf("listing cookie sessions: %v, want ErrNoIndex", err)
	}
	if _, err := session.New[cart](cookiestore.New(cookiestore.Options{}), session.Options{Cipher: m2cipher(t), Epochs: noIndex{epochs}}); !errors.Is(err, session.ErrOptions) {
		t.Fatalf("Epochs without an index: %v", err)
	}
}

// noIndex is a store that keeps no per-owner index.
type noIndex struct{ *memstore.Store }

func (noIndex) Index() store.Index { return nil }
