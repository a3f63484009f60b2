package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Sess is an application's session payload.
type Sess struct {
	UserID int64
	Name   string
	Cart   []int64
}

// The quick start from the README: declare a struct, build the manager, mount
// the middleware, call Get.
func Example() {
	mgr, err := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r) // *Sess: no keys, no type assertions
		s.Cart = append(s.Cart, int64(len(s.Cart)+100))
		fmt.Fprintf(w, "cart: %v", s.Cart)
	})
	srv := httptest.NewTLSServer(middleware.New(mgr, middleware.Options{})(mux))
	defer srv.Close()

	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for range 3 {
		fmt.Println(get(client, "POST", srv.URL+"/cart", nil))
	}
	// Output:
	// cart: [100]
	// cart: [100 101]
	// cart: [100 101 102]
}

// Regenerate on login, Destroy on logout.
func Example_loginLogout() {
	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A new token for the new privilege; the data is kept and the old
		// record deleted.
		if err := mgr.Regenerate(r); err != nil {
			return // the middleware's error handler answers
		}
		s := mgr.Get(r)
		s.UserID, s.Name = 7, r.FormValue("name")
		fmt.Fprintf(w, "hello %s", s.Name)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user %d %q", mgr.Get(r).UserID, mgr.Get(r).Name)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		mgr.Destroy(r) // record deleted, cookie expired
		fmt.Fprint(w, "bye")
	})
	srv := httptest.NewTLSServer(middleware.New(mgr, middleware.Options{})(mux))
	defer srv.Close()

	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	fmt.Println(get(client, "POST", srv.URL+"/login", url.Values{"name": {"ada"}}))
	fmt.Println(get(client, "GET", srv.URL+"/me", nil))
	fmt.Println(get(client, "POST", srv.URL+"/logout", nil))
	fmt.Println(get(client, "GET", srv.URL+"/me", nil))
	// Output:
	// hello ada
	// user 7 "ada"
	// bye
	// user 0 ""
}

// Choosing the JSON codec and sealing records at rest take one option each.
func Example_options() {
	ring, err := cipher.NewRing(cipher.NewKey()) // in production: cipher.ParseKeys(os.Getenv("SESSION_KEYS"))
	if err != nil {
		panic(err)
	}
	mgr, err := session.New[Sess](memstore.New(memstore.Options{}), session.Options{
		Codec:  codec.JSON(),
		Cipher: ring,
	})
	if err != nil {
		panic(err)
	}

	// The transport-free core: what a gRPC interceptor or a job would use.
	ctx := context.Background()
	tx := mgr.Begin(ctx, "")
	s, _ := tx.Get()
	s.Name = "grace"
	res, _ := tx.Commit(ctx)
	fmt.Println("new token:", len(res.Token), "characters")

	s, _ = mgr.Begin(ctx, res.Token).Get()
	fmt.Println("loaded:", s.Name)
	// Output:
	// new token: 43 characters
	// loaded: grace
}

func get(c *http.Client, method, u string, form url.Values) string {
	req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
