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
	"sync"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/cookiestore"
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
		// token retired. Login(r, userID) does the same and binds the
		// session to its user, for listing and revoking.
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

// Update saves a change at once and loses none when requests of one session
// run at the same time: a counter, a cart.
func ExampleManager_Update() {
	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		err := mgr.Update(r, func(s *Sess) error {
			s.Cart = append(s.Cart, 1)
			return nil
		})
		if err != nil {
			http.Error(w, "try again", http.StatusConflict)
		}
	})
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d items", len(mgr.Get(r).Cart))
	})
	srv := httptest.NewTLSServer(middleware.New(mgr, middleware.Options{})(mux))
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	get(client, "POST", srv.URL+"/cart", nil) // the session and its cookie

	var wg sync.WaitGroup
	for range 20 { // twenty tabs at once
		wg.Go(func() { get(client, "POST", srv.URL+"/cart", nil) })
	}
	wg.Wait()
	fmt.Println(get(client, "GET", srv.URL+"/cart", nil))
	// Output: 21 items
}

// "Remember me": a persistent cookie with a lifetime of its own, for this
// session alone.
func ExampleManager_RememberMe() {
	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{
		Lifetime:    8 * time.Hour,       // everyone
		MaxLifetime: 30 * 24 * time.Hour, // at most, for those who ask
		Cookie:      session.Cookie{BrowserSession: true},
	})
	h := middleware.New(mgr, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mgr.Get(r).UserID = 7
		if r.FormValue("remember") == "on" {
			mgr.RememberMe(r, true)
			mgr.SetLifetime(r, 30*24*time.Hour)
		}
	}))
	for _, remember := range []string{"", "on"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "https://example.com/login?remember="+remember, nil))
		c := w.Result().Cookies()[0]
		fmt.Printf("remember=%q: Max-Age %d\n", remember, c.MaxAge)
	}
	// Output:
	// remember="": Max-Age 0
	// remember="on": Max-Age 2592000
}

// Sessions in the cookie itself: nothing kept on the server, so a cipher is
// required; the cookie is sealed and bound to its name.
func Example_cookieStore() {
	ring, _ := cipher.NewRing(cipher.NewKey()) // cipher.ParseKeys(os.Getenv("SESSION_KEYS"))
	mgr, err := session.New[Sess](cookiestore.New(cookiestore.Options{}), session.Options{Cipher: ring})
	if err != nil {
		panic(err)
	}
	h := middleware.New(mgr, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Cart = append(s.Cart, 42)
		fmt.Fprintf(w, "cart %v", s.Cart)
	}))
	var cookie *http.Cookie
	for range 2 {
		r := httptest.NewRequest("POST", "https://example.com/cart", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		cookie = w.Result().Cookies()[0]
		fmt.Println(w.Body.String(), "- cookie of", len(cookie.Value), "characters")
	}
	// Output:
	// cart [42] - cookie of 124 characters
	// cart [42 42] - cookie of 126 characters
}

// Rotating keys: a new key added last everywhere, then put first; records
// sealed with the old key still open, and are re-sealed on their next write.
func Example_keyRotation() {
	oldKey, newKey := cipher.NewKey(), cipher.NewKey()
	st := memstore.New(memstore.Options{})
	before, _ := cipher.NewRing(oldKey)
	after, _ := cipher.NewRing(newKey, oldKey) // SESSION_KEYS="new,old"
	m1, _ := session.New[Sess](st, session.Options{Cipher: before})
	m2, _ := session.New[Sess](st, session.Options{Cipher: after})

	ctx := context.Background()
	s := m1.Begin(ctx, "")
	p, _ := s.Get()
	p.Name = "ada"
	res, _ := s.Commit(ctx)

	p, _ = m2.Begin(ctx, res.Token).Get()
	fmt.Println("opened with the new ring:", p.Name)
	// Output: opened with the new ring: ada
}

// API clients carry the token in a header instead of a cookie.
func Example_headerTokens() {
	mgr, _ := session.New[Sess](memstore.New(memstore.Options{}), session.Options{})
	h := middleware.New(mgr, middleware.Options{Header: "X-Session"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.UserID++
		fmt.Fprintf(w, "calls %d", s.UserID)
	}))
	token := ""
	for range 2 {
		r := httptest.NewRequest("GET", "https://api.example.com/", nil)
		r.Header.Set("X-Session", token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if t := w.Header().Get("X-Session"); t != "" {
			token = t // a new or changed token comes back in the same header
		}
		fmt.Println(w.Body.String(), "- token of", len(token), "characters")
	}
	// Output:
	// calls 1 - token of 43 characters
	// calls 2 - token of 43 characters
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
