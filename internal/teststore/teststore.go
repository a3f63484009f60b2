// Package teststore holds what the project's tests do to a store.Store
// beyond what the manager does: plant a record whatever is there, remove one.
package teststore

import (
	"context"
	"errors"
	"time"

	"github.com/typedsession/session/store"
)

// Put keeps rec under key until exp, replacing whatever is there.
func Put(ctx context.Context, st store.Store, key string, rec []byte, exp time.Time) error {
	return set(ctx, st, key, rec, exp)
}

// Delete removes the record under key, whatever it is.
func Delete(ctx context.Context, st store.Store, key string) error {
	return set(ctx, st, key, nil, time.Time{})
}

func set(ctx context.Context, st store.Store, key string, rec []byte, exp time.Time) error {
	old, _, err := st.Load(ctx, key)
	if err != nil {
		return err
	}
	for range 100 {
		ops := []store.Op{{Key: key, Old: old, New: rec, Expiry: exp}}
		if err := st.Write(ctx, ops); err != nil {
			return err
		}
		if ops[0].Applied {
			return nil
		}
		old = ops[0].Current
	}
	return errors.New("teststore: the record kept changing")
}
