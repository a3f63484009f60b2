package valkeystore_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/valkeystore"
)

// TestRaces runs concurrent requests of one session through the middleware
// against a real server: standalone, with the client-side cache, and on a
// cluster. None loses a write silently.
func TestRaces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		cache time.Duration
	}{
		{"standalone", envAddr, 0},
		{"cached", envAddr, time.Minute},
		{"cluster", envClusterAddrs, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, tc.env))
			racetest.Run(t, func(t *testing.T, _ func() time.Time) store.Store {
				return valkeystore.New(client, valkeystore.Options{
					Prefix:   uniquePrefix(t, client),
					CacheTTL: tc.cache,
					Timeout:  5 * time.Second,
				})
			})
		})
	}
}
