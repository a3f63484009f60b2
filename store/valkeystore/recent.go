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
// Writes compare and set, so a stale read cannot make one lose another's
// change; the bookkeeping is for the reads alone: a request that only reads
// a session, right after this Store wrote it, must see that write.
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
	busy   map[string]*flight // keys with writes in flight
	turned time.Duration      // when cur was started, since base
}

func newRecent(window time.Duration) *recent {
	return &recent{window: window, base: time.Now(), cur: make(map[string]uint64), busy: make(map[string]*flight)}
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

// flight counts the writes of one key under way. When two overlap, the order
// in which they finish need not be the order the server applied them, so
// neither one's mark can say what the key holds.
type flight struct {
	n     int
	mixed bool
}

// begin notes that a write of k is about to be sent. Every begin is followed
// by one add or done.
func (r *recent) begin(k string) {
	r.mu.Lock()
	f := r.busy[k]
	if f == nil {
		f = new(flight)
		r.busy[k] = f
	} else {
		f.mixed = true
	}
	f.n++
	r.mu.Unlock()
}

// settle ends one write of k and reports whether it overlapped another.
// r.mu is held.
func (r *recent) settle(k string) (mixed bool) {
	f := r.busy[k]
	if f == nil {
		return false
	}
	if f.n--; f.n == 0 {
		delete(r.busy, k)
	}
	return f.mixed
}

// done ends a write of k that left the value as it was (its condition did
// not hold).
func (r *recent) done(k string) {
	r.mu.Lock()
	r.settle(k)
	r.mu.Unlock()
}

// add ends a write of k begun now, recording the mark of what was written
// (or markUnknown when it overlapped another write of k).
func (r *recent) add(k string, m uint64) {
	now := r.now()
	r.mu.Lock()
	if r.settle(k) {
		m = markUnknown
	}
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
