package session

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultCookieName is the cookie's name when Cookie.Name is empty and the
// cookie qualifies for the __Host- prefix (Secure, Path=/, no Domain), which
// keeps sibling subdomains from planting a session cookie of their own.
// Otherwise the default name is FallbackCookieName.
const DefaultCookieName = "__Host-session"

// FallbackCookieName is the default name of a cookie that cannot carry the
// __Host- prefix.
const FallbackCookieName = "session"

// maxCookieAge is the longest lifetime a browser gives a cookie: RFC 6265bis
// caps Max-Age and Expires at 400 days, and so do current browsers.
const maxCookieAge = 400 * 24 * time.Hour

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
	// cookies persist until the session's absolute deadline (at most 400
	// days, what browsers allow).
	BrowserSession bool

	// InsecureNoSecure omits the Secure attribute, so the cookie is also sent
	// over plain HTTP. Only for local development.
	InsecureNoSecure bool

	// InsecureScriptAccess omits the HttpOnly attribute, so scripts in the
	// page can read the token.
	InsecureScriptAccess bool
}

// hasPrefixFold is strings.HasPrefix without regard to case, as browsers
// match cookie name prefixes.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// check fills in the defaults and refuses what a browser would reject.
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
// of a commit whose Send or Clear is set. Max-Age and Expires are capped at
// 400 days, as browsers cap them.
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
	case res.Clear && res.Token == "":
		c.MaxAge = -1
	case !res.Expires.IsZero():
		now := m.now()
		exp := res.Expires
		if limit := now.Add(maxCookieAge); exp.After(limit) {
			exp = limit
		}
		c.Expires = exp.UTC()
		// In milliseconds, which cannot overflow as a Duration would.
		ms := exp.UnixMilli() - now.UnixMilli()
		c.MaxAge = int(max(1, (ms+999)/1000))
	}
	return c
}
