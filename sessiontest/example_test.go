package sessiontest_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/sessiontest"
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
	srv := sessiontest.NewServer(t, mgr, mux)
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
