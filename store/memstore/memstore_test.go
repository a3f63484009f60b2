package memstore_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	c := sessiontest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		s := memstore.New(memstore.Options{Now: c.Now})
		t.Cleanup(func() { s.Close() })
		return s
	}, storetest.Options{Advance: c.Advance, Now: c.Now})
}

func TestSweep(t *testing.T) {
	c := sessiontest.NewClock(time.Unix(1e9, 0))
	s := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	ctx := context.Background()
	ops := []store.Op{
		{Key: "short", New: []byte("x"), Expiry: c.Now().Add(time.Minute)},
		{Key: "long", New: []byte("y"), Expiry: c.Now().Add(time.Hour)},
	}
	if err := s.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
		t.Fatalf("Write = %v, %+v", err, ops)
	}
	c.Advance(2 * time.Minute)
	if got := s.Len(); got != 2 {
		t.Fatalf("Len before sweep = %d, want 2", got)
	}
	s.Sweep()
	if got := s.Len(); got != 1 {
		t.Fatalf("Len after sweep = %d, want 1", got)
	}
	if _, found, _ := s.Load(ctx, "long"); !found {
		t.Fatal("sweep removed a live record")
	}
}

func TestCloseStopsSweeper(t *testing.T) {
	s := memstore.New(memstore.Options{SweepInterval: time.Millisecond})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// goleak in TestMain fails the run if the sweeper outlived Close.
}
