package session_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/store/memstore"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Enabled(context.Context) bool { return true }

func (r *recorder) Observe(_ context.Context, e session.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	what := "load:"
	if e.Commit {
		what = "commit:"
	}
	r.events = append(r.events, what+string(e.Outcome))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// TestObserver: each load and commit reports its outcome.
func TestObserver(t *testing.T) {
	clock := newClock()
	st := memstore.New(memstore.Options{Now: clock.Now, SweepInterval: -1})
	rec := &recorder{}
	m := newMgr[cart](t, st, session.Options{Now: clock.Now, Observer: rec, IdleTimeout: time.Hour})
	ctx := context.Background()
	step := func(tok string, f func(s *session.Scope[cart])) string {
		s := m.Begin(ctx, tok)
		f(s)
		res, _ := s.Commit(ctx)
		if res.Send {
			return res.Token
		}
		return tok
	}
	tok := step("", func(s *session.Scope[cart]) { p, _ := s.Get(); p.User = "ann" })
	step(tok, func(s *session.Scope[cart]) { s.Get() })
	step(tok, func(s *session.Scope[cart]) { p, _ := s.Get(); p.Count++ })
	// Two at once on one field: the second conflicts; on different ones,
	// it merges.
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ := a.Get()
	pb, _ := b.Get()
	pa.Count++
	pb.Count++
	a.Commit(ctx)
	b.Commit(ctx)
	a, b = m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ = a.Get()
	pb, _ = b.Get()
	pa.Count++
	pb.User = "bob"
	a.Commit(ctx)
	b.Commit(ctx)
	newTok := step(tok, func(s *session.Scope[cart]) { s.Regenerate() })
	step(tok, func(s *session.Scope[cart]) { s.Get() }) // the retired token
	other, _ := cipher.NewRing(bytes.Repeat([]byte{3}, 32))
	foreign, _ := session.New[cart](st, session.Options{Now: clock.Now, Cipher: other, Observer: rec})
	fs := foreign.Begin(ctx, newTok)
	fs.Get()
	fs.Commit(ctx)
	step(newTok, func(s *session.Scope[cart]) { s.Destroy() })
	old := step("", func(s *session.Scope[cart]) { p, _ := s.Get(); p.User = "x" })
	clock.Advance(50 * time.Minute)
	// Still in the store, but past the lifetime of a manager whose Lifetime
	// was cut.
	short, _ := session.New[cart](st, session.Options{Now: clock.Now, Cipher: m2cipher(t), Observer: rec, Lifetime: 30 * time.Minute})
	ss := short.Begin(ctx, old)
	ss.Get()
	ss.Commit(ctx)
	want := []string{
		"commit:created",
		"load:hit", "commit:unchanged",
		"load:hit", "commit:saved",
		"load:hit", "load:hit", "commit:saved", "commit:conflict",
		"load:hit", "load:hit", "commit:saved", "commit:merged",
		"load:hit", "commit:rotated",
		"load:retired", "commit:unchanged",
		"load:unreadable", "commit:unchanged",
		"load:hit", "commit:deleted",
		"commit:created",
		"load:expired", "commit:unchanged",
	}
	if diff := cmp.Diff(want, rec.take()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

// TestLogObserver: the default observer logs at debug level only.
func TestLogObserver(t *testing.T) {
	var buf bytes.Buffer
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		buf.Reset()
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
		m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Observer: session.LogObserver(logger)})
		tok := saved(t, m, cart{User: "ann"})
		load(t, m, tok)
		got := buf.String()
		if level == slog.LevelInfo && got != "" {
			t.Fatalf("logged at info level: %q", got)
		}
		if level == slog.LevelDebug && (!strings.Contains(got, "outcome=created") || !strings.Contains(got, "outcome=hit") || strings.Contains(got, tok)) {
			t.Fatalf("debug log %q: want the outcomes and never the token", got)
		}
	}
}

// m2cipher is the key ring newMgr gives managers.
func m2cipher(t *testing.T) *cipher.Ring {
	r, err := cipher.NewRing([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type sizes struct {
	mu sync.Mutex
	by map[session.Outcome]int
}

func (r *sizes) Enabled(context.Context) bool { return true }

func (r *sizes) Observe(_ context.Context, e session.Event) {
	r.mu.Lock()
	r.by[e.Outcome] = e.Size
	r.mu.Unlock()
}

// TestObserverSize: a load and a commit report the size of the record they
// read or wrote, and a commit that wrote nothing reports none.
func TestObserverSize(t *testing.T) {
	rec := &sizes{by: map[session.Outcome]int{}}
	m := newMgr[cart](t, memstore.New(memstore.Options{SweepInterval: -1}), session.Options{Observer: rec})
	tok := saved(t, m, cart{User: "ann", Count: 3})
	load(t, m, tok)
	created, hit, unchanged := rec.by[session.Created], rec.by[session.Hit], rec.by[session.Unchanged]
	if created == 0 || hit != created || unchanged != 0 {
		t.Fatalf("sizes: created %d, hit %d, unchanged %d; want created = hit > 0, unchanged 0", created, hit, unchanged)
	}
}
