package valkeystore

import (
	"sync"
	"time"
)

// recent remembers the keys a Store wrote during at least the last window, so
// that the Store reads them past its client-side cache.
//
// valkey-go's cache learns of a write from the server's invalidation message,
// which the server sends after the write's own reply (and, with several
// connections, on another connection), so right after a write the cache can
// still hold the old value. A copy cached before the write lives at most
// CacheTTL from when it was requested; reading the key uncached for CacheTTL
// after a write therefore never returns a value older than that write.
//
// Keys are kept in two generations that turn over every window, so that
// forgetting costs no scan: a key stays between one and two windows.
type recent struct {
	window time.Duration
	base   time.Time            // monotonic reference point
	clock  func() time.Duration // time since base; nil means the real clock

	mu     sync.RWMutex
	cur    map[string]struct{}
	prev   map[string]struct{}
	turned time.Duration // when cur was started, since base
}

func newRecent(window time.Duration) *recent {
	return &recent{window: window, base: time.Now(), cur: make(map[string]struct{})}
}

func (r *recent) now() time.Duration {
	if r.clock != nil {
		return r.clock()
	}
	return time.Since(r.base)
}

// add records that k was written now.
func (r *recent) add(k string) {
	now := r.now()
	r.mu.Lock()
	switch d := now - r.turned; {
	case d >= 2*r.window:
		r.prev, r.cur, r.turned = nil, make(map[string]struct{}), now
	case d >= r.window:
		r.prev, r.cur, r.turned = r.cur, make(map[string]struct{}, len(r.cur)), now
	}
	r.cur[k] = struct{}{}
	r.mu.Unlock()
}

// has reports whether k may have been written less than a window ago.
func (r *recent) has(k string) bool {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	d := now - r.turned
	if d >= 2*r.window {
		return false // everything was added at least a window ago
	}
	if _, ok := r.cur[k]; ok {
		return true
	}
	if d >= r.window {
		return false // prev was closed more than a window ago
	}
	_, ok := r.prev[k]
	return ok
}
