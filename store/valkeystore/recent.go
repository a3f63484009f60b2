package valkeystore

import (
	"hash/maphash"
	"sync"
	"time"
)

// recent remembers the keys a Store wrote during at least the last window,
// with a mark of what it wrote, so that the Store trusts its client-side
// cache for them only when the cache holds that write.
//
// valkey-go's cache learns of a write from the server's invalidation message,
// which the server sends after the write's own reply (and, with several
// connections, on another connection), so right after a write the cache can
// still hold the old value. A copy cached before the write lives at most
// CacheTTL from when it was requested; for CacheTTL after a write, a cached
// answer is therefore used only if it is the value written (or a later write
// from elsewhere has changed it, which a plain GET then sees).
//
// Keys are kept in two generations that turn over every window, so that
// forgetting costs no scan: a key stays between one and two windows.
type recent struct {
	window time.Duration
	base   time.Time            // monotonic reference point
	clock  func() time.Duration // time since base; nil means the real clock

	mu     sync.RWMutex
	cur    map[string]uint64
	prev   map[string]uint64
	turned time.Duration // when cur was started, since base
}

func newRecent(window time.Duration) *recent {
	return &recent{window: window, base: time.Now(), cur: make(map[string]uint64)}
}

func (r *recent) now() time.Duration {
	if r.clock != nil {
		return r.clock()
	}
	return time.Since(r.base)
}

// Marks of what a Store wrote: a fingerprint of the record (see mark), or one
// of these.
const (
	markUnknown uint64 = iota // the outcome is unknown: always read past the cache
	markDeleted               // the key was deleted
	markFirst                 // the least fingerprint
)

var markSeed = maphash.MakeSeed()

// mark fingerprints a record written; a nil record is a deletion.
func mark(record []byte) uint64 {
	if record == nil {
		return markDeleted
	}
	return max(maphash.Bytes(markSeed, record), markFirst)
}

// add records that k was written now, with the mark of what was written.
func (r *recent) add(k string, m uint64) {
	now := r.now()
	r.mu.Lock()
	switch d := now - r.turned; {
	case d >= 2*r.window:
		r.prev, r.cur, r.turned = nil, make(map[string]uint64), now
	case d >= r.window:
		r.prev, r.cur, r.turned = r.cur, make(map[string]uint64, len(r.cur)), now
	}
	r.cur[k] = m
	r.mu.Unlock()
}

// get reports whether k may have been written less than a window ago, and
// the mark of its last write.
func (r *recent) get(k string) (m uint64, ok bool) {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	d := now - r.turned
	if d >= 2*r.window {
		return 0, false // everything was added at least a window ago
	}
	if m, ok := r.cur[k]; ok {
		return m, true
	}
	if d >= r.window {
		return 0, false // prev was closed more than a window ago
	}
	m, ok = r.prev[k]
	return m, ok
}
