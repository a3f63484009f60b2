package valkeystore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/migratestore"
	"github.com/typedsession/session/store/valkeystore"
)

// TestMigrate moves sessions from memory to Valkey, and from one prefix to
// another, through migratestore: nobody is logged out, and a written
// session ends up in the new place only.
func TestMigrate(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	ring, _ := cipher.NewRing(bytes.Repeat([]byte{4}, 32))
	ctx := context.Background()
	type sess struct{ User string }
	newVK := func() store.Store {
		return valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client), Timeout: 5 * time.Second})
	}
	manager := func(st store.Store) *session.Manager[sess] {
		m, err := session.New[sess](st, session.Options{Cipher: ring})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		from, to store.Store
	}{
		{"memory to Valkey", memstore.New(memstore.Options{SweepInterval: -1}), newVK()},
		{"prefix change", newVK(), newVK()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sessiontest.Seed(t, manager(tc.from), sess{User: "ann"})
			s := manager(migratestore.New(tc.from, tc.to)).Begin(ctx, tok)
			p, err := s.Get()
			if err != nil || p.User != "ann" {
				t.Fatalf("through the migration: %+v, %v", p, err)
			}
			p.User = "ann2"
			if _, err := s.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if p, _ := manager(tc.to).Begin(ctx, tok).Get(); p.User != "ann2" {
				t.Fatalf("the new store holds %+v", p)
			}
			if p, _ := manager(tc.from).Begin(ctx, tok).Get(); p.User != "" {
				t.Fatalf("the old store still holds %+v", p)
			}
		})
	}
}
