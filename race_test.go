package session_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestRaces runs concurrent requests of one session through the middleware
// on the memory store: none loses a write silently.
func TestRaces(t *testing.T) {
	racetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s := memstore.New(memstore.Options{Now: now, SweepInterval: -1})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
