package valkeystore_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/internal/racetest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/valkeystore"
)

// forEachSetup runs f on a standalone server, with the client-side cache,
// on a cluster, and on a cluster with the cache, giving it the servers'
// addresses and the options to build stores with (their prefix aside).
func forEachSetup(t *testing.T, f func(t *testing.T, addrs []string, opts valkeystore.Options)) {
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
			f(t, serverAddrs(t, tc.env), valkeystore.Options{CacheTTL: tc.cache, Timeout: 5 * time.Second})
		})
	}
}

// TestRaces runs concurrent requests of one session through the middleware
// against a real server: standalone and cluster, with and without the
// client-side cache. None loses a write silently.
func TestRaces(t *testing.T) {
	forEachSetup(t, func(t *testing.T, addrs []string, opts valkeystore.Options) {
		client := newClient(t, addrs)
		racetest.Run(t, func(t *testing.T, _ func() time.Time) store.Store {
			opts.Prefix = uniquePrefix(t, client)
			return valkeystore.New(client, opts)
		})
	})
}

// TestOwners binds, lists and revokes sessions through two instances, each
// with a client of its own on one server (or cluster): a revocation on one
// takes effect on the other's next request, with the client-side cache on
// too.
func TestOwners(t *testing.T) {
	forEachSetup(t, func(t *testing.T, addrs []string, opts valkeystore.Options) {
		c1, c2 := newClient(t, addrs), newClient(t, addrs)
		racetest.Owners(t, func(t *testing.T, _ func() time.Time) (store.Store, store.Store) {
			opts.Prefix = uniquePrefix(t, c1)
			return valkeystore.New(c1, opts), valkeystore.New(c2, opts)
		})
	})
}
