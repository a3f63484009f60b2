package session

import (
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"sync"
	"time"

	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/store"
)

// DefaultLifetime is the absolute lifetime of a session when
// Options.Lifetime is zero.
const DefaultLifetime = 24 * time.Hour

// DefaultRotationGrace is how long a token retired by [Manager.Regenerate]
// stays known as retired when Options.RotationGrace is zero.
const DefaultRotationGrace = 2 * time.Minute

// DefaultUpdateTimeout bounds the retries of [Manager.Update] when
// Options.UpdateTimeout is zero.
const DefaultUpdateTimeout = 2 * time.Second

var (
	// ErrStore wraps every failure of the store: the session could not be
	// loaded or saved, which is not the same as there being no session.
	ErrStore = errors.New("session: store failure")

	// ErrEncode reports a payload the codec could not encode.
	ErrEncode = errors.New("session: cannot encode payload")

	// ErrTooLarge reports a record too big for its store, such as a cookie
	// over 4096 bytes. It is [store.ErrTooLarge].
	ErrTooLarge = store.ErrTooLarge

	// ErrCommitted reports a change asked for after the session was saved,
	// which happens when the response has started.
	ErrCommitted = errors.New("session: response already started")

	// ErrLate reports a change made to the session after the response
	// started that could not be saved, because the client would have had
	// to learn a new token: a cookie store's session, or a session that was
	// new, ended or empty when the response started. See [Scope.Commit].
	ErrLate = errors.New("session: changed after the response started; not saved")

	// ErrOptions reports an invalid option passed to [New].
	ErrOptions = errors.New("session: invalid options")

	// ErrConflict reports a change that was not saved because another
	// request changed the same session at the same time in a way that could
	// not be merged (both changed one field, or the session was logged out or
	// its token retired meanwhile). Nothing was written; the middleware's
	// default error handler answers 409 Conflict.
	ErrConflict = errors.New("session: concurrent change")
)

// Options configures a [Manager]. The zero value is the secure default.
type Options struct {
	// Codec encodes the payload. Nil means codec.MsgPack().
	Codec codec.Codec

	// Cipher seals records. Nil stores records in plaintext, which server-side
	// stores allow (anyone who can read the store can read the sessions);
	// a store that keeps records in the client, such as cookiestore, requires
	// a cipher.
	Cipher *cipher.Ring

	// Lifetime is the absolute lifetime of a session, counted from its
	// creation; activity never extends it. Zero means DefaultLifetime.
	Lifetime time.Duration

	// MaxLifetime bounds what [Manager.SetLifetime] may give a session (a
	// long "remember me"), and caps every session's absolute deadline, so
	// lowering it ends longer sessions already issued. Zero means Lifetime.
	MaxLifetime time.Duration

	// IdleTimeout ends a session that has not been used for this long.
	// Zero turns the idle timeout off. Reads count as use: the idle deadline
	// of a session that is only read is moved forward at most once per
	// quarter of the timeout, so a session ends between 3/4 and all of
	// IdleTimeout after its last use.
	IdleTimeout time.Duration

	// Cookie sets the attributes of the session cookie.
	Cookie Cookie

	// Name binds records carried by the client (cookiestore) to this
	// manager, whatever transport carries them (cookie or header), so that a
	// value cannot be replayed to another manager that shares the keys.
	// Empty means the cookie's name. Changing it ends every carried session.
	Name string

	// Strict makes every concurrent change of one session a conflict
	// ([ErrConflict]), instead of merging changes to different fields. Use
	// it for payloads whose fields must change together; or keep related
	// state in one nested struct, which is merged as one unit.
	Strict bool

	// RotationGrace is how long a token retired by Regenerate stays marked
	// as retired, so that a request still under way with it cannot revive
	// the old session or overwrite the new cookie. It should outlast any
	// request. Zero means DefaultRotationGrace.
	RotationGrace time.Duration

	// UpdateTimeout bounds how long [Manager.Update] retries when other
	// instances keep changing the session; it then fails with ErrConflict.
	// Zero means DefaultUpdateTimeout.
	UpdateTimeout time.Duration

	// DeviceHints chooses what Login records about the client for a
	// "your devices" page; the zero value records nothing.
	DeviceHints DeviceHints

	// Epochs, for sessions kept in the client (cookiestore), is a
	// server-side store (memory for one instance, Valkey for several) whose
	// per-owner index keeps each owner's epoch, so that RevokeAll and
	// RevokeOthers end cookie sessions too: the revocation tool a cookie
	// store lacks. It costs one lookup per request of a bound session (none
	// with Valkey's client-side cache warm). Nil means none: cookie
	// sessions cannot be revoked before their deadline.
	Epochs store.Store

	// Observer learns the outcome of every load and commit (hit, expired,
	// merged, conflict...). Nil means LogObserver(nil): slog.Default() at
	// debug level, which costs a level check when debug logging is off.
	Observer Observer

	// Now is the clock. Nil means time.Now; tests inject their own.
	Now func() time.Time
}

// Manager loads and saves sessions whose payload is a T. Build one with [New]
// at start-up and share it; it is safe for concurrent use.
type Manager[T any] struct {
	kind     kind[T] // where records live: on the server, or in the token
	codec    codec.Codec
	cipher   *cipher.Ring
	lifetime int64 // ms
	maxLife  int64 // ms
	idle     int64 // ms; 0 = off
	grace    int64 // ms
	updateIn time.Duration
	strict   bool
	cookie   Cookie
	hints    DeviceHints
	observer Observer
	now      func() time.Time
	zero     []byte // the encoding of a zero T: a session nobody wrote to
	// mapsInside reports a T that may hold maps, whose encoding can vary
	// between runs on equal content.
	mapsInside bool
	// merger resolves fields changed by two requests at once; nil without
	// a Merge method on *T.
	merger  func(mine, base, theirs *T) error
	ctxKey  *ctxKey
	stripes [64]sync.Mutex // queue Updates of one session in this process
	seed    maphash.Seed
}

// ctxKey is the key a manager's requests carry their session under. It is
// not zero-size: pointers to distinct zero-size values may be equal, and two
// managers would then find each other's sessions.
type ctxKey struct{ _ byte }

// Merger is implemented by a payload type whose pointer has a Merge method.
// When two requests change the same field of one session at once, the
// manager calls Merge on this request's copy (mine) with the payload both
// started from (base) and the one the other request saved (theirs); what
// Merge leaves in mine for the fields both changed is saved. Merge must have
// a pointer receiver, so that its changes cannot be dropped silently; [New]
// refuses a T whose value has the method. An error from Merge makes the
// commit fail with ErrConflict.
type Merger[T any] interface {
	Merge(base, theirs *T) error
}

// New returns a manager for sessions of type T kept in b, a [store.Store]
// (server-side) or a [store.Carrier] (in the client, such as cookiestore).
// It fails with an error wrapping ErrOptions when an option is invalid (a
// negative duration, a cookie a browser would reject, a carrier without a
// cipher, a T that cannot hold data). A nil backend is a programming error
// and panics.
func New[T any](b store.Backend, opts Options) (*Manager[T], error) {
	if b == nil {
		panic("session: New called with a nil store")
	}
	m := &Manager[T]{
		codec:    opts.Codec,
		cipher:   opts.Cipher,
		lifetime: opts.Lifetime.Milliseconds(),
		idle:     opts.IdleTimeout.Milliseconds(),
		grace:    opts.RotationGrace.Milliseconds(),
		updateIn: opts.UpdateTimeout,
		strict:   opts.Strict,
		cookie:   opts.Cookie,
		hints:    opts.DeviceHints,
		observer: opts.Observer,
		now:      opts.Now,
		ctxKey:   new(ctxKey),
		seed:     maphash.MakeSeed(),
	}
	if m.codec == nil {
		m.codec = codec.MsgPack()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.observer == nil {
		m.observer = LogObserver(nil)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case opts.Lifetime == 0:
		m.lifetime = DefaultLifetime.Milliseconds()
	case opts.Lifetime < time.Millisecond:
		return nil, bad("Lifetime %v is below one millisecond", opts.Lifetime)
	}
	switch m.maxLife = opts.MaxLifetime.Milliseconds(); {
	case opts.MaxLifetime == 0:
		m.maxLife = m.lifetime
	case m.maxLife < m.lifetime:
		return nil, bad("MaxLifetime %v is below Lifetime", opts.MaxLifetime)
	}
	if opts.IdleTimeout < 0 || opts.IdleTimeout > 0 && opts.IdleTimeout < time.Millisecond {
		return nil, bad("IdleTimeout %v is negative or below one millisecond", opts.IdleTimeout)
	}
	switch {
	case opts.RotationGrace == 0:
		m.grace = DefaultRotationGrace.Milliseconds()
	case opts.RotationGrace < time.Millisecond:
		return nil, bad("RotationGrace %v is below one millisecond", opts.RotationGrace)
	}
	switch {
	case opts.UpdateTimeout == 0:
		m.updateIn = DefaultUpdateTimeout
	case opts.UpdateTimeout < 0:
		return nil, bad("UpdateTimeout %v is negative", opts.UpdateTimeout)
	}
	if err := m.cookie.check(); err != nil {
		return nil, err
	}
	if err := payloadType(reflect.TypeFor[T]()); err != nil {
		return nil, err
	}
	if _, ok := any(*new(T)).(Merger[T]); ok {
		return nil, bad("%v has a Merge method on its value: give it a pointer receiver, or its changes are lost", reflect.TypeFor[T]())
	}
	if _, ok := any(new(T)).(Merger[T]); ok {
		m.merger = func(mine, base, theirs *T) error { return any(mine).(Merger[T]).Merge(base, theirs) }
	}
	name := opts.Name
	if name == "" {
		name = m.cookie.Name
	}
	switch b := b.(type) {
	case store.Carrier:
		if m.cipher == nil {
			return nil, bad("a store that keeps sessions in the client needs a Cipher")
		}
		k := &carried[T]{m: m, c: b, ad: []byte("typedsession carried v1\x00" + name)}
		if opts.Epochs != nil {
			if k.epochs = opts.Epochs.Index(); k.epochs == nil {
				return nil, bad("Epochs is a store without a per-owner index")
			}
		}
		m.kind = k
	case store.Store:
		m.kind = &serverSide[T]{m: m, st: b}
	default:
		return nil, bad("%T is neither a store.Store nor a store.Carrier", b)
	}
	m.mapsInside = mayHoldMap(reflect.TypeFor[T](), map[reflect.Type]bool{})
	zero, err := m.codec.Append(nil, new(T))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrOptions, ErrEncode, err)
	}
	m.zero = zero
	return m, nil
}

// payloadType refuses a payload type that could never carry data, whose
// changes would vanish without a word.
func payloadType(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fmt.Errorf("%w: a session payload of type %v cannot be encoded", ErrOptions, t)
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() || t.Field(i).Anonymous {
				return nil
			}
		}
		if t.NumField() > 0 {
			return fmt.Errorf("%w: the session payload %v has no exported fields, so nothing in it would be saved", ErrOptions, t)
		}
	}
	return nil
}

// mayHoldMap reports whether a value of type t can contain a map.
func mayHoldMap(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return mayHoldMap(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if mayHoldMap(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// stripe returns the lock that Updates of the session under key queue on.
func (m *Manager[T]) stripe(key string) *sync.Mutex {
	return &m.stripes[maphash.String(m.seed, key)%uint64(len(m.stripes))]
}

func (m *Manager[T]) fresh(now int64) meta {
	md := meta{created: now, absolute: now + m.lifetime}
	if m.idle > 0 {
		md.idle = now + m.idle
	}
	return md
}

func (m *Manager[T]) persistent(md meta) bool {
	switch {
	case md.flags&flagRemember != 0:
		return true
	case md.flags&flagForget != 0:
		return false
	}
	return !m.cookie.BrowserSession
}

// live reports whether a session is within its deadlines at now. The
// manager's present maximum lifetime also caps it, so shortening it takes
// effect on sessions already issued.
func (m *Manager[T]) live(md meta, now int64) bool {
	return now < md.absolute && now < md.created+m.maxLife && (md.idle == 0 || now < md.idle)
}

// refreshDue reports whether the idle deadline of md should move forward at
// now although nothing else changed. Once it has reached the absolute
// deadline it cannot move, and refreshing would only cost a write.
func (m *Manager[T]) refreshDue(md meta, now int64) bool {
	return m.idle > 0 && md.idle < md.absolute && now-(md.idle-m.idle) >= m.idle/4
}

// touched returns md with its idle deadline counted from now.
func (m *Manager[T]) touched(md meta, now int64) meta {
	md.seen = now
	if m.idle > 0 {
		md.idle = min(now+m.idle, md.absolute)
	} else {
		md.idle = 0
	}
	return md
}

// bufPool holds scratch buffers for encoding records on commit.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10
