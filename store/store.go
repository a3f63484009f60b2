// Package store defines the byte-level contract between a session manager and
// the place its records live.
//
// There are two kinds of place, and session.New takes either (a [Backend]):
//
//   - A [Store] keeps records on the server, under keys the manager derives
//     from session tokens (it never sees a token). Its whole contract is
//     required: a load, and a conditional write that creates a record only
//     where none lives, replaces one only while it is still the record the
//     caller loaded, and deletes one only if it is unchanged. Every write of
//     the manager is such a compare-and-set, which is how concurrent requests
//     of one session lose nothing silently. Because nothing is optional, a
//     wrapper (tracing, metrics, migration) that implements the two methods
//     passes every ability on.
//   - A [Carrier] keeps nothing: the token the client presents is the sealed
//     record itself, as with cookie sessions. It cannot compare and set (the
//     client holds the only copy), so concurrent requests of one carried
//     session are last-write-wins.
//
// The rule every implementation follows: a record that is missing, expired or
// otherwise unusable is reported as found=false with a nil error; errors are
// for failures of the store itself (I/O, a closed connection, a cancelled
// context), so the manager can tell "no session" from "cannot tell".
// Records are never empty: a record of length zero means "none".
// The package [github.com/typedsession/session/store/storetest] checks a
// Store against this contract.
package store

import (
	"context"
	"errors"
	"time"
)

// Backend is what a session manager keeps its sessions in: a [Store] or a
// [Carrier]. session.New tells the two apart once, when the manager is built,
// and refuses a Backend that is neither.
type Backend interface {
	// Load returns the record that key names: for a Store, the record kept
	// under key (a hash of a token); for a Carrier, the record the token key
	// carries. A missing, expired or malformed one gives found == false and a
	// nil error. The caller may modify the returned slice. Load must not
	// panic and must bound its allocation, whatever key is.
	Load(ctx context.Context, key string) (record []byte, found bool, err error)
}

// Store keeps records on the server under keys until an absolute expiry.
//
// Implementations must be safe for concurrent use, must not retain the slices
// of an [Op] after Write returns, and must return slices the caller may
// modify.
type Store interface {
	Backend

	// Write applies each op whose condition holds and reports, in the op,
	// whether it did; see [Op]. The ops are independent: each is atomic on
	// its own key, but together they are not a transaction, and a store may
	// apply them in any order (or pipeline them in one round trip). An error
	// means that the outcome of some op is unknown; the Applied fields are
	// then meaningless.
	Write(ctx context.Context, ops []Op) error

	// Index returns the store's per-owner index, or nil when it keeps none;
	// binding sessions to owners (session.Manager.Login) needs one. A
	// wrapper returns the wrapped store's index (wrapped in turn if it
	// likes), so the ability passes on.
	Index() Index
}

// Index knows which sessions belong to an owner, and keeps each owner's
// epoch: a random value that every session bound to the owner carries, so
// that replacing or removing it revokes them all at once.
//
// An owner, as a store sees it, is a hash of the application's user id, and
// a key is a session's store key (a hash of its token): nothing in an index
// is a token or an id. An entry lives until the expiry it was bound with
// (the session's absolute deadline); a store drops expired entries on its
// own. The index may list keys whose record is gone or has changed hands
// (the manager checks each record it lists); it must never lose an entry
// that Bind added, until its expiry.
type Index interface {
	// Bind adds key to owner's index until expiry and returns owner's epoch:
	// the one it has, or epoch when it has none, which then becomes its
	// epoch. The epoch's own expiry is moved to expiry when that is later,
	// so it outlives every session bound to it. One atomic step.
	Bind(ctx context.Context, owner, key string, expiry time.Time, epoch []byte) (current []byte, err error)

	// Unbind removes key from owner's index. Removing a missing entry is not
	// an error.
	Unbind(ctx context.Context, owner, key string) error

	// Sessions returns owner's unexpired entries with the record each key
	// holds now; a key whose record is gone is left out (and may be
	// removed).
	Sessions(ctx context.Context, owner string) ([]Entry, error)

	// Epoch returns owner's epoch, or nil when it has none.
	Epoch(ctx context.Context, owner string) ([]byte, error)

	// SetEpoch replaces owner's epoch with epoch (expiring at expiry, or
	// later if the one it replaces expires later), or removes it when epoch
	// is empty.
	SetEpoch(ctx context.Context, owner string, epoch []byte, expiry time.Time) error
}

// Entry is a session an Index lists: its store key and its record.
type Entry struct {
	Key    string
	Record []byte
}

// Op is one conditional write of [Store.Write]: a compare-and-set of the live
// record under Key. Expired records count as absent.
//
//	Old empty,     New set:   create: only if no live record is there
//	Old set,       New set:   replace: only if the live record equals Old
//	Old set,       New empty: delete: only if the live record equals Old
//
// An Expiry at or before the store's present time turns a create or replace
// into a delete (with the same condition), so that no record is kept without
// a future expiry.
type Op struct {
	Key    string
	Old    []byte    // the record expected under Key; empty: none expected
	New    []byte    // the record to keep; empty: delete
	Expiry time.Time // when New expires

	// Applied is set by Write: the condition held and the write was done.
	Applied bool

	// Current is set by Write when the op was not applied: the live record
	// under Key now (empty when there is none), so the caller can merge
	// without loading it again.
	Current []byte
}

// Carrier is a [Backend] that keeps no server state: the token the client
// carries is the (sealed) record itself, as with cookie sessions. Its Load
// turns a token back into the record; Wrap turns a record into a token.
type Carrier interface {
	Backend

	// Wrap returns the token that carries record. name is the cookie or header
	// the token travels in; Wrap fails with an error wrapping [ErrTooLarge]
	// when the two together would not fit.
	Wrap(name string, record []byte) (token string, err error)
}

// ErrTooLarge reports a record too big for where it has to travel or be kept.
var ErrTooLarge = errors.New("store: record too large")
