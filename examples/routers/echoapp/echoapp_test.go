package echoapp_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/echoapp"
	"github.com/typedsession/session/examples/routers/internal/apptest"
	"github.com/typedsession/session/middleware"
)

func TestApp(t *testing.T) {
	apptest.Run(t, func(a *app.App) http.Handler { return echoapp.New(a) })
}

// styles are the ways an echo handler answers. Each is served at /style/NAME
// by a handler that first changes the session, so the answer must carry a new
// session's cookie.
var styles = []struct {
	name   string
	code   int
	answer echo.HandlerFunc
}{
	{"JSON", http.StatusOK, func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]bool{"ok": true}) }},
	{"String", http.StatusOK, func(c echo.Context) error { return c.String(http.StatusOK, "ok") }},
	{"NoContent", http.StatusNoContent, func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }},
	{"Redirect", http.StatusSeeOther, func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/whoami") }},
	{"HTTPError", http.StatusForbidden, func(c echo.Context) error { return echo.NewHTTPError(http.StatusForbidden, "no") }},
	{"error", http.StatusInternalServerError, func(c echo.Context) error { return errors.New("failed") }},
	{"nothing", http.StatusOK, func(c echo.Context) error { return nil }},
	{"Response.WriteHeader", http.StatusAccepted, func(c echo.Context) error {
		c.Response().WriteHeader(http.StatusAccepted)
		return nil
	}},
	{"Response.Write", http.StatusOK, func(c echo.Context) error {
		_, err := c.Response().Write([]byte("ok"))
		return err
	}},
	{"Response.Flush", http.StatusOK, func(c echo.Context) error {
		c.Response().Flush()
		return nil
	}},
	{"Stream", http.StatusOK, func(c echo.Context) error {
		return c.Stream(http.StatusOK, "text/plain", strings.NewReader("ok"))
	}},
	{"WrapHandler", http.StatusOK, echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))},
}

// TestStyles answers in every style through echo.WrapMiddleware: the cookie
// is sent, errors handled by echo's HTTPErrorHandler included, the session
// comes back, and a session that cannot be saved is answered with 409 by the
// session's error handler, not by the handler or by echo's error handler.
func TestStyles(t *testing.T) {
	s := apptest.Start(t, func(a *app.App) http.Handler {
		e := echo.New()
		e.Logger.SetOutput(io.Discard) // echo's error handler reports the writes refused after a 409
		e.Use(echo.WrapMiddleware(middleware.New(a.Mgr, middleware.Options{Logger: slog.New(slog.DiscardHandler)})))
		e.GET("/whoami", func(c echo.Context) error { return c.JSON(http.StatusOK, a.DoWhoami(c.Request())) })
		e.POST("/login", func(c echo.Context) error {
			out, err := a.DoLogin(c.Request(), c.FormValue("user"))
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, out)
		})
		for _, st := range styles {
			e.GET("/style/"+st.name, func(c echo.Context) error {
				a.Mgr.Get(c.Request()).Counter++
				return st.answer(c)
			})
		}
		return e
	})
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			r := s.Do(http.MethodGet, "/style/"+st.name, nil, nil)
			apptest.Want(t, "answer", r, st.code, true)
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
		})
	}
}
