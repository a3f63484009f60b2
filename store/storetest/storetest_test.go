package storetest_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// noIndex is a store that keeps no per-owner index, as a third party's may.
type noIndex struct{ *memstore.Store }

func (noIndex) Index() store.Index { return nil }

// TestWithoutIndex runs the suite on a store without an index: the index
// subtests are skipped, not failed, and the rest of the suite runs as usual.
func TestWithoutIndex(t *testing.T) {
	c := sessiontest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		s := memstore.New(memstore.Options{Now: c.Now})
		t.Cleanup(func() { s.Close() })
		return noIndex{s}
	}, storetest.Options{Advance: c.Advance, Now: c.Now})
}
