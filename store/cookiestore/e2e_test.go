package cookiestore_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/cookiestore"
)

// TestEndToEndTLS runs the demo's flow against a real TLS server with a
// client that keeps cookies as a browser does: Secure cookies over https, a
// jar that drops a cookie whose Max-Age is zero.
func TestEndToEndTLS(t *testing.T) {
	type user struct {
		Name    string
		Counter int
	}
	mgr, err := session.New[user](cookiestore.New(cookiestore.Options{}), session.Options{Cipher: ring(t, keyA, keyB)})
	if err != nil {
		t.Fatal(err)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Counter++
		reply(w, s)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		reply(w, mgr.Get(r))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := mgr.Regenerate(r); err != nil {
			return
		}
		s := mgr.Get(r)
		s.Name = r.FormValue("user")
		reply(w, s)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		_ = mgr.Destroy(r)
		reply(w, mgr.Get(r))
	})
	srv := sessiontest.NewServer(t, mgr, mux, middleware.Options{})
	client := srv.Client()
	jarValue := func() string { return srv.Token(client) }
	call := func(method, path string, form url.Values) (user, *http.Response) {
		t.Helper()
		res := srv.Do(t, client, method, path, form)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d", method, path, res.StatusCode)
		}
		var u user
		if err := json.NewDecoder(res.Body).Decode(&u); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return u, res
	}

	// A visitor who only reads gets no cookie.
	u, res := call("GET", "/whoami", nil)
	if u != (user{}) || len(res.Header.Values("Set-Cookie")) != 0 || jarValue() != "" {
		t.Fatalf("reading visitor: %+v, Set-Cookie %q, jar %q", u, res.Header.Values("Set-Cookie"), jarValue())
	}

	// The counter counts across requests, carried by the cookie alone.
	for i := 1; i <= 3; i++ {
		if u, _ := call("GET", "/", nil); u.Counter != i {
			t.Fatalf("request %d: counter %d", i, u.Counter)
		}
	}
	before := jarValue()
	if before == "" {
		t.Fatal("no session cookie in the jar after writes")
	}

	// Login regenerates: a new cookie, the data kept.
	if u, _ := call("POST", "/login", url.Values{"user": {"alice"}}); u != (user{"alice", 3}) {
		t.Fatalf("login: %+v", u)
	}
	after := jarValue()
	if after == "" || after == before {
		t.Fatal("login did not change the session cookie")
	}
	if u, _ := call("GET", "/whoami", nil); u != (user{"alice", 3}) {
		t.Fatalf("whoami after login: %+v", u)
	}

	// Logout clears the cookie from the jar; the next visit is anonymous.
	if u, _ := call("POST", "/logout", nil); u != (user{}) {
		t.Fatalf("logout: %+v", u)
	}
	if v := jarValue(); v != "" {
		t.Fatalf("cookie still in the jar after logout: %d chars", len(v))
	}
	u, res = call("GET", "/whoami", nil)
	if u != (user{}) || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("after logout: %+v, Set-Cookie %q", u, res.Header.Values("Set-Cookie"))
	}
	if errs := srv.Errors(); len(errs) != 0 {
		t.Fatal(errs)
	}
}
