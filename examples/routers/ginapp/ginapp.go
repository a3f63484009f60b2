// Package ginapp mounts the app on gin (github.com/gin-gonic/gin), through
// the adapter in package ginsession: gin's handlers write to gin's own
// writer, which the session middleware cannot see without it.
package ginapp

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/ginsession"
	"github.com/typedsession/session/middleware"
)

// New returns the app's routes on a gin engine.
func New(a *app.App) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery()) // outside the session: a handler that panicked saves nothing
	r.Use(ginsession.New(middleware.New(a.Mgr, middleware.Options{})))
	r.POST("/login", func(c *gin.Context) {
		out, err := a.DoLogin(c.Request, c.PostForm("user"))
		switch {
		case errors.Is(err, app.ErrNoUser):
			c.AbortWithStatusJSON(http.StatusBadRequest, app.Problem{Error: err.Error()})
		case err != nil:
			c.AbortWithStatusJSON(app.Status(err), app.Problem{Error: "the session could not be saved"})
		default:
			c.JSON(http.StatusOK, out)
		}
	})
	r.POST("/logout", func(c *gin.Context) {
		a.DoLogout(c.Request)
		c.Status(http.StatusNoContent)
	})
	r.POST("/count", func(c *gin.Context) {
		out, err := a.DoCount(c.Request)
		if err != nil {
			c.AbortWithStatusJSON(app.Status(err), app.Problem{Error: "the session could not be saved"})
			return
		}
		c.JSON(http.StatusOK, out)
	})
	r.GET("/whoami", func(c *gin.Context) {
		c.JSON(http.StatusOK, a.DoWhoami(c.Request))
	})
	r.GET("/private", RequireUser(a), func(c *gin.Context) {
		c.JSON(http.StatusOK, a.DoWhoami(c.Request))
	})
	return r
}

// RequireUser is gin middleware that lets logged-in sessions through and
// refuses the others with c.AbortWithStatus(401), remembering the page asked
// for in the session.
func RequireUser(a *app.App) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !a.Allowed(c.Request) {
			c.AbortWithStatus(http.StatusUnauthorized)
		}
	}
}
