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

// CasScript and CasSHA expose the write script and the name it is called by.
const (
	CasScript = casScript
	CasSHA    = casSHA
)
