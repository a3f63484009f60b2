package session

import (
	"context"
	"time"
)

// kind is where a manager's records live, chosen once by New: on the server
// under hashed keys ([serverSide], with compare-and-set commits), or in the
// token the client carries ([carried]). Everything that differs between the
// two is behind these methods; the rest of the manager does not ask.
type kind[T any] interface {
	// load fills s from the record its token names; only a store failure
	// is an error.
	load(s *Scope[T], now int64) error

	// commit saves env, the encoding of what s holds after room for the
	// envelope's header, if anything changed, and records in s what the
	// client must learn.
	commit(ctx context.Context, s *Scope[T], env []byte) error

	// again saves env, the payload as it is after the response started,
	// if that needs nothing sent to the client; otherwise it returns
	// ErrLate.
	again(ctx context.Context, s *Scope[T], env []byte) error

	// update applies fn to the session and saves the result at once.
	update(s *Scope[T], fn func(*T) error) error

	// owners returns where sessions are listed and revoked by owner, or nil
	// when the store keeps no per-owner index.
	owners() *owners
}

// open turns a stored record into its envelope, or ok == false when it is not
// one this manager can read (sealed with a key outside its ring, bound to
// other associated data, or garbage). raw is left as it was.
func (m *Manager[T]) open(raw, ad []byte) (rec record, ok bool) {
	plain := raw
	if m.cipher != nil {
		// Open decrypts in place, and raw is what a compare-and-set of
		// this record must expect.
		var err error
		plain, _, err = m.cipher.Open(append([]byte(nil), raw...), ad)
		if err != nil {
			return record{}, false
		}
	}
	md, payload, ok := parseEnvelope(plain)
	if !ok {
		return record{}, false
	}
	return record{raw: raw, md: md, payload: payload}, true
}

// seal returns the record that keeps env, an envelope, bound to ad. It never
// aliases env.
func (m *Manager[T]) seal(env, ad []byte) []byte {
	if m.cipher == nil {
		return append([]byte(nil), env...)
	}
	return m.cipher.Seal(nil, env, ad)
}

// expiry is when the store may forget a record of md.
func expiry(md meta) time.Time { return time.UnixMilli(md.deadline()) }

// withHeader returns payload after room for an envelope header, in a new
// slice.
func withHeader(payload []byte) []byte {
	env := make([]byte, envHeader, envHeader+len(payload))
	return append(env, payload...)
}
