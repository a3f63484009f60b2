package session

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/store"
)

// DefaultLifetime is the absolute lifetime of a session when
// Options.Lifetime is zero.
const DefaultLifetime = 24 * time.Hour

// DefaultCookieName is the cookie's name when Cookie.Name is empty and the
// cookie qualifies for the __Host- prefix (Secure, Path=/, no Domain), which
// keeps sibling subdomains from planting a session cookie of their own.
// Otherwise the default name is FallbackCookieName.
const DefaultCookieName = "__Host-session"

// FallbackCookieName is the default name of a cookie that cannot carry the
// __Host- prefix.
const FallbackCookieName = "session"

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

	// ErrOptions reports an invalid option passed to [New].
	ErrOptions = errors.New("session: invalid options")
)

// Options configures a [Manager]. The zero value is the secure default.
type Options struct {
	// Codec encodes the payload. Nil means codec.MsgPack.
	Codec codec.Codec

	// Cipher seals records. Nil stores records in plaintext, which server-side
	// stores allow (anyone who can read the store can read the sessions);
	// a store that keeps records in the client, such as cookiestore, requires
	// a cipher.
	Cipher *cipher.Ring

	// Lifetime is the absolute lifetime of a session, counted from its
	// creation; activity never extends it. Zero means DefaultLifetime.
	Lifetime time.Duration

	// IdleTimeout ends a session that has not been used for this long.
	// Zero turns the idle timeout off. Reads count as use: the idle deadline
	// of a session that is only read is moved forward at most once per
	// quarter of the timeout, so a session ends between 3/4 and all of
	// IdleTimeout after its last use.
	IdleTimeout time.Duration

	// Cookie sets the attributes of the session cookie.
	Cookie Cookie

	// Now is the clock. Nil means time.Now; tests inject their own.
	Now func() time.Time
}

// Cookie holds the session cookie's attributes. The zero value gives a cookie
// named "__Host-session" with Secure, HttpOnly, SameSite=Lax, Path=/ and no
// Domain.
type Cookie struct {
	// Name is the cookie's name; empty means DefaultCookieName
	// ("__Host-session"), or FallbackCookieName ("session") when the cookie
	// cannot carry that prefix. A name starting with "__Host-" is checked to
	// carry Secure, Path=/ and no Domain, and one starting with "__Secure-" to
	// carry Secure, as browsers require (without regard to case).
	Name string

	// Domain widens the cookie to a domain and its subdomains. Empty (the
	// default) keeps it to the host that set it.
	Domain string

	// Path is the cookie's path; empty means "/".
	Path string

	// SameSite is the SameSite attribute; zero means http.SameSiteLaxMode.
	// http.SameSiteNoneMode requires the Secure attribute.
	SameSite http.SameSite

	// BrowserSession makes cookies end when the browser closes, unless a
	// session asks to be remembered (see [Manager.RememberMe]). By default
	// cookies persist until the session's deadline.
	BrowserSession bool

	// InsecureNoSecure omits the Secure attribute, so the cookie is also sent
	// over plain HTTP. Only for local development.
	InsecureNoSecure bool

	// InsecureScriptAccess omits the HttpOnly attribute, so scripts in the
	// page can read the token.
	InsecureScriptAccess bool
}

// Manager loads and saves sessions whose payload is a T. Build one with [New]
// at start-up and share it; it is safe for concurrent use.
type Manager[T any] struct {
	store    store.Store
	carrier  store.Carrier  // non-nil when the record travels in the token
	replacer store.Replacer // non-nil when the store can write only over a live record
	codec    codec.Codec
	cipher   *cipher.Ring
	lifetime int64 // ms
	idle     int64 // ms; 0 = off
	cookie   Cookie
	now      func() time.Time
	zero     []byte // the encoding of a zero T: a session nobody wrote to
	// mapsInside reports a T that may hold maps, whose encoding can vary
	// between runs on equal content.
	mapsInside bool
	ad         []byte // associated data for carried records
	ctxKey     *ctxKey
}

type ctxKey struct{}

// New returns a manager for sessions of type T kept in st. It fails with an
// error wrapping ErrOptions when an option is invalid (a negative duration, a
// cookie a browser would reject, a client-side store without a cipher). A nil
// store is a programming error and panics.
func New[T any](st store.Store, opts Options) (*Manager[T], error) {
	if st == nil {
		panic("session: New called with a nil store")
	}
	m := &Manager[T]{
		store:    st,
		codec:    opts.Codec,
		cipher:   opts.Cipher,
		lifetime: opts.Lifetime.Milliseconds(),
		idle:     opts.IdleTimeout.Milliseconds(),
		cookie:   opts.Cookie,
		now:      opts.Now,
		ctxKey:   new(ctxKey),
	}
	if m.codec == nil {
		m.codec = codec.MsgPack
	}
	if m.now == nil {
		m.now = time.Now
	}
	switch {
	case opts.Lifetime == 0:
		m.lifetime = DefaultLifetime.Milliseconds()
	case opts.Lifetime < time.Millisecond:
		return nil, fmt.Errorf("%w: Lifetime %v is below one millisecond", ErrOptions, opts.Lifetime)
	}
	if opts.IdleTimeout < 0 || opts.IdleTimeout > 0 && opts.IdleTimeout < time.Millisecond {
		return nil, fmt.Errorf("%w: IdleTimeout %v is negative or below one millisecond", ErrOptions, opts.IdleTimeout)
	}
	if err := m.cookie.check(); err != nil {
		return nil, err
	}
	if c, ok := st.(store.Carrier); ok {
		if m.cipher == nil {
			return nil, fmt.Errorf("%w: a store that keeps sessions in the client needs a Cipher", ErrOptions)
		}
		m.carrier = c
		m.ad = []byte("typedsession carried v1\x00" + m.cookie.Name)
	}
	m.replacer, _ = st.(store.Replacer)
	m.mapsInside = mayHoldMap(reflect.TypeFor[T](), map[reflect.Type]bool{})
	zero, err := m.codec.Append(nil, new(T))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrOptions, ErrEncode, err)
	}
	m.zero = zero
	return m, nil
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

// hasPrefixFold is strings.HasPrefix without regard to case, as browsers
// match cookie name prefixes.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (c *Cookie) check() error {
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Name == "" {
		c.Name = FallbackCookieName
		if !c.InsecureNoSecure && c.Path == "/" && c.Domain == "" {
			c.Name = DefaultCookieName
		}
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: cookie: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	probe := http.Cookie{Name: c.Name, Value: "x", Path: c.Path, Domain: c.Domain}
	if err := probe.Valid(); err != nil {
		return bad("%v", err)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return bad("Path %q does not start with /", c.Path)
	}
	secure := !c.InsecureNoSecure
	switch {
	case hasPrefixFold(c.Name, "__Host-") && (!secure || c.Path != "/" || c.Domain != ""):
		return bad("a __Host- cookie needs Secure, Path=/ and no Domain")
	case hasPrefixFold(c.Name, "__Secure-") && !secure:
		return bad("a __Secure- cookie needs Secure")
	case c.SameSite == http.SameSiteNoneMode && !secure:
		return bad("SameSite=None needs Secure")
	case c.SameSite < http.SameSiteDefaultMode || c.SameSite > http.SameSiteNoneMode:
		return bad("unknown SameSite value %d", c.SameSite)
	}
	return nil
}

// CookieName returns the name of the session cookie.
func (m *Manager[T]) CookieName() string { return m.cookie.Name }

// Cookie returns the cookie that carries res to the client: the new token, or
// an expired cookie when res.Clear is set. Adapters call it with the result
// of a commit whose Send or Clear is set.
func (m *Manager[T]) Cookie(res Result) *http.Cookie {
	c := &http.Cookie{
		Name:     m.cookie.Name,
		Value:    res.Token,
		Path:     m.cookie.Path,
		Domain:   m.cookie.Domain,
		Secure:   !m.cookie.InsecureNoSecure,
		HttpOnly: !m.cookie.InsecureScriptAccess,
		SameSite: m.cookie.SameSite,
	}
	switch {
	case res.Clear:
		c.Value = ""
		c.MaxAge = -1
	case !res.Expires.IsZero():
		c.Expires = res.Expires.UTC()
		// In milliseconds, which cannot overflow as a Duration would.
		ms := res.Expires.UnixMilli() - m.now().UnixMilli()
		c.MaxAge = int(max(1, (ms+999)/1000))
	}
	return c
}

// bufPool holds scratch buffers for encoding records on commit.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10
