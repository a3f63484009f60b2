package ginsession_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/ginsession"
	"github.com/typedsession/session/examples/routers/internal/apptest"
	"github.com/typedsession/session/middleware"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no route listing on stdout
	os.Exit(m.Run())
}

// styles are the ways a gin handler answers. Each is served at /style/NAME
// by a handler that first changes the session, so the answer must carry a new
// session's cookie.
var styles = []struct {
	name   string
	code   int
	answer func(*gin.Context)
}{
	{"JSON", http.StatusOK, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) }},
	{"String", http.StatusOK, func(c *gin.Context) { c.String(http.StatusOK, "ok") }},
	{"Data", http.StatusOK, func(c *gin.Context) { c.Data(http.StatusOK, "text/plain", []byte("ok")) }},
	{"AbortWithStatus", http.StatusUnauthorized, func(c *gin.Context) { c.AbortWithStatus(http.StatusUnauthorized) }},
	{"AbortWithStatusJSON", http.StatusForbidden, func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "no"})
	}},
	{"JSON204", http.StatusNoContent, func(c *gin.Context) { c.JSON(http.StatusNoContent, nil) }},
	{"Redirect", http.StatusSeeOther, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/whoami") }},
	{"Status", http.StatusNoContent, func(c *gin.Context) { c.Status(http.StatusNoContent) }},
	{"nothing", http.StatusOK, func(c *gin.Context) {}},
	{"Writer.WriteHeaderNow", http.StatusOK, func(c *gin.Context) { c.Writer.WriteHeaderNow() }},
	{"Writer.WriteHeader+Now", http.StatusAccepted, func(c *gin.Context) {
		c.Writer.WriteHeader(http.StatusAccepted)
		c.Writer.WriteHeaderNow()
	}},
	{"Writer.Write", http.StatusOK, func(c *gin.Context) { _, _ = c.Writer.Write([]byte("ok")) }},
	{"Writer.WriteString", http.StatusOK, func(c *gin.Context) { _, _ = c.Writer.WriteString("ok") }},
	{"Writer.Flush", http.StatusOK, func(c *gin.Context) { c.Writer.Flush() }},
	{"Stream", http.StatusOK, func(c *gin.Context) {
		c.Stream(func(w io.Writer) bool {
			_, _ = w.Write([]byte("ok"))
			return false
		})
	}},
	{"WrapH", http.StatusOK, gin.WrapH(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))},
}

// quiet is the session middleware's configuration for answers the tests
// provoke: its error handler does not log them.
var quiet = middleware.Options{Logger: slog.New(slog.DiscardHandler)}

// adapter mounts net/http middleware on gin.
type adapter func(mw func(http.Handler) http.Handler) gin.HandlerFunc

// engine serves the styles with the session middleware mounted by mount,
// and /whoami and /login. The status gin's writer ends each style's request
// with, which a logging middleware would report, is sent to status if not nil.
func engine(a *app.App, mount adapter, status chan<- int) *gin.Engine {
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Next()
		if status != nil && strings.HasPrefix(c.FullPath(), "/style/") {
			status <- c.Writer.Status()
		}
	})
	r.Use(mount(middleware.New(a.Mgr, quiet)))
	r.GET("/whoami", func(c *gin.Context) { c.JSON(http.StatusOK, a.DoWhoami(c.Request)) })
	r.POST("/login", func(c *gin.Context) {
		out, err := a.DoLogin(c.Request, c.PostForm("user"))
		if err != nil {
			c.AbortWithStatus(app.Status(err))
			return
		}
		c.JSON(http.StatusOK, out)
	})
	for _, s := range styles {
		r.GET("/style/"+s.name, func(c *gin.Context) {
			a.Mgr.Get(c.Request).Counter++
			s.answer(c)
		})
	}
	return r
}

// TestStyles answers in every style through ginsession: the cookie is sent,
// the session comes back, and a session that cannot be saved is answered
// with 409 by the session's error handler, which gin's writer records.
func TestStyles(t *testing.T) {
	status := make(chan int, 1)
	s := apptest.Start(t, func(a *app.App) http.Handler { return engine(a, ginsession.New, status) })
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			r := s.Do(http.MethodGet, "/style/"+st.name, nil, nil)
			apptest.Want(t, "answer", r, st.code, true)
			if got := <-status; got != st.code {
				t.Errorf("gin's writer says %d, want %d", got, st.code)
			}
			if r.Cookie == nil {
				return
			}
			if got := apptest.Decode[app.Whoami](t, s.Do(http.MethodGet, "/whoami", nil, r.Cookie)).Counter; got != 1 {
				t.Errorf("the next request's counter is %d, want 1", got)
			}
			// A login retires the token; a change made with it is refused.
			in := s.Do(http.MethodPost, "/login", url.Values{"user": {"ada"}}, r.Cookie)
			apptest.Want(t, "login", in, http.StatusOK, true)
			old := s.Do(http.MethodGet, "/style/"+st.name, nil, r.Cookie)
			apptest.Want(t, "answer with the retired token", old, http.StatusConflict, false)
			if body := strings.TrimSpace(old.Body); body != http.StatusText(http.StatusConflict) {
				t.Errorf("answer with the retired token: body %q, want the session error handler's", body)
			}
			if got := <-status; got != http.StatusConflict {
				t.Errorf("gin's writer says %d, want %d", got, http.StatusConflict)
			}
		})
	}
}

// naive runs the session middleware around the rest of gin's chain and
// leaves c.Writer alone: the handlers write around the session's writer.
func naive(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
	}
}

// partial replaces c.Writer with a gin.ResponseWriter that passes the
// net/http methods through the session's writer, and lets gin's
// WriteHeaderNow, WriteString and Flush reach gin's writer directly.
func partial(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		gw := c.Writer
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Request = r
			c.Writer = &partialWriter{gw, w}
			c.Next()
		})).ServeHTTP(gw, c.Request)
	}
}

type partialWriter struct {
	gin.ResponseWriter
	session http.ResponseWriter
}

func (w *partialWriter) WriteHeader(code int)        { w.session.WriteHeader(code) }
func (w *partialWriter) Write(p []byte) (int, error) { return w.session.Write(p) }
func (w *partialWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.session).Hijack()
}

// TestNaiveAdapters shows what ginsession is for: simpler adapters compile,
// answer with the right status, and send no cookie.
func TestNaiveAdapters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mount adapter
		// sent are the styles whose cookie is sent anyway: with naive, those
		// that leave the response to gin after the chain has returned.
		sent map[string]bool
	}{
		{"ginsession", ginsession.New, nil},
		{"naive", naive, map[string]bool{
			"JSON": false, "String": false, "Data": false, "AbortWithStatus": false,
			"AbortWithStatusJSON": false, "JSON204": false, "Redirect": false,
			"Status": true, "nothing": true, "Writer.WriteHeaderNow": false,
			"Writer.WriteHeader+Now": false, "Writer.Write": false,
			"Writer.WriteString": false, "Writer.Flush": false, "Stream": false, "WrapH": false,
		}},
		{"partial", partial, map[string]bool{
			"JSON": true, "String": true, "Data": true, "AbortWithStatus": true,
			"AbortWithStatusJSON": true, "JSON204": true, "Redirect": true,
			"Status": true, "nothing": true, "Writer.WriteHeaderNow": false,
			"Writer.WriteHeader+Now": true, "Writer.Write": true,
			"Writer.WriteString": false, "Writer.Flush": false, "Stream": true, "WrapH": true,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := apptest.Start(t, func(a *app.App) http.Handler { return engine(a, tc.mount, nil) })
			for _, st := range styles {
				want := true
				if tc.sent != nil {
					sent, ok := tc.sent[st.name]
					if !ok {
						t.Fatalf("style %s: no expectation", st.name)
					}
					want = sent
				}
				r := s.Do(http.MethodGet, "/style/"+st.name, nil, nil)
				if r.Status != st.code || r.Issued() != want {
					t.Errorf("%s: status %d, cookie sent %v; want %d, %v", st.name, r.Status, r.Issued(), st.code, want)
				}
			}
		})
	}
}

// TestNaiveLogin shows the worst of the naive adapter: a login answers 200,
// retires the visitor's token and never hands out the new one, so the
// visitor is logged out by logging in.
func TestNaiveLogin(t *testing.T) {
	s := apptest.Start(t, func(a *app.App) http.Handler { return engine(a, naive, nil) })
	first := s.Do(http.MethodGet, "/style/Status", nil, nil) // one of the answers gin starts itself
	apptest.Want(t, "GET /style/Status", first, http.StatusNoContent, true)
	if first.Cookie == nil {
		return
	}
	in := s.Do(http.MethodPost, "/login", url.Values{"user": {"ada"}}, first.Cookie)
	apptest.Want(t, "POST /login", in, http.StatusOK, false)
	got := apptest.Decode[app.Whoami](t, s.Do(http.MethodGet, "/whoami", nil, first.Cookie))
	if got != (app.Whoami{}) {
		t.Errorf("GET /whoami with the only token the visitor has = %+v, want an empty session", got)
	}
}

// TestWrapH mounts a net/http handler wrapped in the session middleware on
// a gin route with gin.WrapH: the handler writes to the session's writer,
// so no adapter is needed for it.
func TestWrapH(t *testing.T) {
	s := apptest.Start(t, func(a *app.App) http.Handler {
		r := gin.New()
		r.GET("/count", gin.WrapH(middleware.New(a.Mgr, quiet)(http.HandlerFunc(a.Count))))
		return r
	})
	apptest.Want(t, "GET /count", s.Do(http.MethodGet, "/count", nil, nil), http.StatusOK, true)
}

// TestWholeEngine mounts the net/http middleware around the gin engine
// instead: gin's writer then wraps the session's writer, and every style
// but Stream sends the cookie. gin v1.12.0's CloseNotify asserts that the
// writer it wraps is an http.CloseNotifier, which the session's writer is
// not, so c.Stream panics.
func TestWholeEngine(t *testing.T) {
	none := func(func(http.Handler) http.Handler) gin.HandlerFunc { return func(*gin.Context) {} }
	s := apptest.Start(t, func(a *app.App) http.Handler {
		return middleware.New(a.Mgr, quiet)(engine(a, none, nil))
	})
	for _, st := range styles {
		if st.name == "Stream" {
			continue
		}
		r := s.Do(http.MethodGet, "/style/"+st.name, nil, nil)
		apptest.Want(t, st.name, r, st.code, true)
	}
}

// TestCommit commits on purpose from a gin handler: middleware.Commit finds
// the session's writer behind c.Writer and puts the cookie on its header
// before anything is written, as a websocket upgrader needs.
func TestCommit(t *testing.T) {
	s := apptest.Start(t, func(a *app.App) http.Handler {
		r := gin.New()
		r.Use(ginsession.New(middleware.New(a.Mgr, middleware.Options{})))
		r.GET("/commit", func(c *gin.Context) {
			a.Mgr.Get(c.Request).Counter++
			if err := middleware.Commit(c.Writer); err != nil {
				return
			}
			if c.Writer.Written() || len(c.Writer.Header().Values("Set-Cookie")) != 1 {
				c.AbortWithStatus(http.StatusInternalServerError)
				return
			}
			c.String(http.StatusOK, "committed")
		})
		return r
	})
	r := s.Do(http.MethodGet, "/commit", nil, nil)
	apptest.Want(t, "GET /commit", r, http.StatusOK, true)
}
