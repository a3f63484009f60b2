// Package app is the small application that every router in this module
// mounts: a login, a counter that loses no concurrent increment, a page that
// says who you are, and a page for logged-in users only. Its session is a
// typed struct kept in memory.
//
// The session logic lives in the methods of [App], which take the
// *http.Request that every router hands its handlers. The net/http handlers
// ([App.Login], [App.Count], ...) serve the standard library's ServeMux, chi
// and gorilla/mux as they are; echo and gin call the same logic from handlers
// of their own kind.
package app

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// Sess is the session's payload.
type Sess struct {
	User    string
	Counter int64
	// ReturnTo is the page a visitor asked for before logging in.
	ReturnTo string
}

// App holds the session manager that the handlers share.
type App struct {
	// Mgr is the session manager; mount its middleware in front of the
	// handlers (middleware.New(a.Mgr, middleware.Options{})).
	Mgr   *session.Manager[Sess]
	store *memstore.Store
}

// New returns an App whose sessions live in memory. Close it when done.
func New() (*App, error) {
	st := memstore.New(memstore.Options{})
	mgr, err := session.New[Sess](st, session.Options{})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &App{Mgr: mgr, store: st}, nil
}

// Close stops the memory store's sweeper.
func (a *App) Close() { a.store.Close() }

// Whoami is what GET /whoami answers.
type Whoami struct {
	User    string `json:"user"`
	Counter int64  `json:"counter"`
}

// Counted is what POST /count answers.
type Counted struct {
	Counter int64 `json:"counter"`
}

// LoggedIn is what POST /login answers: the user, and the page they asked
// for before logging in, if any.
type LoggedIn struct {
	User     string `json:"user"`
	ReturnTo string `json:"return_to,omitempty"`
}

// Problem is the body of an error answer.
type Problem struct {
	Error string `json:"error"`
}

// ErrNoUser is returned by DoLogin when the user name is empty.
var ErrNoUser = errors.New("form field user is required")

// DoLogin logs user in: the session gets a new token (a token planted before
// the login is worthless after it), and the page the visitor asked for before
// is handed back once.
func (a *App) DoLogin(r *http.Request, user string) (LoggedIn, error) {
	if user == "" {
		return LoggedIn{}, ErrNoUser
	}
	if err := a.Mgr.Regenerate(r); err != nil {
		return LoggedIn{}, err
	}
	s := a.Mgr.Get(r)
	s.User = user
	out := LoggedIn{User: user, ReturnTo: s.ReturnTo}
	s.ReturnTo = ""
	return out, nil
}

// DoCount increments the session's counter with Update, so concurrent
// requests of one session all count.
func (a *App) DoCount(r *http.Request) (Counted, error) {
	err := a.Mgr.Update(r, func(s *Sess) error {
		s.Counter++
		return nil
	})
	if err != nil {
		return Counted{}, err
	}
	return Counted{Counter: a.Mgr.Get(r).Counter}, nil
}

// DoWhoami reads the session and changes nothing.
func (a *App) DoWhoami(r *http.Request) Whoami {
	s := a.Mgr.Get(r)
	return Whoami{User: s.User, Counter: s.Counter}
}

// DoLogout ends the session; its cookie is expired.
func (a *App) DoLogout(r *http.Request) {
	_ = a.Mgr.Destroy(r) // never a conflict; a store failure is answered by the middleware
}

// Allowed reports whether the request's session is logged in. When it is
// not, it remembers the page asked for, for DoLogin to hand back: the answer
// that refuses the request must carry the session's cookie.
func (a *App) Allowed(r *http.Request) bool {
	s := a.Mgr.Get(r)
	if s.User != "" {
		return true
	}
	s.ReturnTo = r.URL.Path
	return false
}

// Login serves POST /login, form field user.
func (a *App) Login(w http.ResponseWriter, r *http.Request) {
	out, err := a.DoLogin(r, r.FormValue("user"))
	switch {
	case errors.Is(err, ErrNoUser):
		Reply(w, http.StatusBadRequest, Problem{Error: err.Error()})
	case err != nil:
		Reply(w, Status(err), Problem{Error: "the session could not be saved"})
	default:
		Reply(w, http.StatusOK, out)
	}
}

// Count serves POST /count.
func (a *App) Count(w http.ResponseWriter, r *http.Request) {
	out, err := a.DoCount(r)
	if err != nil {
		Reply(w, Status(err), Problem{Error: "the session could not be saved"})
		return
	}
	Reply(w, http.StatusOK, out)
}

// Whoami serves GET /whoami.
func (a *App) Whoami(w http.ResponseWriter, r *http.Request) {
	Reply(w, http.StatusOK, a.DoWhoami(r))
}

// Logout serves POST /logout with 204 No Content.
func (a *App) Logout(w http.ResponseWriter, r *http.Request) {
	a.DoLogout(r)
	w.WriteHeader(http.StatusNoContent)
}

// Private serves GET /private, behind RequireUser.
func (a *App) Private(w http.ResponseWriter, r *http.Request) {
	Reply(w, http.StatusOK, a.DoWhoami(r))
}

// RequireUser lets logged-in sessions through to next and refuses the others
// with 401 and no body, remembering the page they asked for.
func (a *App) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Allowed(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Status is the HTTP status for an error of the session: 409 for a conflict
// (the client may retry), 500 otherwise. When the session could not be
// loaded, the middleware's error handler answers in the handler's place.
func Status(err error) int {
	if errors.Is(err, session.ErrConflict) {
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// Reply answers with v as JSON.
func Reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
