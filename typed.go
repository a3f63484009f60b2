package session

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/store"
)

// Result tells a transport what a commit needs it to send.
type Result struct {
	// Token is the token the client must carry from now on (when Send).
	Token string

	// Send reports that the client must learn Token (new, or its cookie's
	// persistence changed).
	Send bool

	// Clear reports that the session ended and the client should drop its
	// token (an expired cookie). Send and Clear are never both set.
	Clear bool

	// Expires is when the client should forget Token; zero means at the end
	// of the browser session.
	Expires time.Time

	// Used reports that the session was read or changed during the request,
	// so the response depends on the token (Vary: Cookie).
	Used bool
}

// Committer is the part of a [Scope] that transports drive without knowing T.
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
	// Owner is the user the session was bound to by [Manager.Login]; empty
	// for an anonymous session.
	Owner string
}

// state is where a Scope is in its life.
type state uint8

const (
	unloaded  state = iota // nothing read yet
	loaded                 // val, base and md hold the session
	failed                 // the store failed to load it: err
	committed              // saved (or not) for good; no more changes
)

// Scope is the session as one request, call or job sees it: loaded on first
// use, changed through the *T it hands out, and saved once, on Commit (and
// at once by Update). The middleware makes one per request; other
// transports (gRPC, websockets, jobs) use [Manager.Begin] directly. It is
// safe for concurrent use.
type Scope[T any] struct {
	m     *Manager[T]
	ctx   context.Context
	token string // as the client sent it, untrusted; or one this scope issued
	c     scopeContext[T]
	inFn  atomic.Bool // Update's fn is running

	mu      sync.Mutex
	state   state
	used    bool  // read or changed: the response varies with the token
	errSeen bool  // the handler was given the load error
	err     error // load failure
	val     *T
	md      meta                 // val's metadata, with this scope's changes
	base    record               // what val was loaded from or last saved as
	found   bool                 // base is a live session under token
	key     string               // store key of token; "" for carried sessions or none
	regen   bool                 // Regenerate asked for
	destroy bool                 // Destroy asked for: the session under token ends
	send    bool                 // the client must learn token
	clear   bool                 // the client must drop its token
	hadTok  bool                 // the client presented a token
	after   []func(token string) // OnCommit
	outcome Outcome              // of the load, then of the commit, for the Observer
	held    *[]byte              // pooled buffer holding mine, until the last commit
	mine    []byte               // val's encoding when first committed, to see later changes
	merges  int
	size    int // of the record last read or written, for the Observer
	ops     [1]store.Op
}

// record is a session record as the store holds it, and what it holds.
type record struct {
	raw     []byte // as stored (sealed): what a compare-and-set expects
	md      meta
	payload []byte // the codec's encoding of T; the successor's key in a marker
}

// scopeContext is the context Attach returns: it lives inside its Scope, so
// attaching a session to a request costs no allocation of its own.
type scopeContext[T any] struct {
	context.Context
	s *Scope[T]
}

func (c *scopeContext[T]) Value(key any) any {
	if key == any(c.s.m.ctxKey) {
		return c.s
	}
	return c.Context.Value(key)
}

// Begin starts the session work for a client that presented token (empty
// when it presented none). Nothing is loaded until the session is first used.
func (m *Manager[T]) Begin(ctx context.Context, token string) *Scope[T] {
	return &Scope[T]{m: m, ctx: ctx, token: token, hadTok: token != ""}
}

// Attach begins a Scope for token and returns a context that carries it, for
// [Manager.Get] to find. It is the hook for adapters such as the middleware
// package.
func (m *Manager[T]) Attach(ctx context.Context, token string) (context.Context, Committer) {
	s := m.Begin(ctx, token)
	s.c = scopeContext[T]{ctx, s}
	return &s.c, s
}

// Scope returns the session of a request that passed through the
// middleware. It panics if the request did not, which is a programming error.
func (m *Manager[T]) Scope(r *http.Request) *Scope[T] {
	s, _ := r.Context().Value(m.ctxKey).(*Scope[T])
	if s == nil {
		panic("session: request did not pass through this manager's middleware")
	}
	return s
}

// Get returns the request's session payload, loading it on first use. A
// visitor without a session gets a pointer to a zero T. Changes made through
// the pointer are saved when the response starts: merged with what other
// requests of the session saved meanwhile, field by field, or refused with
// ErrConflict (a 409 from the middleware) when both changed one field. Use
// [Manager.Update] for a change that must not fail that way.
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
	v, _ := m.Scope(r).get(false)
	return v
}

// Load is Get that also returns a load failure (wrapping ErrStore). A handler
// that receives the error owns the answer: the middleware will not call its
// error handler for it, and the session is still never saved over.
func (m *Manager[T]) Load(r *http.Request) (*T, error) { return m.Scope(r).Get() }

// Update changes the request's session with fn and saves it at once, as an
// exact read-modify-write: fn runs on the session (with the request's
// pending changes), the result is saved only if no other request saved the
// session meanwhile, and otherwise fn runs again on a fresh copy of the
// newer session. Once saved, the result is in the *T that Get returns; if
// fn fails or nothing can be saved, that *T is put back as it was before
// Update. Requests of one
// session queue inside this process; across instances, retries stop after
// Options.UpdateTimeout with ErrConflict.
//
// fn must be pure: it may run more than once, and must only change the *T it
// is given. Calling Get (or any other method of the session) inside fn is a
// programming error and panics. An error from fn is returned as is, with
// nothing saved. With a store that keeps sessions in the client
// (cookiestore), nothing can be compared: fn runs once, and the change is
// saved when the response starts.
func (m *Manager[T]) Update(r *http.Request, fn func(*T) error) error {
	return m.Scope(r).Update(fn)
}

// Regenerate gives the request's session a new token, keeping its data and
// retiring the old token. Call it on login and on any change of privilege,
// so a token planted before the change is worthless after it. A request
// still under way with the old token can neither revive the old session nor
// reach the new one: its changes fail with ErrConflict.
//
// If the session cannot be loaded it returns the error and, as with Get, the
// middleware's error handler answers the request; only [Manager.Load] hands
// that answer to the handler. The same holds for RememberMe and Info.
func (m *Manager[T]) Regenerate(r *http.Request) error { return m.Scope(r).Regenerate() }

// Destroy ends the request's session: its record is deleted and the client's
// cookie expired when the response starts. The payload becomes a zero T; if
// the handler then writes to it, a new session with a new token is saved.
// Destroy never fails with ErrConflict: a logout wins over concurrent
// changes.
func (m *Manager[T]) Destroy(r *http.Request) error { return m.Scope(r).Destroy() }

// RememberMe chooses whether this session's cookie outlives the browser
// session (until the session's deadline) or ends with it, overriding
// Cookie.BrowserSession for this session alone.
func (m *Manager[T]) RememberMe(r *http.Request, remember bool) error {
	return m.Scope(r).RememberMe(remember)
}

// Info describes the request's session, loading it on first use.
func (m *Manager[T]) Info(r *http.Request) (Info, error) { return m.Scope(r).Info() }

// SetLifetime gives the request's session an absolute lifetime of d, counted
// from its creation, instead of Options.Lifetime: a long "remember me"
// (with RememberMe(r, true)) or a short session for a sensitive step. d must
// be positive and at most Options.MaxLifetime. The deadline is sealed in the
// record like the others, and the cookie's expiry follows it.
func (m *Manager[T]) SetLifetime(r *http.Request, d time.Duration) error {
	return m.Scope(r).SetLifetime(d)
}

// Token returns the token the client holds for the request's session after
// this response: the one it sent, or, once the session was committed with a
// new one (a new session, Regenerate, Login), the new one. Before such a
// commit it returns ""; a handler that needs the new token at once (for a
// websocket or a background job) calls middleware.Commit first. An ended or
// empty session has no token.
func (m *Manager[T]) Token(r *http.Request) (string, error) { return m.Scope(r).Token() }

// OnCommit registers fn to run after the request's session has been
// committed successfully (saved, or found unchanged), with the token the
// client holds then; it does not run when the commit fails. Use it to queue
// work that must find the session stored. fn runs on the goroutine that
// commits, after the session's lock is released.
func (m *Manager[T]) OnCommit(r *http.Request, fn func(token string)) { m.Scope(r).OnCommit(fn) }

// Get returns the session payload, loading it on first use; a failed load
// returns a zero T and an error wrapping ErrStore.
func (s *Scope[T]) Get() (*T, error) { return s.get(true) }

// lock takes s.mu, refusing a call from inside Update's fn, which would
// otherwise wait for itself.
func (s *Scope[T]) lock() {
	if s.inFn.Load() {
		panic("session: the session was used inside the function passed to Update; fn must only change the *T it is given")
	}
	s.mu.Lock()
}

func (s *Scope[T]) get(seen bool) (*T, error) {
	s.lock()
	defer s.mu.Unlock()
	s.load()
	if seen && s.err != nil {
		s.errSeen = true
	}
	return s.val, s.err
}

// prepare readies s, locked by the caller, for a change: the session is
// loaded and not yet committed.
func (s *Scope[T]) prepare() error {
	if s.state == committed {
		return ErrCommitted
	}
	s.load()
	return s.err
}

// Update: see [Manager.Update].
func (s *Scope[T]) Update(fn func(*T) error) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return err
	}
	return s.m.kind.update(s, fn)
}

// run calls fn on v, marking that fn is running so that a call back into
// the session is caught.
func (s *Scope[T]) run(fn func(*T) error, v *T) error {
	s.inFn.Store(true)
	defer s.inFn.Store(false)
	return fn(v)
}

// Regenerate: see [Manager.Regenerate].
func (s *Scope[T]) Regenerate() error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return err
	}
	s.regen = true
	return nil
}

// Destroy: see [Manager.Destroy].
func (s *Scope[T]) Destroy() error {
	s.lock()
	defer s.mu.Unlock()
	if s.state == committed {
		return ErrCommitted
	}
	s.used = true
	if s.state == unloaded {
		// Loaded, so the deletion can be conditioned on what is there. A
		// store that cannot load cannot delete either.
		s.load()
	}
	if s.err != nil {
		return s.err
	}
	s.destroy = s.destroy || s.hadTok
	s.reset()
	return nil
}

// reset makes val a new, empty session, as after Destroy.
func (s *Scope[T]) reset() {
	s.val = new(T)
	s.md = s.m.fresh(s.m.now().UnixMilli())
	s.found, s.regen = false, false
}

// RememberMe: see [Manager.RememberMe].
func (s *Scope[T]) RememberMe(remember bool) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return err
	}
	f := flagForget
	if remember {
		f = flagRemember
	}
	s.md.flags = f
	return nil
}

// SetLifetime: see [Manager.SetLifetime].
func (s *Scope[T]) SetLifetime(d time.Duration) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return err
	}
	if ms := d.Milliseconds(); ms < 1 || ms > s.m.maxLife {
		return fmt.Errorf("%w: SetLifetime(%v): want a lifetime from 1ms to MaxLifetime (%v)", ErrOptions, d, time.Duration(s.m.maxLife)*time.Millisecond)
	}
	s.md.absolute = s.md.created + d.Milliseconds()
	return nil
}

// Token: see [Manager.Token].
func (s *Scope[T]) Token() (string, error) {
	s.lock()
	defer s.mu.Unlock()
	s.load()
	if s.err != nil {
		return "", s.err
	}
	if s.found && !s.regen && !s.destroy {
		return s.token, nil
	}
	return "", nil
}

// OnCommit: see [Manager.OnCommit].
func (s *Scope[T]) OnCommit(fn func(token string)) {
	s.lock()
	s.after = append(s.after, fn)
	s.mu.Unlock()
}

// Info: see [Manager.Info].
func (s *Scope[T]) Info() (Info, error) {
	s.lock()
	defer s.mu.Unlock()
	s.load()
	if s.err != nil {
		return Info{}, s.err
	}
	return Info{
		Created:    time.UnixMilli(s.md.created),
		Expires:    time.UnixMilli(s.md.deadline()),
		Absolute:   time.UnixMilli(s.md.absolute),
		New:        !s.found,
		Remembered: s.m.persistent(s.md),
		Owner:      s.md.owner,
	}, nil
}

// load reads the session on first use. Every way a record can be unusable
// (malformed token, unknown, tampered, expired, undecodable, retired) ends
// the same: a new, empty session. Only a store failure is an error.
//
// A session first used after the response started (committed, never
// loaded) is loaded all the same, and what it held then is what a second
// Commit compares against: it can read, and its changes are saved or
// reported as any change after the response started.
func (s *Scope[T]) load() {
	s.used = true
	late := s.state == committed && s.val == nil
	if s.state != unloaded && !late {
		return
	}
	if !late {
		s.state = loaded
	}
	m := s.m
	now := m.now().UnixMilli()
	s.val = new(T)
	s.md = m.fresh(now)
	if s.token != "" {
		var start time.Time
		observe := m.observer.Enabled(s.ctx)
		if observe {
			start = time.Now()
		}
		if err := m.kind.load(s, now); err != nil {
			s.err = err
			if !late {
				s.state = failed
			}
		}
		if observe {
			s.observeLoad(start)
		}
		s.outcome, s.size = "", 0
	}
	if late && s.err == nil {
		s.mine = m.zero
		if s.found {
			s.mine = s.base.payload
		}
	}
}

// adopt makes rec, opened and live, the session s holds, if its payload
// decodes; it reports whether it did.
func (s *Scope[T]) adopt(rec record) bool {
	if rec.md.marker() {
		return false
	}
	if s.m.codec.Unmarshal(rec.payload, s.val) != nil {
		s.val = new(T) // not half of a record
		return false
	}
	s.md, s.base, s.found = rec.md, rec, true
	return true
}

// Commit saves the session if it changed (or its token must change, or its
// idle deadline is due for a refresh) and reports what the transport must
// send. A failed save returns an error and a Result with nothing to send, so
// the client keeps its old token and nothing is lost; a change that
// conflicted with another request's fails with ErrConflict.
//
// The first call does that work. A later call, once the response has
// started, looks for changes made to the payload since, which would
// otherwise be lost without a word (a flash message popped after the page
// was written): when the session is kept on the server under the token the
// client already holds, it saves them as the first call would (merged, or
// ErrConflict), with nothing to send; otherwise it saves nothing and returns
// ErrLate. Calls after that return a zero Result.
func (s *Scope[T]) Commit(ctx context.Context) (Result, error) {
	res, after, err := s.commitOnce(ctx)
	if err == nil && len(after) > 0 {
		tok := res.Token
		if !res.Send && !res.Clear && s.found {
			tok = s.token // unchanged, or saved under the client's token
		}
		for _, fn := range after {
			fn(tok)
		}
	}
	return res, err
}

// commitOnce commits, the first time it is called, and returns the
// OnCommit functions to run then; later, it saves late changes.
func (s *Scope[T]) commitOnce(ctx context.Context) (_ Result, after []func(string), _ error) {
	s.lock()
	defer s.mu.Unlock()
	st := s.state
	if st == committed {
		if err := s.again(ctx); err != nil {
			return Result{}, nil, err
		}
		after, s.after = s.after, nil
		return Result{}, after, nil
	}
	s.state = committed
	after, s.after = s.after, nil
	switch {
	case !s.used:
		return Result{}, after, nil
	case st == failed && s.errSeen:
		return Result{Used: true}, nil, nil
	case st == failed:
		return Result{}, nil, s.err
	}
	var start time.Time
	observe := s.m.observer.Enabled(ctx)
	if observe {
		start = time.Now()
	}
	bp, env, err := s.encode()
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrEncode, err)
	} else if err = s.m.kind.commit(ctx, s, env); err == nil {
		// Held for the next call, which compares the payload with it;
		// what the kinds keep as their base may share it.
		s.held, s.mine = bp, env[envHeader:]
	} else {
		release(bp)
	}
	if observe {
		s.observeCommit(ctx, start, err)
	}
	if err != nil {
		return Result{}, nil, err
	}
	res := Result{Used: true}
	switch {
	case s.send:
		res.Token, res.Send = s.token, true
		if s.m.persistent(s.md) {
			res.Expires = time.UnixMilli(s.md.absolute)
		}
	case s.clear:
		res.Clear = true
	}
	return res, after, nil
}

// again saves what changed in the payload since the first commit, where
// that needs nothing sent to the client; see [Scope.Commit]. s is locked.
func (s *Scope[T]) again(ctx context.Context) error {
	if s.mine == nil {
		return nil // nothing was committed or loaded, or this ran already
	}
	defer func() {
		if s.held != nil {
			release(s.held)
		}
		s.held, s.mine, s.base = nil, nil, record{md: s.base.md}
	}()
	bp, env, err := s.encode()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEncode, err)
	}
	defer release(bp)
	if payload := env[envHeader:]; bytes.Equal(payload, s.mine) || s.m.mapsInside && s.same(s.mine) {
		return nil
	}
	var start time.Time
	observe := s.m.observer.Enabled(ctx)
	if observe {
		start = time.Now()
	}
	s.outcome, s.size, s.merges = "", 0, 0 // this commit's own, for the Observer
	err = s.m.kind.again(ctx, s, env)
	if observe {
		s.observeCommit(ctx, start, err)
	}
	return err
}

// encode returns the encoding of s.val after room for the envelope's
// header, in the pooled buffer bp, which release returns.
func (s *Scope[T]) encode() (bp *[]byte, env []byte, err error) { return s.encodeOf(s.val) }

// encodeOf is encode for v.
func (s *Scope[T]) encodeOf(v *T) (bp *[]byte, env []byte, err error) {
	bp = bufPool.Get().(*[]byte)
	env, err = s.m.codec.Append((*bp)[:envHeader], v)
	*bp = env[:0]
	if err != nil {
		release(bp)
		return nil, nil, err
	}
	return bp, env, nil
}

// release returns a buffer of encode to the pool.
func release(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		bufPool.Put(bp)
	}
}
