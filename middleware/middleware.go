// Package middleware mounts a session manager on net/http.
//
// [New] returns a func(http.Handler) http.Handler, the shape the standard
// library, chi and gorilla/mux all accept. For each request it reads the token
// (from the session cookie, or from a header for API clients), attaches a lazy
// session to the request's context and, when the response starts, commits it:
// a request that never touches its session costs no store I/O and sets no
// cookie. The body is never buffered. When the handler returns after the
// response started, the session is committed again, so changes made in
// between are saved where they can be and logged where they cannot.
package middleware

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/typedsession/session"
)

// Manager is what the middleware needs of a session manager; every
// *session.Manager[T] has it.
type Manager interface {
	Attach(ctx context.Context, token string) (context.Context, session.Committer)
	CookieName() string
	Cookie(res session.Result) *http.Cookie
}

// Options configures the middleware. The zero value uses the session cookie
// and the default error handler.
type Options struct {
	// Header, when set, carries the token in this request header instead of
	// a cookie, for API clients: a new or changed token is returned in the
	// response header of the same name, and an ended session returns it
	// empty. No cookie is read or set; the manager's Cookie.Name still names
	// the session for sealing and for the cookie store's size limit.
	Header string

	// ErrorHandler answers a request whose session could not be loaded or
	// saved. It runs before any of the handler's response has been sent, and
	// whatever the handler writes afterwards is discarded. Nil means
	// DefaultErrorHandler with Logger.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the default error handler's reports, and warnings of
	// session changes made after the response started that could not be
	// saved; nil means slog.Default().
	Logger *slog.Logger
}

// ErrAborted is returned by writes that follow a failed commit: the error
// handler has answered the request instead of the handler.
var ErrAborted = errors.New("middleware: response replaced by the error handler")

// DefaultErrorHandler returns the error handler used when Options has none:
// it logs err (which never contains a token) and answers 409 Conflict with
// a generic text when err is [session.ErrConflict] (another request of the
// session changed it at the same time; the client may retry), and 500
// otherwise.
func DefaultErrorHandler(logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	if logger == nil {
		logger = slog.Default()
	}
	return func(w http.ResponseWriter, r *http.Request, err error) {
		code := http.StatusInternalServerError
		level := slog.LevelError
		if errors.Is(err, session.ErrConflict) {
			code, level = http.StatusConflict, slog.LevelWarn
		}
		logger.Log(r.Context(), level, "session failed", "err", err, "method", r.Method, "path", r.URL.Path)
		http.Error(w, http.StatusText(code), code)
	}
}

type middleware struct {
	m      Manager
	name   string // cookie name, or header name
	header bool
	vary   string
	onErr  func(http.ResponseWriter, *http.Request, error)
	logger *slog.Logger
	warned routes // where changes after the response started were lost
}

// New returns middleware that gives each request a session of m.
func New(m Manager, opts Options) func(http.Handler) http.Handler {
	mw := &middleware{m: m, name: m.CookieName(), vary: "Cookie", onErr: opts.ErrorHandler, logger: opts.Logger}
	if mw.logger == nil {
		mw.logger = slog.Default()
	}
	if opts.Header != "" {
		mw.name = http.CanonicalHeaderKey(opts.Header)
		mw.header = true
		mw.vary = mw.name
	}
	if mw.onErr == nil {
		mw.onErr = DefaultErrorHandler(opts.Logger)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mw.serve(next, w, r)
		})
	}
}

func (mw *middleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	var token string
	if mw.header {
		token = r.Header.Get(mw.name)
	} else {
		token = cookieValue(r.Header["Cookie"], mw.name)
	}
	ctx, c := mw.m.Attach(r.Context(), token)
	r = r.WithContext(ctx)
	rw := &writer{ResponseWriter: w, mw: mw, r: r, c: c, ctx: detached{ctx}}
	next.ServeHTTP(rw, r)
	if !rw.committed {
		rw.commit()
		return
	}
	if !rw.failed {
		// The response started before the handler was done with the
		// session: save what it changed since, or say it was lost.
		if _, err := c.Commit(&rw.ctx); err != nil {
			mw.late(r, err)
		}
	}
}

// late reports a change made after the response started that could not be
// saved: ErrLate once per route, since the handler will do it again on
// every request, and anything else (a conflict, a store failure) each time.
func (mw *middleware) late(r *http.Request, err error) {
	level := slog.LevelError
	if errors.Is(err, session.ErrConflict) {
		level = slog.LevelWarn
	}
	if errors.Is(err, session.ErrLate) {
		route := r.Pattern
		if route == "" {
			route = r.Method + " " + r.URL.Path
		}
		if !mw.warned.first(route) {
			return
		}
		level = slog.LevelWarn
	}
	mw.logger.Log(r.Context(), level, "session changed after the response started",
		"err", err, "method", r.Method, "path", r.URL.Path, "pattern", r.Pattern)
}

// routes remembers up to maxRoutes routes, so a warning is logged once per
// route within bounded memory: an application whose routes are not
// patterns (paths with ids in them) is no longer warned about new ones once
// it is full, having been warned maxRoutes times.
type routes struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxRoutes = 1024

// first reports whether route is new, remembering it.
func (rs *routes) first(route string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.seen[route] || len(rs.seen) >= maxRoutes {
		return false
	}
	if rs.seen == nil {
		rs.seen = make(map[string]bool)
	}
	rs.seen[route] = true
	return true
}

// writer commits the session the moment the response starts, while headers
// can still be changed.
type writer struct {
	http.ResponseWriter
	mw        *middleware
	r         *http.Request
	c         session.Committer
	committed bool
	failed    bool
	ctx       detached // the commits' context
}

// detached is the request's context without its cancellation, as
// context.WithoutCancel makes it: a client that hangs up as the handler
// finishes must not cost it the save, and the store's own timeouts bound
// the wait. Kept in the writer, it costs no allocation of its own, and its
// values (an observer's span) are found without one.
type detached struct{ parent context.Context }

func (*detached) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*detached) Done() <-chan struct{}       { return nil }
func (*detached) Err() error                  { return nil }
func (d *detached) Value(key any) any         { return d.parent.Value(key) }

// commit runs once and reports whether the handler's response may proceed.
func (w *writer) commit() bool {
	if w.committed {
		return !w.failed
	}
	w.committed = true
	mw := w.mw
	res, err := w.c.Commit(&w.ctx)
	if err != nil {
		w.failed = true
		dropRepresentation(w.Header())
		mw.onErr(w.ResponseWriter, w.r, err)
		return false
	}
	if !res.Used && !res.Send && !res.Clear {
		return true
	}
	h := w.Header()
	addVary(h, mw.vary)
	if !res.Send && !res.Clear {
		return true
	}
	if mw.header {
		h.Set(mw.name, res.Token) // empty when the session was cleared
	} else {
		http.SetCookie(w.ResponseWriter, mw.m.Cookie(res))
	}
	noStore(h)
	return true
}

// Commit saves the sessions of the request that w answers now, as the
// response's first write would, and puts what they send (Set-Cookie, Vary,
// Cache-Control) on w.Header(). A handler calls it to commit on purpose
// before a long or streamed response, or to hand the session cookie to a
// websocket upgrader, which writes its own response:
//
//	if err := middleware.Commit(w); err != nil {
//		return // the error handler has answered (409 on a conflict)
//	}
//	conn, err := upgrader.Upgrade(w, r, w.Header())
//
// Changes made to the session after Commit are saved when the handler
// returns where the client already holds the session's token, and
// otherwise lost with a warning logged once per route (see
// session.Scope.Commit). Commit finds the
// middleware's writer through the Unwrap methods of writers wrapped around
// it; it returns nil when there is none and, when a commit failed and the
// error handler answered instead, ErrAborted.
func Commit(w http.ResponseWriter) error {
	for w != nil {
		if sw, ok := w.(*writer); ok && !sw.commit() {
			return ErrAborted
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

func (w *writer) WriteHeader(code int) {
	// Informational answers (103 Early Hints) precede the real one.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.commit() {
		return 0, ErrAborted
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps io.Copy's fast paths (sendfile) working through the wrapper.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, ErrAborted
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// Flush implements http.Flusher.
func (w *writer) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *writer) FlushError() error {
	if !w.commit() {
		return ErrAborted
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack commits first: after a hijack no header can be sent, but the
// session is still saved. A commit that fails (a conflict, a store that is
// down) is answered by the error handler and Hijack returns ErrAborted. A
// websocket upgrader that writes its own response needs the session's
// cookie handed to it: see [Commit].
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.commit() {
		return nil, nil, ErrAborted
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer for the
// methods the wrapper does not intercept (deadlines, full duplex).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type writerOnly struct{ io.Writer }

// dropRepresentation removes what the handler said about the answer it will
// not give, so the error handler's answer is not sent gzip-labelled,
// cacheable or with the handler's cookies. Headers of outer middleware that
// do not describe the body (security policies) are kept.
func dropRepresentation(h http.Header) {
	for _, k := range []string{
		"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Type", "Etag",
		"Expires", "Last-Modified", "Location", "Set-Cookie",
	} {
		delete(h, k)
	}
	h.Set("Cache-Control", "no-store")
}

// addVary adds v to the Vary header unless it is there already.
func addVary(h http.Header, v string) {
	for _, line := range h["Vary"] {
		for f := range strings.SplitSeq(line, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, v) {
				return
			}
		}
	}
	h.Add("Vary", v)
}

// noStore keeps shared caches from storing a response that hands out a token.
//
// Every Cache-Control directive the handler set is kept, each line as it was
// written. Unless one of them already keeps shared caches from storing the
// response (no-store, or private without a field list), no-store is added on
// a line of its own. It is no-store rather than no-cache="Set-Cookie":
// RFC 9111 notes that caches often treat a qualified no-cache as the
// unqualified one, which lets them store the response, Set-Cookie and all,
// and serve it after revalidation to the next client that sends the same
// cookies (none, for a new visitor); and in header mode the token is not in
// Set-Cookie at all. Responses that hand out a token are few (a new session,
// a login, a logout), so little caching is lost.
func noStore(h http.Header) {
	lines := h["Cache-Control"]
	seen := false
	for _, line := range lines {
		for line != "" {
			var d string
			d, line = cutDirective(line)
			name, _, qualified := strings.Cut(d, "=")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			seen = true
			// Neither takes an argument; private with one ("private=X")
			// covers only the fields it names.
			if !qualified && (strings.EqualFold(name, "no-store") || strings.EqualFold(name, "private")) {
				return
			}
		}
	}
	if !seen {
		// Blank lines say nothing: replace them rather than send them.
		h.Set("Cache-Control", "no-store")
		return
	}
	h.Add("Cache-Control", "no-store")
}

// cutDirective returns the first directive of a Cache-Control line and the
// rest after its comma. A comma inside a quoted string (a field list such as
// no-cache="Set-Cookie, Authorization") does not end the directive; an
// unterminated quote runs to the end of the line.
func cutDirective(s string) (directive, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // a quoted-pair: the next byte is literal
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// cookieValue returns the value of the first cookie called name in the
// Cookie header lines, without allocating. A value that is quoted has its
// quotes removed; anything else is returned as sent, for the manager to judge.
func cookieValue(lines []string, name string) string {
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}
