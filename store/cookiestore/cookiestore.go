// Package cookiestore keeps sessions in the client: the session cookie's value
// is the session's sealed record, and the server keeps nothing.
//
// # Use
//
// Pass a [Store] to session.New with a cipher; the manager refuses a cookie
// store without one, because the record would otherwise travel in clear:
//
//	ring, err := cipher.ParseKeys(os.Getenv("SESSION_KEYS"))
//	...
//	mgr, err := session.New[Sess](cookiestore.New(cookiestore.Options{}), session.Options{Cipher: ring})
//
// The same manager and middleware work as with every other store: Get,
// Update, Regenerate, Destroy, RememberMe and the idle and absolute
// deadlines behave alike, except that Destroy and Regenerate cannot
// invalidate a copy of the old cookie (see Revocation), and concurrent
// requests cannot be compared (see Concurrent requests). The manager turns
// records into cookie values with [Store.Wrap] and back with [Store.Load].
//
// # Concurrent requests
//
// A server-side store saves every change as a compare-and-set against the
// record the request loaded, so two requests of one session that change it
// at once are merged or one of them is refused with a visible 409. A cookie
// session cannot do that: the client holds the only copy, and each response
// that changes the session sets the whole cookie, so when two requests
// change it at once the response the browser receives last wins and the
// other change is lost. session.Manager.Update cannot help either: it has
// nothing to compare against. What to do about it: keep what changes often
// and must not be lost (a cart, counters) in a server-side store, and keep
// the cookie session for what changes at login and logout; make the
// requests that change the session one at a time in the client (a form post,
// not parallel fetches); and, to revoke sessions, keep a per-user generation
// number on the server as described under Revocation.
//
// # When to choose it
//
// Choose the cookie store when the payload is small (a user id, a CSRF token,
// a few flags) and running a server-side store is not worth it: nothing to
// deploy, nothing to back up, and any instance behind a load balancer can
// serve any request.
//
// Do not choose it when:
//
//   - the payload can grow: a cookie's name and value together must fit in
//     4096 bytes, which leaves roughly 2.9 KiB of encoded payload (less with a
//     long cookie name), and the whole cookie travels with every request to
//     the site, static files included. A save that would not fit fails with
//     an error wrapping [store.ErrTooLarge]; see [Options.MaxSize]. Records
//     are never split across several cookies, and never compressed
//     (compressing attacker-influenced data next to secrets leaks them
//     through the length).
//   - sessions must be revocable by the server (see below).
//   - the application must list a user's sessions: the server has no list.
//
// # Revocation
//
// A stateless cookie cannot be revoked by the server before its deadline.
// Destroy (logout) expires the cookie in the browser, but a copy of the old
// value, replayed by whoever holds it, opens and stays valid until its idle or
// absolute deadline passes. Likewise Regenerate issues a new cookie but cannot
// invalidate the old one. What to do about it:
//
//   - keep lifetimes short: a short IdleTimeout and Lifetime bound how long a
//     stolen or logged-out cookie stays usable;
//   - bind sessions to their users with session.Manager.Login and give the
//     manager a server-side store for the users' epochs
//     (session.Options.Epochs): RevokeAll and RevokeOthers then end every
//     copy of a user's cookies, at one lookup per request of a bound
//     session; rotating the cipher's keys out of the ring revokes every
//     cookie at once;
//   - or use a server-side store (memstore, valkeystore), where Destroy and
//     Regenerate delete the record and a replayed token is worthless.
//
// # Threat model
//
// The cookie value is the record sealed by the manager's
// [github.com/typedsession/session/cipher.Ring] with
// XChaCha20-Poly1305 (a random 24-byte nonce per seal), in unpadded base64url.
// A client can read nothing of it: the payload and the session's times are
// encrypted. It can change nothing either: any change (a flipped bit, a
// truncation, an extension, a value sealed under another key ring) fails
// authentication, and the manager treats the cookie as no session. The
// associated data binds the record to the cookie's name and the record
// format's version, so a value cannot be moved to another cookie (of another
// application sharing the keys, say). The created time, absolute deadline
// and idle deadline are inside the sealed record and are checked on the
// server on every load; the cookie's Expires and Max-Age attributes are only
// a hint to the browser and are never trusted, so a cookie kept or replayed
// past either deadline is no session.
//
// What sealing does not hide: the length of the encoded payload, to the byte, and
// the fact that the session changed (a new cookie is sent). What it does not
// prevent: replay of a cookie within its deadlines, as described above.
//
// # Key rotation
//
// The ring's first key seals and every key opens. A cookie sealed with an
// older key still opens, and is re-sealed with the first key the next time
// the session is written. Once the old key is removed, cookies sealed with it
// are no session. Across several instances, add a new key last everywhere
// before moving it first (see the cipher package).
package cookiestore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/typedsession/session/store"
)

// MaxCookieSize is the most bytes a cookie's name and value may take
// together: the least that RFC 6265 requires browsers to accept, and what
// the major ones enforce. It is the default and the upper bound of
// Options.MaxSize.
const MaxCookieSize = 4096

// encoding is unpadded base64url in strict mode, so each record has exactly
// one spelling: a token whose unused low bits are not zero is rejected.
var encoding = base64.RawURLEncoding.Strict()

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// MaxSize limits the cookie's name and value together, in bytes.
	// Zero or a negative value means MaxCookieSize; a larger value is
	// lowered to MaxCookieSize, since browsers drop such cookies without a
	// word. A smaller value leaves room for the site's other cookies: they
	// all travel in one Cookie request header, which servers and proxies
	// often limit to 8 KiB.
	//
	// Lowering MaxSize on a running site turns cookies issued under the old
	// limit and longer than the new one into no session.
	MaxSize int
}

// Store carries session records in cookies: it is a [store.Carrier].
// It holds no state beyond its options and is safe for concurrent use.
type Store struct {
	maxSize int
}

var _ store.Carrier = (*Store)(nil)

// New returns a cookie store. Hand it to session.New together with a
// cipher.Ring.
func New(opts Options) *Store {
	n := opts.MaxSize
	if n <= 0 || n > MaxCookieSize {
		n = MaxCookieSize
	}
	return &Store{maxSize: n}
}

// MaxSize returns the limit on a cookie's name and value together, in bytes,
// after the defaults of Options.MaxSize were applied.
func (s *Store) MaxSize() int { return s.maxSize }

// errEmpty reports an empty record, which cannot travel: a cookie with an
// empty value is no cookie at all.
var errEmpty = errors.New("cookiestore: empty record")

// Wrap returns the cookie value that carries record: record in unpadded
// base64url. name is the cookie's name. Wrap fails with an error wrapping
// [store.ErrTooLarge], stating the sizes, when name and value together would
// exceed the store's MaxSize; the error never contains the record or the
// value. An empty record is an error too, since an empty cookie value means
// no session.
func (s *Store) Wrap(name string, record []byte) (string, error) {
	if len(record) == 0 {
		return "", errEmpty
	}
	n := encoding.EncodedLen(len(record))
	if len(name)+n > s.maxSize {
		return "", fmt.Errorf("%w: cookie %q would take %d bytes (name %d + value %d for a %d-byte sealed record), over the limit of %d; keep less in the session or use a server-side store",
			store.ErrTooLarge, name, len(name)+n, len(name), n, len(record), s.maxSize)
	}
	return encoding.EncodeToString(record), nil
}

// Load returns the record a cookie value carries, in a new slice the caller
// owns, or found == false when value is not one [Store.Wrap] could have
// produced: empty, longer than MaxSize, outside the base64url alphabet
// (padding, CR, LF, '.', '/' and all else), or not a canonical encoding.
// The checks come before decoding, so Load allocates at most
// 3/4 × MaxSize bytes whatever it is given, and it never panics or fails.
//
// Load only decodes. Whether the record is authentic (sealed by a key of
// the ring, for this manager) and live is for the manager to check.
func (s *Store) Load(_ context.Context, value string) (record []byte, found bool, err error) {
	if len(value) == 0 || len(value) > s.maxSize || len(value)%4 == 1 {
		return nil, false, nil
	}
	for i := 0; i < len(value); i++ {
		if !inAlphabet(value[i]) {
			return nil, false, nil
		}
	}
	rec := make([]byte, encoding.DecodedLen(len(value)))
	n, err := encoding.Decode(rec, []byte(value))
	if err != nil {
		return nil, false, nil
	}
	return rec[:n], true, nil
}

// inAlphabet reports whether c is one of the 64 characters of base64url.
// The decoder alone would not do: it skips CR and LF.
func inAlphabet(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
