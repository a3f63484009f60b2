// Package store defines the byte-level contract between a session manager and
// the place its records live.
//
// A store keeps opaque records (sealed by the manager when it has a cipher)
// under keys the manager derives from session tokens; it never sees a token.
// Everything a store needs is in [Store]; further abilities are small optional
// interfaces ([Toucher], [Carrier]) that the manager discovers with a type
// assertion once, at construction.
//
// The rule every implementation follows: a record that is missing, expired or
// otherwise unusable is reported as found=false with a nil error; errors are
// for failures of the store itself (I/O, a closed connection, a cancelled
// context), so the manager can tell "no session" from "cannot tell".
// The package [github.com/typedsession/session/store/storetest] checks an
// implementation against this contract.
package store

import (
	"context"
	"errors"
	"time"
)

// Store keeps records under keys until an absolute expiry.
//
// Implementations must be safe for concurrent use, must not retain the
// record slice passed to Save, and must return a slice from Load that the
// caller may modify.
type Store interface {
	// Load returns the record saved under key. A missing or expired record
	// gives found == false and a nil error.
	Load(ctx context.Context, key string) (record []byte, found bool, err error)

	// Save keeps record under key until expiry, replacing any record there.
	// An expiry at or before the store's present time deletes the key instead.
	Save(ctx context.Context, key string, record []byte, expiry time.Time) error

	// Delete removes the record under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Toucher is implemented by stores that can move a record's expiry without
// rewriting it, for tools that extend or cut short sessions (Touch into the
// past ends one). The manager does not use it for idle refreshes: the idle
// deadline is sealed inside the record, so a refresh rewrites the record.
type Toucher interface {
	// Touch sets the expiry of the record under key. Touching a missing key
	// is not an error and creates nothing; an expiry at or before the present
	// deletes the key.
	Touch(ctx context.Context, key string, expiry time.Time) error
}

// Replacer is implemented by stores that can write a record only where one
// still exists. The manager saves changes to an existing session with it, so
// that a request that loaded a session before another one destroyed or
// regenerated it cannot bring the old record back. Stores without it are
// written with Save, and a concurrent logout can then be undone by a slower
// request of the same session.
type Replacer interface {
	// Replace saves record under key until expiry if a live record is there,
	// and reports whether it was. An expiry at or before the present deletes
	// the key (replaced reports whether a record was there).
	Replace(ctx context.Context, key string, record []byte, expiry time.Time) (replaced bool, err error)
}

// Carrier is implemented by stores that keep no server state: the token the
// client carries is the (sealed) record itself, as with cookie sessions.
// The manager never calls Load, Save or Delete on a Carrier; it asks it to turn
// records into tokens and back instead. A Carrier's Load and Save still exist
// so that one option field takes every kind of store.
type Carrier interface {
	Store

	// Wrap returns the token that carries record. name is the cookie or header
	// the token travels in; Wrap fails with an error wrapping [ErrTooLarge]
	// when the two together would not fit.
	Wrap(name string, record []byte) (token string, err error)

	// Unwrap returns the record a token carries, or ok == false if the token
	// is not one that Wrap could have produced. It must not panic and must
	// bound its allocation, whatever the token.
	Unwrap(token string) (record []byte, ok bool)
}

// ErrTooLarge reports a record too big for where it has to travel or be kept.
var ErrTooLarge = errors.New("session: record too large")
