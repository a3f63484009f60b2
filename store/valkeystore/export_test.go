package valkeystore

import (
	"context"
	"time"
)

// LoadHit is Load that also reports whether the answer came from the
// client-side cache.
func (s *Store) LoadHit(ctx context.Context, key string) (record []byte, found, hit bool, err error) {
	return s.load(ctx, key)
}

// Recent exposes the recently-written set with a clock the test moves.
type Recent struct{ r *recent }

func NewRecent(window time.Duration, clock func() time.Duration) Recent {
	r := newRecent(window)
	r.clock = clock
	return Recent{r}
}

func (r Recent) Add(k string) { r.r.add(k, markUnknown) }
func (r Recent) Has(k string) bool {
	_, ok := r.r.get(k)
	return ok
}

// Overlap reports the mark left by two overlapping writes of k, and by one
// alone, each ending with a known value.
func (r Recent) Overlap(k string) (overlapping, alone uint64) {
	r.r.begin(k)
	r.r.begin(k)
	r.r.add(k, mark([]byte("first")))
	r.r.add(k, mark([]byte("second")))
	overlapping, _ = r.r.get(k)
	r.r.begin(k)
	r.r.add(k, mark([]byte("third")))
	alone, _ = r.r.get(k)
	return overlapping, alone
}

// MarkUnknown and Mark expose the marks.
const MarkUnknown = markUnknown

func Mark(b []byte) uint64 { return mark(b) }

// Scripts lists every script the store calls by name: its source and the
// SHA-1 it is called by.
var Scripts = map[string]struct{ Src, SHA string }{
	"write":     {casScript, casSHA},
	"bind":      {bindScript, bindSHA},
	"sessions":  {sessionsScript, sessionsSHA},
	"set epoch": {setEpochScript, setEpochSHA},
}

// EpochHit is Index().Epoch that also reports whether the answer came from
// the client-side cache.
func (s *Store) EpochHit(ctx context.Context, owner string) (epoch []byte, hit bool, err error) {
	return s.idx.epoch(ctx, owner)
}

// SetNow gives s a clock the test moves: the one its expiry decisions
// (trimming the index, a computed TTL) are taken by.
func SetNow(s *Store, now func() time.Time) { s.now = now }
