package session

import (
	"context"
	"fmt"
	"time"

	"github.com/typedsession/session/store"
)

// carried keeps each session in the token the client carries: the token is
// the sealed record. Nothing is kept on the server, so nothing can be
// compared: concurrent requests of one session each send their whole record,
// and the last one the client receives wins.
type carried[T any] struct {
	m      *Manager[T]
	c      store.Carrier
	ad     []byte      // binds records to the manager's Name, whatever the transport
	epochs store.Index // Options.Epochs' index; nil without
}

func (k *carried[T]) load(s *Scope[T], now int64) error {
	raw, found, err := k.c.Load(s.ctx, s.token)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	if !found {
		return nil
	}
	s.size = len(raw)
	rec, ok := k.m.open(raw, k.ad)
	switch {
	case !ok:
		s.outcome = Unreadable
		return nil
	case !k.m.live(rec.md, now):
		s.outcome = Expired
		return nil
	}
	if !s.adopt(rec) || !rec.md.bound() || k.epochs == nil {
		return nil
	}
	ep, err := k.epochs.Epoch(s.ctx, ownerKey(rec.md.owner))
	if err != nil {
		return fmt.Errorf("%w: epoch: %w", ErrStore, err)
	}
	if string(ep) != rec.md.epoch {
		s.reset() // revoked: a copy of the cookie opens nothing any more
		s.outcome = Revoked
	}
	return nil
}

func (k *carried[T]) commit(ctx context.Context, s *Scope[T], env []byte) error {
	m := k.m
	if s.destroy {
		s.destroy, s.clear = false, true
		s.outcome = Deleted
	}
	payload := env[envHeader:]
	now := m.now().UnixMilli()
	switch {
	case !s.found && s.empty(payload):
		return nil
	case s.found && !s.changed(payload) && !m.refreshDue(s.md, now):
		return nil
	}
	md := m.touched(s.md, now)
	if md.bound() && md.epoch == "" && k.epochs != nil {
		// A session kept in the client has no store key: it binds the
		// empty one, which listings skip, to get its owner's epoch.
		ep, err := k.epochs.Bind(ctx, ownerKey(md.owner), "", time.UnixMilli(md.absolute), newEpoch())
		if err != nil {
			return fmt.Errorf("%w: bind: %w", ErrStore, err)
		}
		md.epoch = string(ep)
	}
	rec := m.cipher.Seal(nil, envelope(env, md), k.ad)
	tok, err := k.c.Wrap(m.cookie.Name, rec)
	if err != nil {
		return err // too large: the application's doing, not a store failure
	}
	s.token, s.found, s.md, s.regen = tok, true, md, false
	s.base = record{raw: rec, md: md, payload: payload} // held by s: see Scope.again
	s.send, s.clear = true, false
	s.outcome, s.size = Saved, len(rec)
	return nil
}

// again cannot save anything: the client holds the record, and the
// response that would carry a new one has started.
func (k *carried[T]) again(_ context.Context, s *Scope[T], _ []byte) error {
	s.outcome = Late
	return ErrLate
}

// update runs fn on the session itself: with nothing on the server to
// compare against, the change is saved with the rest when the response
// starts.
func (k *carried[T]) update(s *Scope[T], fn func(*T) error) error {
	return s.run(fn, s.val)
}

// owners has only the epochs, when Options.Epochs gave a place for them:
// the server keeps no session to list or revoke one by one.
func (k *carried[T]) owners() *owners {
	if k.epochs == nil {
		return nil
	}
	return &owners{idx: k.epochs}
}
