package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/typedsession/session/store"
)

var (
	// ErrNoIndex reports a store that keeps no per-owner index (or, for
	// listing and revoking, a store that keeps sessions in the client), so
	// sessions cannot be bound to owners, listed or revoked by the server.
	ErrNoIndex = errors.New("session: the store keeps no per-owner index")

	// ErrNotFound reports a handle that names no live session of the owner.
	ErrNotFound = errors.New("session: no such session")

	// ErrNotBound reports a request whose session is not bound to an owner
	// (nobody logged in with Login).
	ErrNotBound = errors.New("session: the session is not bound to an owner")
)

// DeviceHints chooses what [Manager.Login] records about the client, for a
// "your devices" page. Both are personal data: record them only if the page
// shows them, and say so in the application's privacy notice. They are kept
// inside the (sealed) record, never in the clear in the index.
type DeviceHints struct {
	// UserAgent records the User-Agent header, cut to 256 bytes.
	UserAgent bool

	// IP records the client's network, coarsened to a /24 (IPv4) or /48
	// (IPv6), from r.RemoteAddr. Behind a proxy, set RemoteAddr from the
	// forwarded address in a middleware you trust, before the session's.
	IP bool
}

// Device describes one of an owner's live sessions, as a "your devices" page
// shows it.
type Device struct {
	// Handle names the session for [Manager.Revoke]. It is not a token and
	// cannot open the session.
	Handle string

	// Created is when the session was first saved.
	Created time.Time

	// LastSeen is when it was last saved: to the precision of the idle
	// refresh, since a read refreshes at most once per quarter of the idle
	// timeout.
	LastSeen time.Time

	// Expires is when the session ends unless it is used again.
	Expires time.Time

	// Current reports the session of the request whose context was passed
	// to Sessions.
	Current bool

	// UserAgent and IP are what Login recorded (see [DeviceHints]).
	UserAgent string
	IP        string
}

// owners lists and revokes sessions by owner: in a server-side store, or,
// for sessions kept in the client, through the epochs alone (st is nil then:
// nothing can be listed or revoked one by one).
type owners struct {
	st  store.Store
	idx store.Index
}

// ownerKey is the name an owner has in the store's index: a hash of the
// application's user id, so an index holds no id.
func ownerKey(owner string) string {
	sum := sha256.Sum256([]byte("typedsession owner v1\x00" + owner))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newEpoch returns a fresh random epoch. It is random, not a counter: a
// counter whose key expired would start again and revive revoked sessions.
func newEpoch() []byte {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return b
}

// Login binds the request's session to owner (the application's user id,
// 1 to 255 bytes) and regenerates its token, as a login must: the session
// is then listed by [Manager.Sessions] and ended by the revocations. The
// device hints of Options.DeviceHints are recorded. With a server-side
// store without a per-owner index it fails with ErrNoIndex; with a store
// that keeps sessions in the client the owner is kept in the cookie, and
// listing and revoking are not available.
func (m *Manager[T]) Login(r *http.Request, owner string) error {
	if owner == "" || len(owner) > maxOwner {
		return fmt.Errorf("session: Login: the owner must be 1 to %d bytes", maxOwner)
	}
	if _, server := m.kind.(*serverSide[T]); server && m.kind.owners() == nil {
		return ErrNoIndex
	}
	s := m.Scope(r)
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return err
	}
	b := binding{owner: owner}
	if m.hints.UserAgent {
		b.ua = r.UserAgent()
		if len(b.ua) > maxUserAgent {
			b.ua = b.ua[:maxUserAgent]
		}
	}
	if m.hints.IP {
		b.ip = coarseIP(r.RemoteAddr)
	}
	s.md.bind(b)
	s.regen = true
	return nil
}

// coarseIP returns the network of addr, an "ip:port": a /24 for IPv4, a /48
// for IPv6, empty when addr is not an address.
func coarseIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return ""
	case ip.To4() != nil:
		return (&net.IPNet{IP: ip.To4().Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(48, 128)), Mask: net.CIDRMask(48, 128)}).String()
}

// Sessions returns owner's live sessions, newest first. When ctx is a
// request's context that passed through the middleware, the request's own
// session is marked Current. It fails with ErrNoIndex when the store keeps
// no per-owner index. The index is read once and each listed record loaded
// (in one round trip where the store pipelines); records that ended, were
// revoked or retired are left out.
func (m *Manager[T]) Sessions(ctx context.Context, owner string) ([]Device, error) {
	o := m.kind.owners()
	if o == nil || o.st == nil {
		return nil, ErrNoIndex
	}
	oh := ownerKey(owner)
	ep, err := o.idx.Epoch(ctx, oh)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch: %w", ErrStore, err)
	}
	if ep == nil {
		return nil, nil // never bound, or signed out everywhere
	}
	entries, err := o.idx.Sessions(ctx, oh)
	if err != nil {
		return nil, fmt.Errorf("%w: sessions: %w", ErrStore, err)
	}
	var current string
	if s, ok := ctx.Value(m.ctxKey).(*Scope[T]); ok {
		s.lock()
		s.load()
		current = s.key
		s.mu.Unlock()
	}
	now := m.now().UnixMilli()
	var out []Device
	for _, e := range entries {
		rec, ok := m.open(e.Record, ad(e.Key))
		if !ok || rec.md.marker() || !m.live(rec.md, now) || rec.md.owner != owner || rec.md.epoch != string(ep) {
			continue
		}
		seen := rec.md.seen
		if seen == 0 {
			seen = rec.md.created
		}
		out = append(out, Device{
			Handle:    e.Key,
			Created:   time.UnixMilli(rec.md.created),
			LastSeen:  time.UnixMilli(seen),
			Expires:   time.UnixMilli(rec.md.deadline()),
			Current:   e.Key == current,
			UserAgent: rec.md.ua,
			IP:        rec.md.ip,
		})
	}
	slices.SortFunc(out, func(a, b Device) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Revoke ends the session handle names (from [Device.Handle]) if it belongs
// to owner, on every instance, from its next request. It fails with
// ErrNotFound when handle names no live session of owner.
func (m *Manager[T]) Revoke(ctx context.Context, owner, handle string) error {
	o := m.kind.owners()
	if o == nil || o.st == nil {
		return ErrNoIndex
	}
	if !validKey(handle) {
		return ErrNotFound // hostile input never reaches the store
	}
	raw, found, err := o.st.Load(ctx, handle)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	for range maxMerges {
		if !found {
			return ErrNotFound
		}
		rec, ok := m.open(raw, ad(handle))
		if !ok || rec.md.marker() || rec.md.owner != owner {
			return ErrNotFound
		}
		ops := []store.Op{{Key: handle, Old: raw}}
		if err := o.st.Write(ctx, ops); err != nil {
			return fmt.Errorf("%w: delete: %w", ErrStore, err)
		}
		if ops[0].Applied {
			if err := o.idx.Unbind(ctx, ownerKey(owner), handle); err != nil {
				return fmt.Errorf("%w: unbind: %w", ErrStore, err)
			}
			return nil
		}
		raw, found = ops[0].Current, len(ops[0].Current) > 0
	}
	return fmt.Errorf("%w: revoke: the session kept changing", ErrStore)
}

// RevokeOthers ends every session of the request's owner but the request's
// own, on every instance, from their next request, and reports how many it
// ended (0 for sessions kept in the client, which cannot be counted; see
// Options.Epochs). It replaces the owner's epoch and binds the request's session to
// the new one, so it costs the same however many sessions there are; a
// request of this same session that loads in between sees no session. It
// fails with ErrNotBound when the request's session is not bound to an
// owner.
func (m *Manager[T]) RevokeOthers(r *http.Request) (int, error) {
	o := m.kind.owners()
	if o == nil {
		return 0, ErrNoIndex
	}
	info, err := m.Info(r)
	if err != nil {
		return 0, err
	}
	if info.Owner == "" || info.New {
		return 0, ErrNotBound
	}
	var list []Device
	if o.st != nil {
		if list, err = m.Sessions(r.Context(), info.Owner); err != nil {
			return 0, err
		}
	}
	s := m.Scope(r)
	s.lock()
	defer s.mu.Unlock()
	if err := s.prepare(); err != nil {
		return 0, err
	}
	ep := newEpoch()
	if err := o.idx.SetEpoch(r.Context(), ownerKey(info.Owner), ep, time.UnixMilli(s.md.absolute)); err != nil {
		return 0, fmt.Errorf("%w: epoch: %w", ErrStore, err)
	}
	s.md.epoch = string(ep)
	if err := m.kind.update(s, func(*T) error { return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list {
		if !d.Current {
			n++
			_ = o.idx.Unbind(r.Context(), ownerKey(info.Owner), d.Handle) // tidying only
		}
	}
	return n, nil
}

// RevokeAll ends every session of owner, on every instance, from their next
// request, and reports how many it ended (0 for sessions kept in the client,
// which cannot be counted; see Options.Epochs): "sign out everywhere", for a
// password change or an administrator. It removes the owner's epoch, so it
// costs the same however many sessions there are. A request of one of those
// sessions that wants to end its own cookie too calls Destroy.
func (m *Manager[T]) RevokeAll(ctx context.Context, owner string) (int, error) {
	o := m.kind.owners()
	if o == nil {
		return 0, ErrNoIndex
	}
	var list []Device
	if o.st != nil {
		var err error
		if list, err = m.Sessions(ctx, owner); err != nil {
			return 0, err
		}
	}
	oh := ownerKey(owner)
	if err := o.idx.SetEpoch(ctx, oh, nil, time.Time{}); err != nil {
		return 0, fmt.Errorf("%w: epoch: %w", ErrStore, err)
	}
	for _, d := range list {
		_ = o.idx.Unbind(ctx, oh, d.Handle) // tidying only
	}
	return len(list), nil
}

// validKey reports whether s has the shape of a store key: 43 characters of
// base64url encoding 32 bytes, like a token.
func validKey(s string) bool { return validToken(s) }
