// Package stdapp mounts the app on the standard library's http.ServeMux.
//
// ServeMux has no middleware chain of its own: the session middleware wraps
// the whole mux, and the guard wraps the one route it protects.
package stdapp

import (
	"net/http"

	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/middleware"
)

// New returns the app's routes on a ServeMux, inside the session middleware.
func New(a *app.App) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.Login)
	mux.HandleFunc("POST /logout", a.Logout)
	mux.HandleFunc("POST /count", a.Count)
	mux.HandleFunc("GET /whoami", a.Whoami)
	mux.Handle("GET /private", a.RequireUser(http.HandlerFunc(a.Private)))
	return middleware.New(a.Mgr, middleware.Options{})(mux)
}
