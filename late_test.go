package session_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/cookiestore"
	"github.com/typedsession/session/store/memstore"
)

// TestLateChangeScope drives the second Commit of a scope whose response
// started before the handler was done with the session.
func TestLateChangeScope(t *testing.T) {
	ctx := context.Background()
	base := cart{User: "ann", Items: []string{"flash"}, Count: 1}
	for _, tc := range []struct {
		name   string
		before func(*cart) // before the first commit
		other  func(*cart) // another request's change
		later  bool        // the other request saves after the first commit, not before
		after  func(*cart) // after the first commit
		want   cart        // what the store holds at the end
		err    error
	}{
		{
			name:  "popped after rendering",
			after: func(c *cart) { c.Items = nil },
			want:  cart{User: "ann", Count: 1},
		},
		{
			name:   "after a saved change",
			before: func(c *cart) { c.Count++ },
			after:  func(c *cart) { c.Items = nil },
			want:   cart{User: "ann", Count: 2},
		},
		{
			name:  "over a stale read",
			other: func(c *cart) { c.User = "bob" },
			after: func(c *cart) { c.Items = nil },
			want:  cart{User: "bob", Count: 1},
		},
		{
			name:   "after a merged commit",
			before: func(c *cart) { c.Count++ },
			other:  func(c *cart) { c.User = "bob" },
			after:  func(c *cart) { c.Items = nil },
			want:   cart{User: "bob", Count: 2},
		},
		{
			name:   "after a commit another merged",
			before: func(c *cart) { c.Count++ },
			other:  func(c *cart) { c.User = "bob" },
			later:  true,
			after:  func(c *cart) { c.Items = nil },
			want:   cart{User: "bob", Count: 2},
		},
		{
			name:  "both changed one field",
			other: func(c *cart) { c.Items = append(c.Items, "more") },
			after: func(c *cart) { c.Items = nil },
			want:  cart{User: "ann", Items: []string{"flash", "more"}, Count: 1},
			err:   session.ErrConflict,
		},
		{
			name:   "both changed one field, after a merged commit",
			before: func(c *cart) { c.Count++ },
			other:  func(c *cart) { c.Items = append(c.Items, "more") },
			after:  func(c *cart) { c.Items = nil },
			want:   cart{User: "ann", Items: []string{"flash", "more"}, Count: 2},
			err:    session.ErrConflict,
		},
		{
			name: "nothing changed after",
			want: base,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
			tok := saved(t, m, base)
			s := m.Begin(ctx, tok)
			p, _ := s.Get()
			if tc.before != nil {
				tc.before(p)
			}
			other := m.Begin(ctx, tok)
			if tc.other != nil {
				po, _ := other.Get()
				tc.other(po)
				if !tc.later {
					commit(t, other)
				}
			}
			if res, err := s.Commit(ctx); err != nil || res.Send {
				t.Fatalf("first commit: %+v, %v", res, err)
			}
			if tc.other != nil && tc.later {
				commit(t, other)
			}
			if tc.after != nil {
				tc.after(p)
			}
			res, err := s.Commit(ctx)
			if !errors.Is(err, tc.err) || tc.err == nil && err != nil || res != (session.Result{}) {
				t.Fatalf("second commit: %+v, %v; want nothing to send, error %v", res, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, *load(t, m, tok)); diff != "" {
				t.Fatalf("stored (-want +got):\n%s", diff)
			}
			if res, err := s.Commit(ctx); err != nil || res != (session.Result{}) {
				t.Fatalf("third commit: %+v, %v; want nothing", res, err)
			}
		})
	}
}

func commit[T any](t *testing.T, s *session.Scope[T]) {
	t.Helper()
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestLateChangeCannotBeSaved: where saving a late change would need a new
// token sent (a new visitor's session, a cookie store's), nothing is saved
// and the second Commit says so.
func TestLateChangeCannotBeSaved(t *testing.T) {
	ctx := context.Background()
	mem := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	cookie := newMgr[cart](t, cookiestore.New(cookiestore.Options{}), session.Options{})
	for _, tc := range []struct {
		name string
		m    *session.Manager[cart]
		tok  func() string
	}{
		{"new visitor", mem, func() string { return "" }},
		{"destroyed", mem, func() string { return saved(t, mem, cart{User: "ann"}) }},
		{"cookie store", cookie, func() string { return saved(t, cookie, cart{User: "ann"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.m.Begin(ctx, tc.tok())
			p, _ := s.Get()
			if tc.name == "destroyed" {
				s.Destroy()
				p, _ = s.Get()
			}
			first, err := s.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p.Count = 5
			if _, err := s.Commit(ctx); !errors.Is(err, session.ErrLate) {
				t.Fatalf("second commit: %v, want ErrLate", err)
			}
			if first.Send {
				if got := load(t, tc.m, first.Token); got.Count != 0 {
					t.Fatalf("the late change reached the record: %+v", got)
				}
			}
		})
	}
}

// TestLateChangeMiddleware: through the middleware, a late change is saved
// when it can be, and otherwise logged once per route; the observer sees
// each.
func TestLateChangeMiddleware(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	rec := &recorder{}
	for _, st := range []struct {
		name  string
		saved bool // the store keeps sessions on the server
	}{
		{"memory", true},
		{"cookie", false},
	} {
		t.Run(st.name, func(t *testing.T) {
			logs.Reset()
			var m *session.Manager[cart]
			if st.saved {
				m = newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Observer: rec})
			} else {
				m = newMgr[cart](t, cookiestore.New(cookiestore.Options{}), session.Options{Observer: rec})
			}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /page/{id}", func(w http.ResponseWriter, r *http.Request) {
				c := m.Get(r)
				w.Write([]byte(strings.Join(c.Items, ",")))
				c.Items = nil // popped after rendering
			})
			h := middleware.New(m, middleware.Options{Logger: logger})(mux)
			tok := saved(t, m, cart{User: "ann", Items: []string{"hello"}})
			rec.take()
			for _, id := range []string{"1", "2"} {
				r := sessiontest.WithToken(httptest.NewRequest("GET", "/page/"+id, nil), m, tok)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					t.Fatalf("status %d", w.Code)
				}
			}
			events := rec.take()
			got := load(t, m, tok)
			warnings := strings.Count(logs.String(), "level=WARN")
			if st.saved {
				if len(got.Items) != 0 || warnings != 0 {
					t.Fatalf("stored %+v, %d warnings; want the late change saved, none", got, warnings)
				}
				want := []string{"load:hit", "commit:unchanged", "commit:saved", "load:hit", "commit:unchanged"}
				if diff := cmp.Diff(want, events); diff != "" {
					t.Fatalf("events (-want +got):\n%s", diff)
				}
				return
			}
			if len(got.Items) != 1 || warnings != 1 || !strings.Contains(logs.String(), "GET /page/{id}") {
				t.Fatalf("stored %+v, log %q; want the change lost and one warning naming the route", got, logs.String())
			}
			want := []string{"load:hit", "commit:unchanged", "commit:late", "load:hit", "commit:unchanged", "commit:late"}
			if diff := cmp.Diff(want, events); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFirstUseAfterResponse: a handler that first touches its session after
// the response started reads it as usual, and its changes are saved or
// reported like any made after the response started.
func TestFirstUseAfterResponse(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	var read cart
	h := middleware.New(m, middleware.Options{Logger: logger})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("done"))
		c := m.Get(r)
		read = *c
		c.Count++
	}))
	tok := saved(t, m, cart{User: "ann", Count: 1})
	for _, tc := range []struct {
		name  string
		tok   string
		read  cart
		saved bool
	}{
		{"a session", tok, cart{User: "ann", Count: 1}, true},
		{"a new visitor", "", cart{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			r := httptest.NewRequest("GET", "/", nil)
			if tc.tok != "" {
				r = sessiontest.WithToken(r, m, tc.tok)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 || w.Header().Get("Set-Cookie") != "" {
				t.Fatalf("status %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
			}
			if diff := cmp.Diff(tc.read, read); diff != "" {
				t.Fatalf("read (-want +got):\n%s", diff)
			}
			warned := strings.Contains(logs.String(), "level=WARN")
			if tc.saved && (load(t, m, tc.tok).Count != 2 || warned) {
				t.Fatalf("stored %+v, log %q; want the change saved, no warning", *load(t, m, tc.tok), logs.String())
			}
			if !tc.saved && !warned {
				t.Fatalf("log %q; want a warning that the change was lost", logs.String())
			}
		})
	}
}
