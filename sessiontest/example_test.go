package sessiontest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type Sess struct {
	UserID int64
	Cart   []string
}

// addToCart is the handler under test.
func addToCart(mgr *session.Manager[Sess]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if s.UserID == 0 {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		s.Cart = append(s.Cart, r.FormValue("item"))
		fmt.Fprintf(w, "%d items", len(s.Cart))
	})
}

// Test a handler with a session seeded with a value, and read back what it
// saved.
func Example() {
	t := &testing.T{} // in a test, the *testing.T it is given
	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})

	r := sessiontest.NewRequest(t, mgr, "POST", "/cart?item=tea", Sess{UserID: 7, Cart: []string{"milk"}})
	res := sessiontest.Serve(t, mgr, addToCart(mgr), r)
	fmt.Println(res.Code, res.Body.String(), res.Session.Cart, res.Sent)
	// Output: 200 2 items [milk tea] false
}

func TestServerAndClock(t *testing.T) {
	clock := sessiontest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mgr, err := session.New[Sess](memstore.New(memstore.Options{Now: clock.Now}), session.Options{Now: clock.Now, IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		mgr.Regenerate(r)
		mgr.Get(r).UserID = 7
	})
	mux.Handle("/cart", addToCart(mgr))
	srv := sessiontest.NewServer(t, mgr, mux, middleware.Options{})
	c := srv.Client()
	if code, _ := srv.Get(t, c, "/cart?item=tea"); code != http.StatusUnauthorized {
		t.Fatalf("before login: %d", code)
	}
	srv.Get(t, c, "/login")
	if srv.Token(c) == "" {
		t.Fatal("the client holds no token after login")
	}
	if _, body := srv.Get(t, c, "/cart?item=tea"); body != "1 items" {
		t.Fatalf("after login: %q", body)
	}
	clock.Advance(2 * time.Hour) // past the idle timeout
	if code, _ := srv.Get(t, c, "/cart?item=tea"); code != http.StatusUnauthorized {
		t.Fatalf("after the idle timeout: %d", code)
	}
	// A response that ends the session is seen as Cleared.
	logout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mgr.Destroy(r) })
	res := sessiontest.Serve(t, mgr, logout, sessiontest.NewRequest(t, mgr, "POST", "/logout", Sess{UserID: 7}))
	if !res.Cleared || res.Token != "" || res.Session != nil {
		t.Fatalf("logout: %+v", res)
	}
}

// A request from another browser that holds an old token, a form post, and
// the errors the middleware met.
func TestServerDo(t *testing.T) {
	st := &failingStore{Store: memstore.New(memstore.Options{})}
	mgr, err := session.New[Sess](st, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if mgr.Regenerate(r) == nil {
			mgr.Get(r).UserID = 7
		}
	})
	mux.Handle("/cart", addToCart(mgr))
	srv := sessiontest.NewServer(t, mgr, mux, middleware.Options{Logger: slog.New(slog.DiscardHandler)})
	c := srv.Client()
	srv.Do(t, c, "POST", "/login", nil)
	old := srv.Token(c)
	srv.Do(t, c, "POST", "/login", nil)
	for _, method := range []string{"GET", "POST"} { // the form in the query, then in the body
		res := srv.Do(t, c, method, "/cart", url.Values{"item": {method}})
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%s /cart: %d, Set-Cookie %q", method, res.StatusCode, res.Header.Get("Set-Cookie"))
		}
		if want := map[string]string{"GET": "1 items", "POST": "2 items"}[method]; string(body) != want {
			t.Fatalf("%s /cart: %q, want %q", method, body, want)
		}
	}
	// The retired token, replayed by another browser, is no session.
	replay := srv.Client()
	srv.SetToken(replay, old)
	if got := srv.Token(replay); got != old {
		t.Fatalf("Token after SetToken = %q", got)
	}
	if code, _ := srv.Get(t, replay, "/cart?item=tea"); code != http.StatusUnauthorized {
		t.Fatalf("the retired token: %d", code)
	}
	if errs := srv.Errors(); len(errs) != 0 {
		t.Fatalf("Errors() = %v, want none", errs)
	}
	// A store that refuses writes: the default error handler answers, and
	// Errors and Response.Err hold what it was given.
	st.fail.Store(true)
	if code, _ := srv.Get(t, c, "/cart?item=tea"); code != http.StatusInternalServerError {
		t.Fatalf("with the store down: %d", code)
	}
	if errs := srv.Errors(); len(errs) != 1 || !errors.Is(errs[0], session.ErrStore) {
		t.Fatalf("Errors() = %v, want one ErrStore", errs)
	}
	res := sessiontest.Serve(t, mgr, addToCart(mgr), sessiontest.WithToken(httptest.NewRequest("GET", "/cart", nil), mgr, srv.Token(c)))
	if !errors.Is(res.Err, session.ErrStore) || res.Code != http.StatusInternalServerError {
		t.Fatalf("Serve with the store down: %d, Err %v", res.Code, res.Err)
	}
}

// failingStore fails every write once fail is set.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

func (s *failingStore) Write(ctx context.Context, ops []store.Op) error {
	if s.fail.Load() {
		return errors.New("store full")
	}
	return s.Store.Write(ctx, ops)
}

// The server speaks HTTP/2 to its own clients and HTTP/1.1 to a client that
// offers only that, as a websocket client does.
func TestServerProtocols(t *testing.T) {
	mgr, err := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := sessiontest.NewServer(t, mgr, addToCart(mgr), middleware.Options{})
	if res := srv.Do(t, srv.Client(), "GET", "/", nil); res.ProtoMajor != 2 {
		t.Errorf("Client speaks %s, want HTTP/2", res.Proto)
	}
	h1 := srv.Client()
	tr := h1.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	t.Cleanup(tr.CloseIdleConnections)
	h1.Transport = tr
	if res := srv.Do(t, h1, "GET", "/", nil); res.ProtoMajor != 1 {
		t.Errorf("an HTTP/1.1 client got %s", res.Proto)
	}
}
