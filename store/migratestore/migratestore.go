// Package migratestore moves sessions from one store to another without
// logging anyone out: from memory to Valkey, from one Valkey prefix or
// server to another, or to a SQL store.
//
// A [Store] reads from the new store and, when a session is not there yet,
// from the old one. It writes only to the new store: a session read from the
// old store moves to the new one on its first write (a create there, then the
// old record is deleted), with the same compare-and-set guarantees as any
// store, so two requests that move one session at once do not lose either's
// change. Sessions that are only read stay in the old store until they are
// written or expire; run the migration for a full session lifetime, then
// drop the old store.
//
// Records move unchanged: their sealing binds them to their store key,
// which does not depend on the store, so no key ring change is needed. The
// per-owner index is the new store's; sessions bound before the migration
// are listed once they have moved (a revocation still reaches them, through
// their owner's epoch, which Login re-creates in the new store on the next
// login: until then the old store's epoch applies to the old records).
package migratestore

import (
	"context"
	"fmt"

	"github.com/typedsession/session/store"
)

// Store is a [store.Store] that migrates sessions from an old store to a new
// one as they are written.
type Store struct {
	from, to store.Store
}

var _ store.Store = (*Store)(nil)

// New returns a store that reads from to, then from, and writes to to.
func New(from, to store.Store) *Store {
	if from == nil || to == nil {
		panic("migratestore: New called with a nil store")
	}
	return &Store{from: from, to: to}
}

// Load implements [store.Store]: the new store's record, or else the old
// store's.
func (s *Store) Load(ctx context.Context, key string) ([]byte, bool, error) {
	rec, found, err := s.to.Load(ctx, key)
	if err != nil || found {
		return rec, found, err
	}
	rec, found, err = s.from.Load(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("migratestore: load from the old store: %w", err)
	}
	return rec, found, nil
}

// Write implements [store.Store]. Each op is applied to the new store; an op
// that expects a record the new store does not have, but the old store does,
// moves it: created in the new store, then removed from the old one.
func (s *Store) Write(ctx context.Context, ops []store.Op) error {
	if err := s.to.Write(ctx, ops); err != nil {
		return err
	}
	for i := range ops {
		op := &ops[i]
		if op.Applied || len(op.Current) > 0 || len(op.Old) == 0 {
			continue
		}
		// The new store has nothing, and the op expected a record: it
		// may still be in the old store.
		if err := s.move(ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// move applies op, which expects op.Old under op.Key, to a record that is
// only in the old store.
func (s *Store) move(ctx context.Context, op *store.Op) error {
	cur, found, err := s.from.Load(ctx, op.Key)
	if err != nil {
		return fmt.Errorf("migratestore: load from the old store: %w", err)
	}
	if !found || string(cur) != string(op.Old) {
		op.Current = cur // changed or gone in the old store too
		return nil
	}
	// Claim the old record first, so that of two requests moving it only
	// one succeeds; then write the new store, unless the op was a delete.
	claim := []store.Op{{Key: op.Key, Old: op.Old}}
	if err := s.from.Write(ctx, claim); err != nil {
		return fmt.Errorf("migratestore: delete from the old store: %w", err)
	}
	if !claim[0].Applied {
		op.Current = claim[0].Current
		if len(op.Current) == 0 {
			// Another request moved it meanwhile: what it wrote is in
			// the new store.
			rec, _, err := s.to.Load(ctx, op.Key)
			if err != nil {
				return err
			}
			op.Current = rec
		}
		return nil
	}
	if len(op.New) == 0 {
		op.Applied, op.Current = true, nil
		return nil
	}
	create := []store.Op{{Key: op.Key, New: op.New, Expiry: op.Expiry}}
	if err := s.to.Write(ctx, create); err != nil {
		return err
	}
	op.Applied, op.Current = create[0].Applied, create[0].Current
	return nil
}

// Index implements [store.Store]: the new store's index.
func (s *Store) Index() store.Index { return s.to.Index() }
