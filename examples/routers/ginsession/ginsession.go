// Package ginsession mounts typedsession's net/http middleware on gin
// (github.com/gin-gonic/gin):
//
//	r := gin.New()
//	r.Use(ginsession.New(middleware.New(mgr, middleware.Options{})))
//	r.GET("/", func(c *gin.Context) {
//		s := mgr.Get(c.Request) // c.Request carries the session
//		...
//	})
//
// # Why gin needs this
//
// The session middleware sends Set-Cookie by committing the session when the
// response starts: it wraps the http.ResponseWriter it is given and commits at
// the first WriteHeader, Write or Flush that reaches its wrapper. Gin's
// handlers do not write to that wrapper. They write to c.Writer, gin's own
// ResponseWriter, which wraps the writer gin got from the server; and gin
// starts the response in its WriteHeaderNow (called by c.AbortWithStatus,
// by c.Render for bodiless statuses, and by its Write, WriteString and Flush),
// which calls WriteHeader on the writer gin wraps, not on c.Writer. So a
// middleware that wraps the session middleware around the rest of gin's
// chain (c.Next()) without replacing c.Writer compiles, and sends no cookie
// with any answer a handler starts (c.JSON, c.AbortWithStatus, ...): the
// session is saved in the store when the chain returns, and the cookie put on
// a header map that is no longer read. The visitor never learns the token;
// a login's new token is lost, and the old one was retired.
//
// New replaces c.Writer, for the rest of the chain, with a gin.ResponseWriter
// through which every write, WriteHeaderNow included, passes the session's
// writer first; and c.Request with the request that carries the session.
// Both are put back when the chain returns.
package ginsession

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// New returns gin middleware that runs mw, net/http middleware such as
// middleware.New(mgr, opts), around the rest of gin's chain. Handlers after
// it read the session from c.Request and may answer in any of gin's ways
// (c.JSON, c.String, c.AbortWithStatus, c.Status, c.Writer, c.Stream): the
// session is committed, and its cookie sent, when the response starts, or
// when the chain returns without having started it.
//
// Mount it before the handlers that use the session, and after a recovering
// middleware such as gin.Recovery, so the changes of a handler that panicked
// are not saved.
func New(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		gw, req := c.Writer, c.Request
		defer func() { c.Writer, c.Request = gw, req }()
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Request = r
			c.Writer = &writer{ResponseWriter: gw, session: w}
			c.Next()
		})).ServeHTTP(gw, req)
	}
}

// writer is gin's writer, gw, with every method that starts the response
// passed through session, the writer that mw wraps around gw. Status, Size,
// Written, WriteHeader (which only records the status until the response
// starts, as gin does) and CloseNotify are gin's own.
type writer struct {
	gin.ResponseWriter                     // gin's writer, as the chain found it
	session            http.ResponseWriter // mw's writer, around gin's
}

// WriteHeaderNow starts the response with the status recorded so far,
// through the session's writer.
func (w *writer) WriteHeaderNow() {
	if !w.Written() {
		w.session.WriteHeader(w.Status())
		// The session's writer passed the status to gin's writer, which
		// only records it; or its error handler answered instead, which
		// started the response.
		w.ResponseWriter.WriteHeaderNow()
	}
}

// Write sends p through the session's writer.
func (w *writer) Write(p []byte) (int, error) { return w.session.Write(p) }

// WriteString sends s through the session's writer.
func (w *writer) WriteString(s string) (int, error) { return io.WriteString(w.session, s) }

// Flush flushes through the session's writer.
func (w *writer) Flush() { _ = http.NewResponseController(w.session).Flush() }

// Hijack takes the connection over through the session's writer, which
// commits first.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.session).Hijack()
}

// Unwrap returns the session's writer, so http.ResponseController and
// middleware.Commit(c.Writer) find it.
func (w *writer) Unwrap() http.ResponseWriter { return w.session }
