package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
	"github.com/typedsession/session/store/memstore"
)

type cart struct {
	User  string
	Items []string
	Count int
	Prefs struct{ Theme, Lang string } // one field: merged as one unit
}

// counted resolves concurrent changes of Count by adding both increments;
// other fields both changed stay a conflict.
type counted struct {
	Count int
	Note  string
}

func (c *counted) Merge(base, theirs *counted) error {
	if c.Note != theirs.Note && c.Note != base.Note && theirs.Note != base.Note {
		return errors.New("both changed the note")
	}
	c.Count = theirs.Count + c.Count - base.Count
	if c.Note == base.Note {
		c.Note = theirs.Note
	}
	return nil
}

type byValue struct{ N int }

func (byValue) Merge(base, theirs *byValue) error { return nil }

func newMgr[T any](t *testing.T, st store.Backend, opts session.Options) *session.Manager[T] {
	t.Helper()
	if opts.Cipher == nil {
		r, err := cipher.NewRing([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		opts.Cipher = r
	}
	m, err := session.New[T](st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// saved saves v as a new session and returns its token.
func saved[T any](t *testing.T, m *session.Manager[T], v T) string {
	t.Helper()
	s := m.Begin(context.Background(), "")
	p, _ := s.Get()
	*p = v
	res, err := s.Commit(context.Background())
	if err != nil || !res.Send {
		t.Fatalf("seed: %+v, %v", res, err)
	}
	return res.Token
}

func load[T any](t *testing.T, m *session.Manager[T], tok string) *T {
	t.Helper()
	p, err := m.Begin(context.Background(), tok).Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMergeRules drives two scopes of one session: both load, one commits,
// then the other, whose outcome is the merge or a conflict.
func TestMergeRules(t *testing.T) {
	base := cart{User: "ann", Items: []string{"a"}, Count: 1}
	for _, tc := range []struct {
		name          string
		first, second func(*cart)
		want          cart // after both, when the second commits
		conflict      bool
	}{
		{"different fields merge", func(c *cart) { c.Items = append(c.Items, "b") }, func(c *cart) { c.Count++ },
			cart{User: "ann", Items: []string{"a", "b"}, Count: 2}, false},
		{"same field conflicts", func(c *cart) { c.Count++ }, func(c *cart) { c.Count++ }, cart{}, true},
		{"same value still conflicts", func(c *cart) { c.Count = 5 }, func(c *cart) { c.Count = 5 }, cart{}, true},
		{"nested struct is one unit", func(c *cart) { c.Prefs.Theme = "dark" }, func(c *cart) { c.Prefs.Lang = "fr" }, cart{}, true},
		{"a field cleared by one side", func(c *cart) { c.Items = nil }, func(c *cart) { c.User = "bob" },
			cart{User: "bob", Count: 1}, false},
		{"the other side only read", func(c *cart) {}, func(c *cart) { c.Count = 9 },
			cart{User: "ann", Items: []string{"a"}, Count: 9}, false},
	} {
		for _, cdc := range []codec.Codec{codec.MsgPack(), codec.JSON()} {
			t.Run(fmt.Sprintf("%s/%T", tc.name, cdc), func(t *testing.T) {
				m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Codec: cdc})
				tok := saved(t, m, base)
				ctx := context.Background()
				a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
				pa, _ := a.Get()
				pb, _ := b.Get()
				tc.first(pa)
				tc.second(pb)
				if _, err := a.Commit(ctx); err != nil {
					t.Fatalf("first commit: %v", err)
				}
				res, err := b.Commit(ctx)
				if tc.conflict {
					if !errors.Is(err, session.ErrConflict) || res.Send {
						t.Fatalf("second commit = %+v, %v; want ErrConflict and nothing to send", res, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("second commit: %v", err)
				}
				if diff := cmp.Diff(tc.want, *load(t, m, tok)); diff != "" {
					t.Fatalf("merged session (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestMergeHook(t *testing.T) {
	m := newMgr[counted](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	tok := saved(t, m, counted{Count: 1})
	ctx := context.Background()
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ := a.Get()
	pb, _ := b.Get()
	pa.Count += 2
	pb.Count += 3
	pb.Note = "b"
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatalf("a conflict the hook resolves: %v", err)
	}
	if got := *load(t, m, tok); got != (counted{Count: 6, Note: "b"}) {
		t.Fatalf("after the hook: %+v, want count 6 and the note", got)
	}
	// The hook refuses: a conflict.
	a, b = m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ = a.Get()
	pb, _ = b.Get()
	pa.Note, pb.Note = "x", "y"
	a.Commit(ctx)
	if _, err := b.Commit(ctx); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("a hook that refuses: %v, want ErrConflict", err)
	}
}

func TestMergeMethodOnValueRefused(t *testing.T) {
	_, err := session.New[byValue](memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	if !errors.Is(err, session.ErrOptions) || !strings.Contains(err.Error(), "pointer receiver") {
		t.Fatalf("New with a value-receiver Merge: %v, want ErrOptions about the receiver", err)
	}
}

func TestStrict(t *testing.T) {
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Strict: true})
	tok := saved(t, m, cart{User: "ann"})
	ctx := context.Background()
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ := a.Get()
	pb, _ := b.Get()
	pa.Count++
	pb.User = "bob"
	a.Commit(ctx)
	if _, err := b.Commit(ctx); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("strict mode, different fields: %v, want ErrConflict", err)
	}
}

func TestRememberMeMerges(t *testing.T) {
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	tok := saved(t, m, cart{User: "ann"})
	ctx := context.Background()
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	a.RememberMe(false)
	pb, _ := b.Get()
	pb.Count = 3
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := b.Commit(ctx)
	if err != nil || res.Send {
		t.Fatalf("a write merged over another's remember-me: %+v, %v; want no cookie (the other sent it)", res, err)
	}
	s := m.Begin(ctx, tok)
	if info, _ := s.Info(); info.Remembered {
		t.Fatal("the merge lost the other request's RememberMe(false)")
	}
	if p, _ := s.Get(); p.Count != 3 {
		t.Fatalf("count %d, want 3", p.Count)
	}
}

// TestUpdateRerunsOnConflict: Update re-runs fn on the newer session, so
// increments from other requests are never lost and fn's are counted once.
func TestUpdateRerunsOnConflict(t *testing.T) {
	m := newMgr[counted](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	tok := saved(t, m, counted{Count: 1})
	ctx := context.Background()
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ := a.Get()
	b.Get()
	pa.Note = "pending" // a's own change, not yet saved
	// b saves first, behind a's back.
	if err := b.Update(func(c *counted) error { c.Count += 10; return nil }); err != nil {
		t.Fatal(err)
	}
	runs := 0
	if err := a.Update(func(c *counted) error { runs++; c.Count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if runs != 2 || pa.Count != 12 || pa.Note != "pending" {
		t.Fatalf("after Update: runs %d, session %+v; want 2 runs, count 12 and the pending note", runs, *pa)
	}
	if res, err := a.Commit(ctx); err != nil || res.Send {
		t.Fatalf("commit after Update: %+v, %v; want nothing more to do", res, err)
	}
	if got := *load(t, m, tok); got != (counted{Count: 12, Note: "pending"}) {
		t.Fatalf("saved %+v", got)
	}
}

// TestUpdateFnErrorSavesNothing: when fn fails, on its first run or on a
// re-run after a conflict, nothing is saved and the session the handler
// holds is as it was before Update, changes made by earlier runs undone.
func TestUpdateFnErrorSavesNothing(t *testing.T) {
	errNo := errors.New("no")
	for _, tc := range []struct {
		name   string
		seeded bool // a saved session, not a new one
		failOn int  // the run of fn that fails
	}{
		{"first run", true, 1},
		{"re-run after a conflict", true, 2},
		{"new session", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMgr[counted](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
			ctx := context.Background()
			tok := ""
			if tc.seeded {
				tok = saved(t, m, counted{Count: 1})
			}
			s := m.Begin(ctx, tok)
			p, _ := s.Get()
			p.Note = "pending"
			want := *p
			if tc.failOn > 1 {
				other := m.Begin(ctx, tok)
				other.Get()
				if err := other.Update(func(c *counted) error { c.Count += 10; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			runs := 0
			err := s.Update(func(c *counted) error {
				runs++
				c.Count += 100
				if runs == tc.failOn {
					return errNo
				}
				return nil
			})
			if err != errNo || runs != tc.failOn {
				t.Fatalf("Update = %v after %d runs, want fn's error after %d", err, runs, tc.failOn)
			}
			if got, _ := s.Get(); got != p || *got != want {
				t.Fatalf("a failed fn left the session at %+v (same pointer: %v), want %+v", *got, got == p, want)
			}
			if tc.seeded {
				if got := load(t, m, tok).Count; got != 1+10*(tc.failOn-1) {
					t.Fatalf("stored count %d: fn's change was saved", got)
				}
			}
		})
	}
}

func TestUpdateGetInsideFnPanics(t *testing.T) {
	m := newMgr[counted](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	s := m.Begin(context.Background(), "")
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "inside the function passed to Update") {
			t.Fatalf("recovered %v, want the Update misuse panic", r)
		}
	}()
	s.Update(func(c *counted) error {
		s.Get()
		return nil
	})
}

// TestRegenerateAfterRequestEnded: no new token once the client is gone;
// the old one stays valid.
func TestRegenerateAfterRequestEnded(t *testing.T) {
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	tok := saved(t, m, cart{User: "ann"})
	ctx, cancel := context.WithCancel(context.Background())
	s := m.Begin(ctx, tok)
	s.Regenerate()
	cancel()
	res, err := s.Commit(context.Background())
	if !errors.Is(err, context.Canceled) || res.Send {
		t.Fatalf("regenerate after the request ended: %+v, %v; want context.Canceled and no token", res, err)
	}
	if p := load(t, m, tok); p.User != "ann" {
		t.Fatalf("the old token reads %+v", p)
	}
}

// TestForeignRecordLeftAlone: a record this instance cannot open (another
// key ring) is no session here, and stays for the instances that can.
func TestForeignRecordLeftAlone(t *testing.T) {
	st := memstore.New(memstore.Options{SweepInterval: -1})
	other, _ := cipher.NewRing([]byte(strings.Repeat("o", 32)))
	canary := newMgr[cart](t, st, session.Options{Cipher: other})
	tok := saved(t, canary, cart{User: "ann"})
	m := newMgr[cart](t, st, session.Options{})
	s := m.Begin(context.Background(), tok)
	if p, _ := s.Get(); p.User != "" {
		t.Fatalf("a foreign record opened: %+v", p)
	}
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := load(t, canary, tok); p.User != "ann" {
		t.Fatal("an instance without the key deleted the record")
	}
}

func TestPayloadWithoutExportedFieldsRefused(t *testing.T) {
	type hidden struct{ user string }
	_ = hidden{user: "lost"}.user // what a handler would set, and lose
	_, err := session.New[hidden](memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	if !errors.Is(err, session.ErrOptions) {
		t.Fatalf("New with a payload of unexported fields: %v, want ErrOptions", err)
	}
	type empty struct{}
	if _, err := session.New[empty](memstore.New(memstore.Options{SweepInterval: -1}), session.Options{}); err != nil {
		t.Fatalf("an empty struct (a session that only exists) was refused: %v", err)
	}
}

// TestTwoManagersInOneRequest: a login session and a preferences cookie,
// of different and of the same payload type, mounted together.
func TestTwoManagersInOneRequest(t *testing.T) {
	type prefs struct{ Theme string }
	login := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Cookie: session.Cookie{Name: "__Host-login"}})
	sameType := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Cookie: session.Cookie{Name: "__Host-other"}})
	pref := newMgr[prefs](t, cookiestore.New(cookiestore.Options{}), session.Options{Cookie: session.Cookie{Name: "__Host-prefs"}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		login.Get(r).User = "ann"
		sameType.Get(r).User = "other"
		pref.Get(r).Theme = "dark"
	})
	var handler http.Handler = h
	for _, m := range []middleware.Manager{login, sameType, pref} {
		handler = middleware.New(m, middleware.Options{})(handler)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/", nil))
	got := map[string]string{}
	for _, c := range rec.Result().Cookies() {
		got[c.Name] = c.Value
	}
	if len(got) != 3 {
		t.Fatalf("cookies %v, want one per manager", got)
	}
	if p := load(t, login, got["__Host-login"]); p.User != "ann" {
		t.Fatalf("login session %+v", p)
	}
	if p := load(t, sameType, got["__Host-other"]); p.User != "other" {
		t.Fatalf("second session of the same type %+v", p)
	}
	if p := load(t, pref, got["__Host-prefs"]); p.Theme != "dark" {
		t.Fatalf("prefs session %+v", p)
	}
}
