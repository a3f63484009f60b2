package migratestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/migratestore"
	"github.com/typedsession/session/store/storetest"
)

func TestConformance(t *testing.T) {
	c := sessiontest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		from := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
		to := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
		return migratestore.New(from, to)
	}, storetest.Options{Advance: c.Advance, Now: c.Now})
}

type sess struct {
	User  string
	Count int
}

// TestMigration: sessions made on the old store keep working through the
// migrating one, move on their first write, and lose no concurrent change.
func TestMigration(t *testing.T) {
	ring, _ := cipher.NewRing(bytes.Repeat([]byte{9}, 32))
	ctx := context.Background()
	old := memstore.New(memstore.Options{SweepInterval: -1})
	before, _ := session.New[sess](old, session.Options{Cipher: ring})
	reader := sessiontest.Seed(t, before, sess{User: "reader"})
	writer := sessiontest.Seed(t, before, sess{User: "writer"})
	racer := sessiontest.Seed(t, before, sess{User: "racer"})

	neu := memstore.New(memstore.Options{SweepInterval: -1})
	after, _ := session.New[sess](migratestore.New(old, neu), session.Options{Cipher: ring})
	load := func(m *session.Manager[sess], tok string) sess {
		p, err := m.Begin(ctx, tok).Get()
		if err != nil {
			t.Fatal(err)
		}
		return *p
	}
	if got := load(after, reader); got.User != "reader" {
		t.Fatalf("a session of the old store reads %+v", got)
	}
	s := after.Begin(ctx, writer)
	p, _ := s.Get()
	p.Count = 1
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := old.Load(ctx, keyOf(writer)); found {
		t.Fatal("a written session stayed in the old store")
	}
	onlyNew, _ := session.New[sess](neu, session.Options{Cipher: ring})
	if got := load(onlyNew, writer); got != (sess{User: "writer", Count: 1}) {
		t.Fatalf("the new store holds %+v", got)
	}
	// Two requests move one session at once: both changes survive.
	a, b := after.Begin(ctx, racer), after.Begin(ctx, racer)
	pa, _ := a.Get()
	pb, _ := b.Get()
	pa.Count = 5
	pb.User = "racer2"
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := load(after, racer); got != (sess{User: "racer2", Count: 5}) {
		t.Fatalf("after two requests moved one session: %+v", got)
	}
	// A logout of a session still in the old store ends it.
	s = after.Begin(ctx, reader)
	s.Destroy()
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := load(after, reader); got.User != "" {
		t.Fatalf("a logged-out session of the old store reads %+v", got)
	}
}

// keyOf is the store key of a token, as the manager derives it.
func keyOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
