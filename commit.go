package session

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"
	"unsafe"

	"github.com/typedsession/session/store"
)

// serverSide keeps records in a store.Store under hashes of their tokens.
// Every write is a compare-and-set against the record this request loaded,
// so a concurrent change is seen, merged or refused, never overwritten.
type serverSide[T any] struct {
	m  *Manager[T]
	st store.Store
}

// maxMerges bounds how often one commit merges and retries against writes
// of other requests before it gives up with ErrConflict.
const maxMerges = 8

// maxFollow bounds how many retired records Destroy follows to their
// successors.
const maxFollow = 4

// ad returns key as the associated data that binds a record to it, without
// a copy: the cipher only reads it.
func ad(key string) []byte { return unsafe.Slice(unsafe.StringData(key), len(key)) }

func keyOf(token string) string {
	var kb [keyLen]byte
	storeKey(&kb, token)
	return string(kb[:])
}

func (k *serverSide[T]) load(s *Scope[T], now int64) error {
	if !validToken(s.token) {
		return nil // hostile input never reaches the store
	}
	var kb [keyLen]byte
	storeKey(&kb, s.token)
	s.key = string(kb[:])
	raw, found, err := k.st.Load(s.ctx, s.key)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	if !found {
		return nil
	}
	s.size = len(raw)
	rec, ok := k.m.open(raw, ad(s.key))
	if !ok {
		s.outcome = Unreadable
		// Sealed with a key this instance lacks (another instance may hold
		// it), or garbage: no session here, and left for others to read.
		s.base = record{raw: raw}
		return nil
	}
	if !rec.md.marker() && !k.m.live(rec.md, now) {
		// Opened and expired: remove it, unless it changed meanwhile.
		// A failure only leaves it to the store's own expiry.
		_ = k.st.Write(s.ctx, []store.Op{{Key: s.key, Old: raw}})
		s.outcome = Expired
		return nil
	}
	s.base = rec // a marker too: a write under key must expect it
	// A record that opened but does not decode is left alone as well: during
	// a rolling deploy another version of the payload type may read it.
	if !s.adopt(rec) || !rec.md.bound() {
		return nil
	}
	if idx := k.st.Index(); idx != nil {
		ep, err := idx.Epoch(s.ctx, ownerKey(rec.md.owner))
		if err != nil {
			return fmt.Errorf("%w: epoch: %w", ErrStore, err)
		}
		if string(ep) != rec.md.epoch {
			// Revoked: its owner signed out everywhere (or everywhere
			// else) since it was bound. No session, left to expire.
			s.reset()
			s.outcome = Revoked
		}
	}
	return nil
}

// bind binds a session being saved under key to its owner's index, when
// Login bound it to an owner and it has no epoch yet.
func (k *serverSide[T]) bind(ctx context.Context, md *meta, key string) error {
	if !md.bound() || md.epoch != "" {
		return nil
	}
	idx := k.st.Index()
	if idx == nil {
		return ErrNoIndex
	}
	ep, err := idx.Bind(ctx, ownerKey(md.owner), key, time.UnixMilli(md.absolute), newEpoch())
	if err != nil {
		return fmt.Errorf("%w: bind: %w", ErrStore, err)
	}
	md.epoch = string(ep)
	return nil
}

// unbind removes key from owner's index. It is tidying: listings skip what
// ended anyway, so a failure only leaves the entry until its deadline.
func (k *serverSide[T]) unbind(ctx context.Context, owner, key string) {
	if idx := k.st.Index(); idx != nil {
		_ = idx.Unbind(ctx, ownerKey(owner), key)
	}
}

func (k *serverSide[T]) owners() *owners {
	if idx := k.st.Index(); idx != nil {
		return &owners{st: k.st, idx: idx}
	}
	return nil
}

// theirs opens cur, the record a compare-and-set found instead of the one
// expected, as a session another request saved. ok is false when it is not
// one (gone, retired, expired, unreadable): there is nothing to merge with.
func (k *serverSide[T]) theirs(cur []byte, key string, now int64) (record, bool) {
	if len(cur) == 0 {
		return record{}, false
	}
	rec, ok := k.m.open(cur, ad(key))
	if !ok || rec.md.marker() || !k.m.live(rec.md, now) {
		return record{}, false
	}
	var v T
	if k.m.codec.Unmarshal(rec.payload, &v) != nil {
		return record{}, false
	}
	return rec, true
}

// write applies ops, wrapping a failure in ErrStore.
func (k *serverSide[T]) write(ctx context.Context, ops []store.Op) error {
	if err := k.st.Write(ctx, ops); err != nil {
		return fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	return nil
}

func (k *serverSide[T]) commit(ctx context.Context, s *Scope[T], env []byte) error {
	m := k.m
	if s.destroy {
		if err := k.end(ctx, s); err != nil {
			return err
		}
	}
	payload := env[envHeader:]
	now := m.now().UnixMilli()
	if !s.found {
		switch {
		case s.empty(payload):
			return nil // nothing worth keeping: no record, no cookie
		case s.base.md.marker():
			return fmt.Errorf("%w: the session's token was retired by a login", ErrConflict)
		}
		return k.create(ctx, s, env, now)
	}
	changed := s.changed(payload)
	if !changed && !m.refreshDue(s.md, now) {
		return nil
	}
	if changed {
		if p := m.carryUnknown(s.base.payload, payload); len(p) != len(payload) {
			env = withHeader(p)
		}
	}
	if s.regen {
		return k.rotate(ctx, s, env, now)
	}
	return k.replace(ctx, s, env, changed, now)
}

// again saves env, the payload as it is after the response started, over
// the record the first commit saved or found, when the client already
// holds the token of that record.
func (k *serverSide[T]) again(ctx context.Context, s *Scope[T], env []byte) error {
	if !s.found {
		s.outcome = Late // saving it would need a new token sent
		return ErrLate
	}
	m := k.m
	if !bytes.Equal(m.carryUnknown(s.base.payload, s.mine), s.base.payload) {
		// What the first commit saved holds another request's changes,
		// merged, that val lacks: merge against val as it was then, so
		// they stay.
		mine := record{md: s.md, payload: s.mine}
		merged, md, err := m.merge(mine, env[envHeader:], s.md, s.base)
		if err != nil {
			return err
		}
		s.md, env = md, withHeader(merged)
	} else if p := m.carryUnknown(s.base.payload, env[envHeader:]); len(p) != len(env)-envHeader {
		env = withHeader(p)
	}
	return k.replace(ctx, s, env, true, m.now().UnixMilli())
}

// swap writes env, the session with metadata md, over the record s is based
// on, with a compare-and-set, and returns the record it wrote and the op,
// which tells whether it applied. When it did, and the client's cookie must
// change with it (a switch between a persistent and a browser-session
// cookie, or a new lifetime), s will send it; an idle refresh is no news to
// the client, whose persistent cookie lasts until the absolute deadline.
func (k *serverSide[T]) swap(ctx context.Context, s *Scope[T], env []byte, md meta) ([]byte, []store.Op, error) {
	rec := envelope(env, md) // a store keeps no reference to what it is given
	if k.m.cipher != nil {
		rec = k.m.seal(rec, ad(s.key))
	} else if s.state != committed {
		rec = bytes.Clone(rec) // kept as the base of later writes
	}
	ops := s.oneOp(store.Op{Key: s.key, Old: s.base.raw, New: rec, Expiry: expiry(md)})
	if err := k.write(ctx, ops); err != nil {
		return nil, nil, err
	}
	if ops[0].Applied {
		s.send = s.send || md.flags != s.base.md.flags || md.absolute != s.base.md.absolute
	}
	return rec, ops, nil
}

// empty reports whether a new session holding payload is worth nothing:
// nobody wrote to it, chose its cookie or bound it. It is not saved.
func (s *Scope[T]) empty(payload []byte) bool {
	return bytes.Equal(payload, s.m.zero) && s.md.flags == 0 && !s.md.bound()
}

// changed reports whether a loaded session holding payload must be saved,
// idle refresh aside.
func (s *Scope[T]) changed(payload []byte) bool {
	md, was := s.md, s.base.md
	return s.regen || md.flags != was.flags || md.absolute != was.absolute || md.binding() != was.binding() ||
		!bytes.Equal(payload, s.base.payload) && !(s.m.mapsInside && s.same(s.base.payload))
}

// oneOp returns a one-op batch in s's own memory, which a request uses for
// one write at a time, so a commit allocates no batch.
func (s *Scope[T]) oneOp(op store.Op) []store.Op {
	s.ops[0] = op
	return s.ops[:1]
}

// saved returns what s keeps of a record it saved, enough to compare and
// set against it again: after the commit, env is held until the last one
// (see Scope.again); before it (Update), it is a pooled buffer, so the
// payload is copied.
func (s *Scope[T]) saved(raw []byte, md meta, env []byte) record {
	payload := env[envHeader:]
	if s.state != committed {
		payload = bytes.Clone(payload)
	}
	return record{raw: raw, md: md, payload: payload}
}

// same reports whether the payload still equals what was encoded as
// payload, for payloads with maps, whose encoding may differ from one run
// to the next while their content does not.
func (s *Scope[T]) same(payload []byte) bool {
	var was T
	return s.m.codec.Unmarshal(payload, &was) == nil && reflect.DeepEqual(&was, s.val)
}

// create saves env as a new session under a new token.
func (k *serverSide[T]) create(ctx context.Context, s *Scope[T], env []byte, now int64) error {
	m := k.m
	md := m.touched(s.md, now)
	tok := newToken()
	key := keyOf(tok)
	if err := k.bind(ctx, &md, key); err != nil {
		return err
	}
	rec := m.seal(envelope(env, md), ad(key))
	ops := s.oneOp(store.Op{Key: key, New: rec, Expiry: expiry(md)})
	if err := k.write(ctx, ops); err != nil {
		return err
	}
	if !ops[0].Applied {
		// 256 random bits do not collide; a store that says so is broken.
		return fmt.Errorf("%w: save: a new session's key is taken", ErrStore)
	}
	s.token, s.key, s.found, s.md, s.regen = tok, key, true, md, false
	s.base = s.saved(rec, md, env)
	s.send, s.clear = true, false
	s.outcome, s.size = Created, len(rec)
	return nil
}

// replace saves env over the loaded record. When another request saved the
// session first, their record and this request's changes are merged and
// the save is tried again; a commit that only refreshed the idle deadline
// is dropped instead, since theirs is at least as fresh.
func (k *serverSide[T]) replace(ctx context.Context, s *Scope[T], env []byte, changed bool, now int64) error {
	m := k.m
	md := m.touched(s.md, now)
	for range maxMerges {
		rec, ops, err := k.swap(ctx, s, env, md)
		if err != nil {
			return err
		}
		if ops[0].Applied {
			s.md, s.size = md, len(rec)
			s.base = s.saved(rec, md, env)
			switch {
			case s.merges > 0:
				s.outcome = Merged
			case changed:
				s.outcome = Saved
			default:
				s.outcome = Refreshed
			}
			return nil
		}
		if !changed {
			s.outcome = Unchanged // theirs is at least as fresh
			return nil
		}
		theirs, ok := k.theirs(ops[0].Current, s.key, now)
		if !ok {
			return fmt.Errorf("%w: the session ended or was retired meanwhile", ErrConflict)
		}
		merged, mmd, err := m.merge(s.base, env[envHeader:], md, theirs)
		if err != nil {
			return err
		}
		s.merges++
		s.base, env, md = theirs, withHeader(merged), mmd
	}
	return fmt.Errorf("%w: the session kept changing", ErrConflict)
}

// rotate saves env under a new token and retires the loaded record to a
// marker naming its successor, in one round trip where the store can.
func (k *serverSide[T]) rotate(ctx context.Context, s *Scope[T], env []byte, now int64) error {
	if err := s.ctx.Err(); err != nil {
		// Nobody is left to receive a new token; the old one stays valid.
		return fmt.Errorf("session: regenerate: the request ended: %w", err)
	}
	m := k.m
	md := m.touched(s.md, now)
	tok := newToken()
	key := keyOf(tok)
	if err := k.bind(ctx, &md, key); err != nil {
		return err
	}
	mk := make([]byte, envHeader, envHeader+keyLen)
	putEnvelope(mk, meta{flags: flagMarker, created: now, absolute: now + m.grace})
	mk = m.seal(append(mk, key...), ad(s.key))
	var prev []byte // what this rotation wrote under key
	for range maxMerges {
		rec := m.seal(envelope(env, md), ad(key))
		ops := []store.Op{
			{Key: key, Old: prev, New: rec, Expiry: expiry(md)},
			{Key: s.key, Old: s.base.raw, New: mk, Expiry: time.UnixMilli(now + m.grace)},
		}
		if err := k.write(ctx, ops); err != nil {
			return err
		}
		if !ops[0].Applied {
			return fmt.Errorf("%w: save: a new session's key is taken", ErrStore)
		}
		prev = rec
		done := ops[1].Applied
		if !done {
			// Another request rotated the session first (a double-submitted
			// login): this one ends as a session of its own, not linked to
			// the old token.
			if cur, ok := m.open(ops[1].Current, ad(s.key)); ok && cur.md.marker() {
				done = true
			}
		}
		if done {
			if s.base.md.bound() {
				k.unbind(ctx, s.base.md.owner, s.key) // the old key lists no session now
			}
			s.token, s.key, s.found, s.md, s.regen = tok, key, true, md, false
			s.base = s.saved(prev, md, env)
			s.send, s.clear = true, false
			s.outcome, s.size = Rotated, len(prev)
			return nil
		}
		theirs, ok := k.theirs(ops[1].Current, s.key, now)
		var merged []byte
		var err error
		if ok {
			merged, md, err = m.merge(s.base, env[envHeader:], md, theirs)
		}
		if !ok || err != nil {
			// The old session ended meanwhile (a logout), or cannot take
			// this request's changes: the copy under the new token must not
			// outlive it.
			if werr := k.write(ctx, []store.Op{{Key: key, Old: rec}}); werr != nil {
				return werr
			}
			if err == nil {
				err = fmt.Errorf("%w: the session ended meanwhile", ErrConflict)
			}
			return err
		}
		s.merges++
		s.base, env = theirs, withHeader(merged)
	}
	if err := k.write(ctx, []store.Op{{Key: key, Old: prev}}); err != nil {
		return err
	}
	return fmt.Errorf("%w: the session kept changing", ErrConflict)
}

// end deletes the session the client's token named, whatever other
// requests changed in it meanwhile. A record retired by a rotation that
// happened after this request loaded is followed to its successor, so a
// logout racing a login still logs out; a request that loaded the marker
// itself (it came with a token already retired) ends nothing more.
func (k *serverSide[T]) end(ctx context.Context, s *Scope[T]) error {
	key, expect, retired := s.key, s.base.raw, s.base.md.marker()
	follow := s.base.md.created != 0 // it opened as a session
	s.destroy, s.clear, s.key, s.base = false, s.hadTok, "", record{}
	s.outcome = Deleted
	if key == "" || retired {
		return nil
	}
	for hops, tries := 0, 0; tries < 4*maxMerges; tries++ {
		ops := []store.Op{{Key: key, Old: expect}}
		if err := k.write(ctx, ops); err != nil {
			return err
		}
		if !ops[0].Applied {
			if len(ops[0].Current) == 0 {
				return nil // already gone
			}
			expect = ops[0].Current // changed meanwhile: delete that
			continue
		}
		rec, ok := k.m.open(expect, ad(key))
		if ok && rec.md.bound() {
			k.unbind(ctx, rec.md.owner, key)
		}
		if !ok || !rec.md.marker() || !follow || hops == maxFollow {
			return nil
		}
		// The record was retired by a rotation this request did not see:
		// end its successor too.
		hops++
		key = string(rec.payload)
		raw, found, err := k.st.Load(ctx, key)
		if err != nil {
			return fmt.Errorf("%w: load: %w", ErrStore, err)
		}
		if !found {
			return nil
		}
		expect = raw
	}
	return fmt.Errorf("%w: delete: the session kept changing", ErrStore)
}

func (k *serverSide[T]) update(s *Scope[T], fn func(*T) error) error {
	m := k.m
	ctx := s.ctx
	if s.destroy {
		if err := k.end(ctx, s); err != nil {
			return err
		}
	}
	if !s.found && s.base.md.marker() {
		return fmt.Errorf("%w: the session's token was retired by a login", ErrConflict)
	}
	// fn runs on the session itself first, since it rarely has to run
	// again; what it changed is undone if it fails or nothing is saved.
	pbp, penv, err := s.encode()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEncode, err)
	}
	defer release(pbp) // after the session is put back from it
	pending := penv[envHeader:]
	orig := pending
	dirty := true
	defer func() {
		if dirty {
			if x := new(T); m.codec.Unmarshal(orig, x) == nil {
				*s.val = *x
			}
		}
	}()
	if !s.found {
		if err := s.run(fn, s.val); err != nil {
			return err
		}
		bp, env, err := s.encode()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrEncode, err)
		}
		defer release(bp)
		if s.empty(env[envHeader:]) {
			dirty = false
			return nil
		}
		if err := k.create(ctx, s, env, m.now().UnixMilli()); err != nil {
			return err
		}
		dirty = false
		return nil
	}

	mu := m.stripe(s.key)
	mu.Lock()
	defer mu.Unlock()
	stop := time.Now().Add(m.updateIn)
	pmd := s.md
	// A Login still to come binds the session as it rotates to its new
	// token; the record under the old one keeps its binding meanwhile.
	login := s.md.binding()
	if s.regen {
		pmd.bind(s.base.md.binding())
	}
	x := s.val
	for try := 0; ; try++ {
		if try > 0 {
			x = new(T)
			if err := m.codec.Unmarshal(pending, x); err != nil {
				return fmt.Errorf("%w: %v", ErrEncode, err)
			}
		}
		if err := s.run(fn, x); err != nil {
			return err
		}
		bp, mine, err := s.encodeOf(x)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrEncode, err)
		}
		now := m.now().UnixMilli()
		md := m.touched(pmd, now)
		env := withHeader(m.carryUnknown(s.base.payload, mine[envHeader:]))
		release(bp)
		rec, ops, err := k.swap(ctx, s, env, md)
		if err != nil {
			return err
		}
		if ops[0].Applied {
			*s.val = *x
			dirty = false
			s.md = md
			s.base = record{raw: rec, md: md, payload: env[envHeader:]}
			if s.regen {
				s.md.bind(login)
			}
			return nil
		}
		theirs, ok := k.theirs(ops[0].Current, s.key, now)
		if !ok {
			return fmt.Errorf("%w: the session ended or was retired meanwhile", ErrConflict)
		}
		// Fold the request's own pending changes into theirs, and run fn
		// again on the result.
		if pending, pmd, err = m.merge(s.base, pending, pmd, theirs); err != nil {
			return err
		}
		s.merges++
		s.base = theirs
		if !time.Now().Before(stop) {
			return fmt.Errorf("%w: the session kept changing for %v", ErrConflict, m.updateIn)
		}
		// The first retry goes at once: its base is the record that beat
		// it. Updates in this process queue on the stripe, so a second
		// collision means another instance writes as fast: back off a
		// little, at random, so the two do not collide again in step.
		if try > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(min(time.Millisecond<<try, 20*time.Millisecond)))))
		}
	}
}
