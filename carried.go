package session

import (
	"bytes"
	"context"
	"fmt"

	"github.com/typedsession/session/store"
)

// carried keeps each session in the token the client carries: the token is
// the sealed record. Nothing is kept on the server, so nothing can be
// compared: concurrent requests of one session each send their whole record,
// and the last one the client receives wins.
type carried[T any] struct {
	m  *Manager[T]
	c  store.Carrier
	ad []byte // binds records to the manager's Name, whatever the transport
}

func (k *carried[T]) load(s *Scope[T], now int64) error {
	raw, found, err := k.c.Load(s.ctx, s.token)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	if !found {
		return nil
	}
	switch rec, ok := k.m.open(raw, k.ad); {
	case !ok:
		s.outcome = Unreadable
	case !k.m.live(rec.md, now):
		s.outcome = Expired
	default:
		s.adopt(rec)
	}
	return nil
}

func (k *carried[T]) commit(_ context.Context, s *Scope[T]) error {
	m := k.m
	if s.destroy {
		s.destroy, s.clear = false, true
		s.outcome = Deleted
	}
	env, put, err := s.encode()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEncode, err)
	}
	defer put()
	payload := env[envHeader:]
	now := m.now().UnixMilli()
	if !s.found {
		if bytes.Equal(payload, m.zero) && s.md.flags == 0 && !s.md.bound() {
			return nil
		}
	} else {
		changed := s.regen || s.md.flags != s.base.md.flags || s.md.absolute != s.base.md.absolute ||
			!bytes.Equal(payload, s.base.payload) && !(m.mapsInside && s.sameAsBase())
		if !changed && !m.refreshDue(s.md, now) {
			return nil
		}
	}
	md := m.touched(s.md, now)
	rec := m.cipher.Seal(nil, envelope(env, md), k.ad)
	tok, err := k.c.Wrap(m.cookie.Name, rec)
	if err != nil {
		return err // too large: the application's doing, not a store failure
	}
	s.token, s.found, s.md, s.regen = tok, true, md, false
	s.base = record{raw: rec, md: md, payload: bytes.Clone(payload)}
	s.send, s.clear = true, false
	s.outcome = Saved
	return nil
}

// update runs fn on the session itself: with nothing on the server to
// compare against, the change is saved with the rest when the response
// starts.
func (k *carried[T]) update(s *Scope[T], fn func(*T) error) error {
	return s.run(fn, s.val)
}

// owners is nil: the server keeps nothing to list or revoke.
func (k *carried[T]) owners() *owners { return nil }
