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
