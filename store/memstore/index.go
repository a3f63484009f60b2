package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// index is a Store's per-owner index: owners' session keys and epochs, kept
// apart from the records (and their lock) since only logins, listings and
// revocations touch it.
type index struct {
	s *Store

	mu     sync.Mutex
	owners map[string]map[string]int64 // owner -> key -> expiry (Unix ms)
	epochs map[string]epoch
}

type epoch struct {
	v   []byte
	exp int64 // Unix ms
}

// Index implements [store.Store]: the store keeps a per-owner index in
// memory, swept with the records.
func (s *Store) Index() store.Index { return &s.idx }

func (x *index) init() {
	if x.owners == nil {
		x.owners = make(map[string]map[string]int64)
		x.epochs = make(map[string]epoch)
	}
}

// Bind implements [store.Index].
func (x *index) Bind(_ context.Context, owner, key string, expiry time.Time, ep []byte) ([]byte, error) {
	now, exp := x.s.nowMilli(), expiry.UnixMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	cur, ok := x.epochs[owner]
	if !ok || cur.exp <= now {
		cur = epoch{v: append([]byte(nil), ep...), exp: exp}
	}
	cur.exp = max(cur.exp, exp)
	x.epochs[owner] = cur
	if exp > now {
		keys := x.owners[owner]
		if keys == nil {
			keys = make(map[string]int64)
			x.owners[owner] = keys
		}
		keys[key] = exp
	}
	return append([]byte(nil), cur.v...), nil
}

// Unbind implements [store.Index].
func (x *index) Unbind(_ context.Context, owner, key string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if keys := x.owners[owner]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(x.owners, owner)
		}
	}
	return nil
}

// Sessions implements [store.Index].
func (x *index) Sessions(ctx context.Context, owner string) ([]store.Entry, error) {
	now := x.s.nowMilli()
	x.mu.Lock()
	var live []string
	for k, exp := range x.owners[owner] {
		if exp > now {
			live = append(live, k)
		} else {
			delete(x.owners[owner], k)
		}
	}
	x.mu.Unlock()
	var out []store.Entry
	for _, k := range live {
		rec, found, _ := x.s.Load(ctx, k)
		if found {
			out = append(out, store.Entry{Key: k, Record: rec})
		}
	}
	return out, nil
}

// Epoch implements [store.Index].
func (x *index) Epoch(_ context.Context, owner string) ([]byte, error) {
	now := x.s.nowMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, ok := x.epochs[owner]
	if !ok || cur.exp <= now {
		return nil, nil
	}
	return append([]byte(nil), cur.v...), nil
}

// SetEpoch implements [store.Index].
func (x *index) SetEpoch(_ context.Context, owner string, ep []byte, expiry time.Time) error {
	now, exp := x.s.nowMilli(), expiry.UnixMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	cur, ok := x.epochs[owner]
	if len(ep) == 0 {
		delete(x.epochs, owner)
		return nil
	}
	if ok && cur.exp > now {
		exp = max(exp, cur.exp)
	}
	if exp <= now {
		delete(x.epochs, owner)
		return nil
	}
	x.epochs[owner] = epoch{v: append([]byte(nil), ep...), exp: exp}
	return nil
}

// sweep frees expired entries and epochs.
func (x *index) sweep(now int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for owner, keys := range x.owners {
		for k, exp := range keys {
			if exp <= now {
				delete(keys, k)
			}
		}
		if len(keys) == 0 {
			delete(x.owners, owner)
		}
	}
	for owner, e := range x.epochs {
		if e.exp <= now {
			delete(x.epochs, owner)
		}
	}
}
