// Package gorillaapp mounts the app on gorilla/mux (github.com/gorilla/mux).
//
// gorilla/mux takes net/http middleware as it is. Its Use runs middleware
// only for requests that match a route: the router's own 404 and 405 answers
// never reach the session middleware, which is harmless, since no handler
// touched a session.
package gorillaapp

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/middleware"
)

// New returns the app's routes on a gorilla/mux router.
func New(a *app.App) http.Handler {
	r := mux.NewRouter()
	r.Use(middleware.New(a.Mgr, middleware.Options{}))
	r.HandleFunc("/login", a.Login).Methods(http.MethodPost)
	r.HandleFunc("/logout", a.Logout).Methods(http.MethodPost)
	r.HandleFunc("/count", a.Count).Methods(http.MethodPost)
	r.HandleFunc("/whoami", a.Whoami).Methods(http.MethodGet)
	r.Handle("/private", a.RequireUser(http.HandlerFunc(a.Private))).Methods(http.MethodGet)
	return r
}
