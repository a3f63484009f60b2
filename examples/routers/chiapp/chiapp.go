// Package chiapp mounts the app on chi (github.com/go-chi/chi/v5).
//
// chi takes net/http middleware as it is: Use mounts the session middleware
// for every route, With mounts the guard on one.
package chiapp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/middleware"
)

// New returns the app's routes on a chi router.
func New(a *app.App) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.New(a.Mgr, middleware.Options{}))
	r.Post("/login", a.Login)
	r.Post("/logout", a.Logout)
	r.Post("/count", a.Count)
	r.Get("/whoami", a.Whoami)
	r.With(a.RequireUser).Get("/private", a.Private)
	return r
}
