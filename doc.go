// Package session gives net/http programs sessions whose payload is the
// program's own struct, checked by the compiler: no string keys, no type
// assertions, no map of any.
//
// # Quick start
//
// Declare the payload, build one [Manager] at start-up, mount the middleware,
// and call [Manager.Get] in handlers:
//
//	type Sess struct {
//		UserID int64
//		Cart   []int64
//	}
//
//	mgr, err := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
//	if err != nil { ... }
//	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
//		s := mgr.Get(r) // *Sess, loaded on first use
//		s.Cart = append(s.Cart, 42)
//	})
//	http.ListenAndServe(addr, middleware.New(mgr, middleware.Options{})(mux))
//
// Changes are saved once, when the response starts, and only if the encoded
// payload changed. A request that never calls Get costs no store I/O and sets
// no cookie; a visitor whose session stays empty is never stored.
//
// # Concurrent requests
//
// Browsers send several requests of one session at once. With a server-side
// store, no change is lost silently: every save is a compare-and-set against
// the record the request loaded. When another request saved the session in
// between, the two are merged field by field (the top-level fields as the
// codec writes them; a nested struct is one field): a field only one of them
// changed takes that one's value. A field both changed is a conflict, even
// when both wrote the same value (two increments from 1 to 2 are two
// increments): nothing is saved, and the commit fails with [ErrConflict],
// which the middleware's default error handler answers with 409 Conflict.
// Fields this program's T does not know (written by a newer deploy) are kept.
//
// For a change that must not conflict, such as a counter or a cart, use
// [Manager.Update], an exact read-modify-write that runs its function again
// on the newer session:
//
//	err := mgr.Update(r, func(s *Sess) error {
//		s.Cart = append(s.Cart, item)
//		return nil
//	})
//
// A payload whose pointer has a Merge method ([Merger]) resolves fields both
// requests changed; Options.Strict makes any concurrent change a conflict.
// Cookie-only sessions cannot compare anything: the client holds the only
// copy, and the last response it receives wins (see cookiestore).
//
// # Login, logout, expiry
//
// Call [Manager.Regenerate] on login (new token, same data, the old token
// retired: a request still under way with it can neither revive the old
// session nor reach the new one) and [Manager.Destroy] on logout, which wins
// over concurrent changes. Options.Lifetime is an absolute
// lifetime (default 24h) that activity never extends; Options.IdleTimeout
// ends sessions left unused. Both deadlines live inside the (sealed) record
// and are checked on the server; cookie expiry attributes are never trusted.
//
// # Security model
//
// Tokens are 32 bytes from crypto/rand in base64url. A token of the wrong
// shape is rejected before the store is touched, and a token the server does
// not know is never adopted. Stores hold records under a SHA-256 of the token,
// so a dump of the store holds no usable token. With Options.Cipher set
// (a [cipher.Ring]), records are sealed with XChaCha20-Poly1305 and bound to
// their store key or cookie name; without it, server-side records are
// plaintext at rest. Cookies default to Secure, HttpOnly, SameSite=Lax,
// Path=/ and no Domain; weakening them takes an option named Insecure....
// Responses that set a cookie carry Cache-Control: no-store and Vary: Cookie.
//
// # Stores and codecs
//
// A store implements the byte-level contract of package store: a load and a
// conditional write ([store.Store]: [memstore] in memory, [valkeystore] in
// Valkey or Redis), or a [store.Carrier] that keeps the record in the token
// itself ([cookiestore]).
// Payloads are encoded with [codec.MsgPack] by default or [codec.JSON];
// records written by an older version of the payload type decode where the
// fields allow and are otherwise dropped as "no session".
//
// # Other transports
//
// [Manager.Begin] gives the transport-free core, a [Scope] that loads by
// token and commits with a context, for gRPC, websockets or background jobs.
// Within net/http, middleware.Commit saves the session mid-handler and hands
// its cookie to a websocket upgrader.
//
// [memstore]: https://pkg.go.dev/github.com/typedsession/session/store/memstore
// [cookiestore]: https://pkg.go.dev/github.com/typedsession/session/store/cookiestore
// [valkeystore]: https://pkg.go.dev/github.com/typedsession/session/store/valkeystore
package session
