// Package echoapp mounts the app on echo (github.com/labstack/echo/v4).
//
// echo.WrapMiddleware is all the glue echo needs: it runs the session
// middleware around the rest of the chain and hands the handlers a response
// (c.Response()) and a request (c.Request()) built on the session's writer
// and request, so every way echo answers (c.JSON, c.NoContent, c.Stream, an
// error handled by the HTTPErrorHandler) passes through the session's writer.
// An error a handler returns is answered after the session middleware has
// returned, which committed the session then: the error's answer carries the
// cookie, and the changes the handler made before failing are saved.
package echoapp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/middleware"
)

// New returns the app's routes on an echo instance.
func New(a *app.App) *echo.Echo {
	e := echo.New()
	e.Use(echo.WrapMiddleware(middleware.New(a.Mgr, middleware.Options{})))
	e.POST("/login", func(c echo.Context) error {
		out, err := a.DoLogin(c.Request(), c.FormValue("user"))
		if errors.Is(err, app.ErrNoUser) {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		if err != nil {
			return echo.NewHTTPError(app.Status(err)).SetInternal(err)
		}
		return c.JSON(http.StatusOK, out)
	})
	e.POST("/logout", func(c echo.Context) error {
		a.DoLogout(c.Request())
		return c.NoContent(http.StatusNoContent)
	})
	e.POST("/count", func(c echo.Context) error {
		out, err := a.DoCount(c.Request())
		if err != nil {
			return echo.NewHTTPError(app.Status(err)).SetInternal(err)
		}
		return c.JSON(http.StatusOK, out)
	})
	e.GET("/whoami", func(c echo.Context) error {
		return c.JSON(http.StatusOK, a.DoWhoami(c.Request()))
	})
	e.GET("/private", func(c echo.Context) error {
		return c.JSON(http.StatusOK, a.DoWhoami(c.Request()))
	}, RequireUser(a))
	return e
}

// RequireUser is echo middleware that lets logged-in sessions through and
// refuses the others by returning echo.ErrUnauthorized, which echo's
// HTTPErrorHandler answers; the page asked for is remembered in the session.
func RequireUser(a *app.App) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !a.Allowed(c.Request()) {
				return echo.ErrUnauthorized
			}
			return next(c)
		}
	}
}
