package valkeystore_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/valkeystore"
)

// TestOwners binds, lists and revokes sessions through two instances, each
// with a client of its own on one server (or cluster): a revocation on one
// takes effect on the other's next request, with the client-side cache on
// too.
func TestOwners(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		cache time.Duration
	}{
		{"standalone", envAddr, 0},
		{"cached", envAddr, time.Minute},
		{"cluster", envClusterAddrs, 0},
		{"cluster/cached", envClusterAddrs, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := serverAddrs(t, tc.env)
			c1, c2 := newClient(t, addrs), newClient(t, addrs)
			racetest.Owners(t, func(t *testing.T, _ func() time.Time) (store.Store, store.Store) {
				prefix := uniquePrefix(t, c1)
				opts := valkeystore.Options{Prefix: prefix, CacheTTL: tc.cache, Timeout: 5 * time.Second}
				return valkeystore.New(c1, opts), valkeystore.New(c2, opts)
			})
		})
	}
}
