// Package memstore keeps session records in the memory of one process.
//
// It suits development, tests and single-instance deployments; records are
// lost when the process exits. Expired records are never returned, and a
// background sweeper frees them; [Store.Close] stops it.
package memstore

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// DefaultSweepInterval is how often expired records are freed when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// SweepInterval is the time between sweeps of expired records.
	// Zero means DefaultSweepInterval; a negative value disables the sweeper
	// (expired records, never returned, are then freed only when overwritten,
	// deleted or swept by a call to Sweep).
	SweepInterval time.Duration

	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

type entry struct {
	rec []byte
	exp int64 // Unix milliseconds
}

// Store is an in-memory [store.Store]. It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu sync.RWMutex
	m  map[string]entry

	idx index // per-owner index

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// New returns an empty store and starts its sweeper.
func New(opts Options) *Store {
	s := &Store{now: opts.Now, m: make(map[string]entry)}
	s.idx.s = s
	if s.now == nil {
		s.now = time.Now
	}
	every := opts.SweepInterval
	if every == 0 {
		every = DefaultSweepInterval
	}
	if every > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.sweeper(every)
	}
	return s
}

func (s *Store) nowMilli() int64 { return s.now().UnixMilli() }

// Load implements [store.Store].
func (s *Store) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	if !ok || e.exp <= s.nowMilli() {
		return nil, false, nil
	}
	return append([]byte(nil), e.rec...), true, nil
}

// Write implements [store.Store]. Each op is decided and applied under the
// store's lock, so of several writes conditioned on one record, one wins.
func (s *Store) Write(_ context.Context, ops []store.Op) error {
	now := s.nowMilli()
	for i := range ops {
		op := &ops[i]
		var rec []byte
		exp := op.Expiry.UnixMilli()
		if len(op.New) > 0 && !op.Expiry.IsZero() && exp > now {
			rec = append(make([]byte, 0, len(op.New)), op.New...)
		}
		s.mu.Lock()
		e, ok := s.m[op.Key]
		if ok && e.exp <= now {
			delete(s.m, op.Key)
			e, ok = entry{}, false
		}
		if !bytes.Equal(e.rec, op.Old) {
			op.Applied = false
			op.Current = append([]byte(nil), e.rec...)
			s.mu.Unlock()
			continue
		}
		if rec == nil {
			delete(s.m, op.Key)
		} else {
			s.m[op.Key] = entry{rec: rec, exp: exp}
		}
		s.mu.Unlock()
		op.Applied, op.Current = true, nil
	}
	return nil
}

// Sweep frees every expired record now. It finds them under a read lock and
// deletes them in small batches, so that a sweep of a million sessions does
// not stall requests.
func (s *Store) Sweep() {
	const batch = 512
	now := s.nowMilli()
	s.idx.sweep(now)
	var expired []string
	s.mu.RLock()
	for k, e := range s.m {
		if e.exp <= now {
			expired = append(expired, k)
		}
	}
	s.mu.RUnlock()
	for len(expired) > 0 {
		n := min(batch, len(expired))
		s.mu.Lock()
		for _, k := range expired[:n] {
			// Re-checked: the key may have been saved again meanwhile.
			if e, ok := s.m[k]; ok && e.exp <= now {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
		expired = expired[n:]
	}
}

// Close stops the sweeper and waits for it to return. The store stays usable;
// Close may be called more than once.
func (s *Store) Close() error {
	if s.stop == nil {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}
