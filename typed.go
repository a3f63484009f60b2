package session

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"
)

// Result tells a transport what a commit needs it to send.
type Result struct {
	// Token is the token the client must carry from now on (when Send).
	Token string

	// Send reports that the client's token or its expiry changed, so the
	// token must be sent again.
	Send bool

	// Clear reports that the session ended and the client should drop its
	// token (an expired cookie).
	Clear bool

	// Expires is when the client should forget Token; zero means at the end
	// of the browser session.
	Expires time.Time

	// Used reports that the session was read or changed during the request,
	// so the response depends on the token (Vary: Cookie).
	Used bool
}

// Committer is the part of a [Txn] that transports drive without knowing T.
type Committer interface {
	// Commit saves the session if it changed and reports what to send.
	Commit(ctx context.Context) (Result, error)
}

// Info describes a session without its payload.
type Info struct {
	// Created is when the session was first saved, or now for a new one.
	Created time.Time
	// Expires is when the session ends unless it is used again: the earlier
	// of its absolute and idle deadlines.
	Expires time.Time
	// Absolute is when the session ends whatever happens.
	Absolute time.Time
	// New reports a session that has not been saved yet.
	New bool
	// Remembered reports whether its cookie persists beyond the browser
	// session.
	Remembered bool
}

// Txn is the session of one request, call or job: it loads on first use and
// saves once, on Commit. The middleware makes one per request; other
// transports (gRPC, websockets, jobs) use [Manager.Begin] directly.
// It is safe for concurrent use.
type Txn[T any] struct {
	m     *Manager[T]
	ctx   context.Context
	token string       // as the client sent it: untrusted
	key   string       // store key of token, once loaded
	kb    [keyLen]byte // scratch for the store key in use; also its associated data
	c     txnContext[T]

	mu        sync.Mutex
	loaded    bool
	used      bool
	committed bool
	err       error // load failure
	errSeen   bool  // the caller was given err
	val       *T
	meta      meta
	orig      []byte // the payload as loaded; nil for a new session
	found     bool   // val came from a live record under token
	regen     bool
	dropOld   bool // the record under token must go on commit
	remember  bool // meta.flags changed
	hadToken  bool
}

// txnContext is the context Attach returns: it lives inside its Txn, so
// attaching a session to a request costs no allocation of its own.
type txnContext[T any] struct {
	context.Context
	t *Txn[T]
}

func (c *txnContext[T]) Value(key any) any {
	if key == any(c.t.m.ctxKey) {
		return c.t
	}
	return c.Context.Value(key)
}

// Begin starts the session work for a client that presented token (empty
// when it presented none). Nothing is loaded until the session is first used.
func (m *Manager[T]) Begin(ctx context.Context, token string) *Txn[T] {
	return &Txn[T]{m: m, ctx: ctx, token: token, hadToken: token != ""}
}

// Attach begins a Txn for token and returns a context that carries it, for
// [Manager.Get] to find. It is the hook for adapters such as the middleware
// package.
func (m *Manager[T]) Attach(ctx context.Context, token string) (context.Context, Committer) {
	t := m.Begin(ctx, token)
	t.c = txnContext[T]{ctx, t}
	return &t.c, t
}

// Txn returns the session of a request that passed through the middleware.
// It panics if the request did not, which is a programming error.
func (m *Manager[T]) Txn(r *http.Request) *Txn[T] {
	t, _ := r.Context().Value(m.ctxKey).(*Txn[T])
	if t == nil {
		panic("session: request did not pass through this manager's middleware")
	}
	return t
}

// Get returns the request's session payload, loading it on first use. A
// visitor without a session gets a pointer to a zero T. Changes made through
// the pointer are saved when the response starts.
//
// The session is committed as soon as the response starts, whoever starts it:
// if a recovering middleware mounted inside this one answers a panic, the
// changes made before the panic are saved. Mount recovery outside the session
// middleware to drop them instead.
//
// If the session cannot be loaded (the store is down), Get returns a zero T
// that will not be saved, and the middleware answers with its error handler.
// Use [Manager.Load] to see that error in the handler instead.
func (m *Manager[T]) Get(r *http.Request) *T {
	v, _ := m.Txn(r).get(false)
	return v
}

// Load is Get that also returns a load failure (wrapping ErrStore). A handler
// that receives the error owns the answer: the middleware will not call its
// error handler for it, and the session is still never saved over.
func (m *Manager[T]) Load(r *http.Request) (*T, error) { return m.Txn(r).Get() }

// Regenerate gives the request's session a new token, keeping its data and
// deleting the record under the old token. Call it on login and on any change
// of privilege, so a token planted before the change is worthless after it.
// If the session cannot be loaded it returns the error and, as with Get, the
// middleware's error handler answers the request; only [Manager.Load] hands
// that answer to the handler. The same holds for RememberMe and Info.
func (m *Manager[T]) Regenerate(r *http.Request) error { return m.Txn(r).Regenerate() }

// Destroy ends the request's session: its record is deleted and the client's
// cookie expired when the response starts. The payload becomes a zero T; if
// the handler then writes to it, a new session with a new token is saved.
func (m *Manager[T]) Destroy(r *http.Request) error { return m.Txn(r).Destroy() }

// RememberMe chooses whether this session's cookie outlives the browser
// session (until the session's deadline) or ends with it, overriding
// Cookie.BrowserSession for this session alone.
func (m *Manager[T]) RememberMe(r *http.Request, remember bool) error {
	return m.Txn(r).RememberMe(remember)
}

// Info describes the request's session, loading it on first use.
func (m *Manager[T]) Info(r *http.Request) (Info, error) { return m.Txn(r).Info() }

// Get returns the session payload, loading it on first use; a failed load
// returns a zero T and an error wrapping ErrStore.
func (t *Txn[T]) Get() (*T, error) { return t.get(true) }

func (t *Txn[T]) get(seen bool) (*T, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.load()
	if seen && t.err != nil {
		t.errSeen = true
	}
	return t.val, t.err
}

// prepare readies t, locked by the caller, for a change: the session is
// loaded and not yet committed.
func (t *Txn[T]) prepare() error {
	if t.committed {
		return ErrCommitted
	}
	t.load()
	return t.err
}

// Regenerate: see [Manager.Regenerate].
func (t *Txn[T]) Regenerate() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.prepare(); err != nil {
		return err
	}
	t.regen = true
	return nil
}

// Destroy: see [Manager.Destroy].
func (t *Txn[T]) Destroy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committed {
		return ErrCommitted
	}
	t.used = true
	t.loaded = true
	t.err = nil
	t.val = new(T)
	t.meta = t.m.fresh(t.m.now().UnixMilli())
	t.orig, t.found, t.regen, t.remember = nil, false, false, false
	t.dropOld = t.hadToken
	return nil
}

// RememberMe: see [Manager.RememberMe].
func (t *Txn[T]) RememberMe(remember bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.prepare(); err != nil {
		return err
	}
	f := flagForget
	if remember {
		f = flagRemember
	}
	if t.meta.flags != f {
		t.meta.flags = f
		t.remember = true
	}
	return nil
}

// Info: see [Manager.Info].
func (t *Txn[T]) Info() (Info, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.load()
	if t.err != nil {
		return Info{}, t.err
	}
	return Info{
		Created:    time.UnixMilli(t.meta.created),
		Expires:    time.UnixMilli(t.meta.deadline()),
		Absolute:   time.UnixMilli(t.meta.absolute),
		New:        !t.found,
		Remembered: t.m.persistent(t.meta),
	}, nil
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
// manager's present lifetime also caps it, so shortening Lifetime takes
// effect on sessions already issued.
func (m *Manager[T]) live(md meta, now int64) bool {
	return now < md.absolute && now < md.created+m.lifetime && (md.idle == 0 || now < md.idle)
}

// load reads the session on first use. Every way a record can be unusable
// (malformed token, unknown, tampered, expired, undecodable) ends the same:
// a new, empty session. Only a store failure is an error.
func (t *Txn[T]) load() {
	t.used = true
	if t.loaded {
		return
	}
	t.loaded = true
	m := t.m
	now := m.now().UnixMilli()
	t.val = new(T)
	if t.token != "" {
		rec, key, ok, err := m.fetch(t.ctx, t.token, &t.kb)
		if err != nil {
			t.err = err
			return
		}
		t.key = key
		if ok {
			if md, payload, ok := m.open(rec, t.kb[:]); ok && m.live(md, now) && m.codec.Unmarshal(payload, t.val) == nil {
				t.meta, t.orig, t.found = md, payload, true
				return
			}
			// Unusable: start afresh, and drop the record so it is not
			// read again. A failed delete only leaves it to its expiry.
			t.val = new(T)
			if m.carrier == nil {
				_ = m.store.Delete(t.ctx, key)
			}
		}
	}
	t.meta = m.fresh(now)
}

// fetch returns the record a token names and the store key it lives under,
// or ok == false when there is none.
func (m *Manager[T]) fetch(ctx context.Context, token string, kb *[keyLen]byte) (rec []byte, key string, ok bool, err error) {
	if m.carrier != nil {
		rec, ok = m.carrier.Unwrap(token)
		return rec, "", ok, nil
	}
	if !validToken(token) {
		return nil, "", false, nil
	}
	storeKey(kb, token)
	key = string(kb[:])
	rec, ok, err = m.store.Load(ctx, key)
	if err != nil {
		return nil, "", false, fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	return rec, key, ok, nil
}

// open turns a stored record into its envelope. It may reuse rec's memory.
// key is the store key the record came from, unused for carried records.
//
// A record sealed with an older key of the ring opens, and is re-sealed with
// the first key when it is next written; a read alone does not write, so that
// instances not yet given the new key can still open what others wrote (see
// cipher.Ring for rotating keys across a fleet).
func (m *Manager[T]) open(rec, key []byte) (md meta, payload []byte, ok bool) {
	plain := rec
	if m.cipher != nil {
		var err error
		plain, _, err = m.cipher.Open(rec, m.adFor(key))
		if err != nil {
			return meta{}, nil, false
		}
	}
	md, payload, ok = parseEnvelope(plain)
	return md, payload, ok
}

// adFor is the associated data that binds a record to where it lives: its
// store key, or the cookie name for records the client carries.
func (m *Manager[T]) adFor(key []byte) []byte {
	if m.carrier != nil {
		return m.ad
	}
	return key
}

// Commit saves the session if it changed (or its token must change, or its
// idle deadline is due for a refresh) and reports what the transport must
// send. It does its work once; later calls return a zero Result. A failed
// save returns an error and a Result with nothing to send, so the client
// keeps its old token and nothing is lost.
func (t *Txn[T]) Commit(ctx context.Context) (Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committed {
		return Result{}, nil
	}
	t.committed = true
	if !t.used {
		return Result{}, nil
	}
	if t.err != nil {
		if t.errSeen {
			return Result{Used: true}, nil
		}
		return Result{}, t.err
	}
	return t.commit(ctx)
}

func (t *Txn[T]) commit(ctx context.Context) (Result, error) {
	m := t.m
	res := Result{Used: true}
	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			bufPool.Put(bp)
		}
	}()
	buf, err := m.codec.Append((*bp)[:envHeader], t.val)
	*bp = buf[:0]
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	payload := buf[envHeader:]

	if t.dropOld {
		if err := t.drop(ctx); err != nil {
			return Result{}, err
		}
		res.Clear = true
	}
	now := m.now().UnixMilli()
	md := t.meta
	token := t.token
	if !t.found {
		if bytes.Equal(payload, m.zero) && !t.remember {
			return res, nil // nothing worth keeping: no record, no cookie
		}
		token = ""
	} else {
		changed := t.regen || t.remember ||
			!bytes.Equal(payload, t.orig) && !(m.mapsInside && t.sameAsLoaded())
		// Once the idle deadline has reached the absolute one it cannot move,
		// and refreshing would only cost a write per request.
		refresh := m.idle > 0 && md.idle < md.absolute && now-(md.idle-m.idle) >= m.idle/4
		if !changed && !refresh {
			return res, nil
		}
	}
	oldExpiry := t.expiry(md)
	if m.idle > 0 {
		md.idle = min(now+m.idle, md.absolute)
	} else {
		md.idle = 0
	}
	// An existing session keeps its token and is written only where its
	// record still is; a new or regenerated one gets a fresh token. A carried
	// record is its own token.
	replace := t.found && !t.regen
	switch {
	case m.carrier != nil:
	case replace:
		token = t.token
	default:
		token = newToken()
	}
	putEnvelope(buf, md)
	token, saved, err := t.save(ctx, token, buf, md, replace)
	if err != nil {
		return Result{}, err
	}
	if !saved {
		// The record went away after it was loaded: another request ended or
		// regenerated the session, and this one must not bring it back. Its
		// client keeps a token that is worthless now; clearing it could
		// instead wipe the cookie that other request has just sent.
		return Result{Used: true}, nil
	}
	if t.regen && t.found && m.carrier == nil {
		// The old record goes only now that the new one is safe. If it was
		// already gone, another request ended or regenerated the session
		// meanwhile: the copy under the new token must not outlive it.
		claimed, err := t.claim(ctx)
		if err != nil {
			return Result{}, err
		}
		if !claimed {
			if err := m.store.Delete(ctx, string(t.kb[:])); err != nil {
				return Result{}, fmt.Errorf("%w: delete: %w", ErrStore, err)
			}
			return Result{Used: true}, nil
		}
	}
	exp := t.expiry(md)
	res.Clear = false
	res.Token = token
	res.Expires = exp
	res.Send = token != t.token || !exp.Equal(oldExpiry) || t.remember
	return res, nil
}

// sameAsLoaded reports whether the payload still equals what was loaded,
// for payloads with maps, whose encoding may differ from one run to the next
// while their content does not.
func (t *Txn[T]) sameAsLoaded() bool {
	var was T
	return t.m.codec.Unmarshal(t.orig, &was) == nil && reflect.DeepEqual(&was, t.val)
}

// expiry is when the client should forget the token: the session's deadline
// for a persistent cookie, zero for a browser-session one.
func (t *Txn[T]) expiry(md meta) time.Time {
	if !t.m.persistent(md) {
		return time.Time{}
	}
	return time.UnixMilli(md.deadline())
}

// save seals plain (an envelope) and keeps it, returning the token the client
// must carry. With replace, the record is written only if the one loaded is
// still there (on stores that can tell), and saved reports whether it was.
func (t *Txn[T]) save(ctx context.Context, token string, plain []byte, md meta, replace bool) (_ string, saved bool, _ error) {
	m := t.m
	if m.carrier != nil {
		rec := m.cipher.Seal(nil, plain, m.ad)
		tok, err := m.carrier.Wrap(m.cookie.Name, rec)
		if err != nil {
			// Too large is the application's doing, not a store failure.
			return "", false, fmt.Errorf("session: save: %w", err)
		}
		return tok, true, nil
	}
	key := t.key
	if replace {
		copy(t.kb[:], key)
	} else {
		storeKey(&t.kb, token)
		key = string(t.kb[:])
	}
	rec := plain
	if m.cipher != nil {
		rec = m.cipher.Seal(nil, plain, t.kb[:])
	}
	exp := time.UnixMilli(md.deadline())
	var err error
	if replace && m.replacer != nil {
		saved, err = m.replacer.Replace(ctx, key, rec, exp)
	} else {
		saved, err = true, m.store.Save(ctx, key, rec, exp)
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	return token, saved, nil
}

// claim deletes the loaded record and reports whether it was still there,
// on stores that can tell (store.Replacer); others report true. It leaves
// t.kb, the new record's key, alone.
func (t *Txn[T]) claim(ctx context.Context) (bool, error) {
	m := t.m
	var err error
	was := true
	if m.replacer != nil {
		was, err = m.replacer.Replace(ctx, t.key, nil, time.Time{})
	} else {
		err = m.store.Delete(ctx, t.key)
	}
	if err != nil {
		return false, fmt.Errorf("%w: delete: %w", ErrStore, err)
	}
	return was, nil
}

// drop deletes the record under the client's token, if it could name one.
func (t *Txn[T]) drop(ctx context.Context) error {
	m := t.m
	key := t.key
	if key == "" {
		if m.carrier != nil || !validToken(t.token) {
			return nil
		}
		storeKey(&t.kb, t.token)
		key = string(t.kb[:])
	}
	if err := m.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("%w: delete: %w", ErrStore, err)
	}
	return nil
}
