// Package racetest runs concurrent requests of one session through the
// real middleware, against any store, and checks that none of them loses a
// write silently: every 200 counts, and a change that cannot be merged is a
// visible 409. Races are made deterministic with gates: a request stops
// after loading its session until the test lets it go on.
package racetest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
)

// Sess is the payload of the application under test.
type Sess struct {
	User    string   `msgpack:"user"`
	Counter int      `msgpack:"counter"`
	Note    string   `msgpack:"note"`
	Roles   []string `msgpack:"roles"`
}

// SessV2 is Sess as a newer deploy has it: one field more.
type SessV2 struct {
	User    string   `msgpack:"user"`
	Counter int      `msgpack:"counter"`
	Note    string   `msgpack:"note"`
	Roles   []string `msgpack:"roles"`
	Theme   string   `msgpack:"theme"`
}

// NewStore returns an empty store (or one whose keys cannot collide with
// other tests'), whose clock, where it has one, is now.
type NewStore func(t *testing.T, now func() time.Time) store.Store

// Run runs every race against stores from newStore.
func Run(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, newStore NewStore)
	}{
		{"UpdateLosesNone", updateLosesNone},
		{"PlainIncrementsCountOrConflict", plainIncrements},
		{"SameValueTwiceIsAConflict", sameValueTwice},
		{"NoteDuringSlowIncrement", noteDuringSlowIncrement},
		{"OlderBinaryKeepsNewerField", olderBinaryKeepsNewerField},
		{"DoubleSubmittedLogin", doubleLogin},
		{"LoginRacingSlowRequest", loginRacingSlow},
		{"LogoutRacingSlowRequest", logoutRacingSlow},
		{"RefreshNeverRevertsAWrite", refreshNeverReverts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore) })
	}
}

// app is the application under test on an HTTP test server.
type app[T any] struct {
	t     *testing.T
	clock *sessiontest.Clock
	mgr   *session.Manager[T]
	srv   *sessiontest.Server[T]

	mu    sync.Mutex
	gates map[string]*gate
}

// gate holds a request after it loaded its session until released.
type gate struct {
	loaded  chan struct{}
	release chan struct{}
}

var testKey = []byte("racetest key: 32 bytes, not 0s.") // 31 + NUL below

func ring(t *testing.T) *cipher.Ring {
	k := append([]byte(nil), testKey...)
	k = append(k, 1)
	r, err := cipher.NewRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// counterOf reads the counter field of either payload type.
func fields[T any](v *T) (user string, counter int, note string, roles []string, theme string) {
	switch s := any(v).(type) {
	case *Sess:
		return s.User, s.Counter, s.Note, s.Roles, ""
	case *SessV2:
		return s.User, s.Counter, s.Note, s.Roles, s.Theme
	}
	panic("racetest: unknown payload")
}

func newApp[T any](t *testing.T, st store.Store, clock *sessiontest.Clock, opts session.Options) *app[T] {
	t.Helper()
	opts.Now = clock.Now
	opts.Cipher = ring(t)
	mgr, err := session.New[T](st, opts)
	if err != nil {
		t.Fatal(err)
	}
	a := &app[T]{t: t, clock: clock, mgr: mgr, gates: map[string]*gate{}}
	answer := func(w http.ResponseWriter, v *T) {
		user, counter, note, roles, theme := fields(v)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"user": user, "counter": counter, "note": note, "roles": roles, "theme": theme})
	}
	mux := http.NewServeMux()
	// Every route loads the session first, then waits at its gate, if the
	// request names one, and only then changes it.
	load := func(r *http.Request) *T {
		v := mgr.Get(r)
		if name := r.FormValue("gate"); name != "" {
			g := a.gate(name)
			close(g.loaded)
			<-g.release
		}
		return v
	}
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		answer(w, load(r))
	})
	mux.HandleFunc("POST /inc", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		switch s := any(v).(type) {
		case *Sess:
			s.Counter++
		case *SessV2:
			s.Counter++
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		load(r)
		err := mgr.Update(r, func(v *T) error {
			switch s := any(v).(type) {
			case *Sess:
				s.Counter++
			case *SessV2:
				s.Counter++
			}
			return nil
		})
		if errors.Is(err, session.ErrConflict) {
			http.Error(w, "conflict", http.StatusConflict)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		answer(w, mgr.Get(r))
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		n, _ := strconv.Atoi(r.FormValue("counter"))
		switch s := any(v).(type) {
		case *Sess:
			s.Counter = n
		case *SessV2:
			s.Counter = n
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /note", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		switch s := any(v).(type) {
		case *Sess:
			s.Note = r.FormValue("text")
		case *SessV2:
			s.Note = r.FormValue("text")
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /theme", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		if s, ok := any(v).(*SessV2); ok {
			s.Theme = r.FormValue("theme")
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /roles", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		roles := strings.Fields(r.FormValue("roles"))
		switch s := any(v).(type) {
		case *Sess:
			s.Roles = roles
		case *SessV2:
			s.Roles = roles
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		v := load(r)
		if err := mgr.Regenerate(r); err != nil {
			return
		}
		switch s := any(v).(type) {
		case *Sess:
			s.User = r.FormValue("user")
		case *SessV2:
			s.User = r.FormValue("user")
		}
		answer(w, v)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		load(r)
		mgr.Destroy(r)
		answer(w, mgr.Get(r))
	})
	a.srv = sessiontest.NewServer(t, mgr, mux, middleware.Options{
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, session.ErrConflict) {
				http.Error(w, "conflict", http.StatusConflict)
				return
			}
			t.Errorf("%s %s: session error %v", r.Method, r.URL.Path, err)
			http.Error(w, "session failed", http.StatusInternalServerError)
		},
	})
	return a
}

func (a *app[T]) gate(name string) *gate {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.gates[name]
	if g == nil {
		g = &gate{loaded: make(chan struct{}), release: make(chan struct{})}
		a.gates[name] = g
	}
	return g
}

type reply struct {
	code      int
	setCookie string
	user      string
	counter   int
	note      string
	roles     []string
	theme     string
}

// do sends a request from c and returns its reply. form may be nil. It
// may run on any goroutine: a request that fails is reported with Errorf.
func (a *app[T]) do(c *http.Client, method, path string, form url.Values) reply {
	a.t.Helper()
	res := a.srv.Do(a.t, c, method, path, form)
	r := reply{code: res.StatusCode, setCookie: res.Header.Get("Set-Cookie")}
	if res.StatusCode == http.StatusOK {
		var v struct {
			User    string   `json:"user"`
			Counter int      `json:"counter"`
			Note    string   `json:"note"`
			Roles   []string `json:"roles"`
			Theme   string   `json:"theme"`
		}
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			a.t.Errorf("%s %s: %v", method, path, err)
		}
		r.user, r.counter, r.note, r.roles, r.theme = v.User, v.Counter, v.Note, v.Roles, v.Theme
	}
	return r
}

// slow starts a request that stops at gate name once it has loaded its
// session, and returns a function that lets it go on and waits for its reply.
func (a *app[T]) slow(c *http.Client, method, path, name string, form url.Values) (finish func() reply) {
	a.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("gate", name)
	g := a.gate(name)
	done := make(chan reply, 1)
	go func() { done <- a.do(c, method, path, form) }()
	select {
	case <-g.loaded:
	case r := <-done:
		a.t.Fatalf("%s %s answered %d before reaching its gate", method, path, r.code)
	}
	return func() reply {
		close(g.release)
		return <-done
	}
}

func start(t *testing.T, newStore NewStore, opts session.Options) (*app[Sess], *http.Client) {
	clock := sessiontest.NewClock(time.Now().Truncate(time.Millisecond))
	a := newApp[Sess](t, newStore(t, clock.Now), clock, opts)
	c := a.srv.Client()
	if r := a.do(c, "POST", "/inc", nil); r.code != 200 || r.counter != 1 {
		t.Fatalf("first visit: %+v", r)
	}
	return a, c
}

func updateLosesNone(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{})
	const n = 64
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() { codes <- a.do(c, "POST", "/update", url.Values{}).code })
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("an Update answered %d", code)
		}
	}
	if r := a.do(c, "GET", "/whoami", nil); r.counter != n+1 {
		t.Fatalf("%d concurrent Update increments: counter %d, want %d", n, r.counter, n+1)
	}
}

func plainIncrements(t *testing.T, newStore NewStore) {
	for _, n := range []int{10, 100} {
		a, c := start(t, newStore, session.Options{})
		var wg sync.WaitGroup
		codes := make(chan int, n)
		for range n {
			wg.Go(func() { codes <- a.do(c, "POST", "/inc", url.Values{}).code })
		}
		wg.Wait()
		close(codes)
		ok := 0
		for code := range codes {
			switch code {
			case 200:
				ok++
			case 409:
			default:
				t.Errorf("an increment answered %d", code)
			}
		}
		r := a.do(c, "GET", "/whoami", nil)
		if r.counter != 1+ok {
			t.Fatalf("%d concurrent increments, %d answered 200: counter %d, want %d", n, ok, r.counter, 1+ok)
		}
		t.Logf("%d concurrent plain increments: %d counted, %d answered 409, %d lost", n, ok, n-ok, 1+ok-r.counter)
	}
}

// sameValueTwice: two requests that both take the counter from 1 to 2 are
// two increments, not one: the second must not answer 200.
func sameValueTwice(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{})
	finish := a.slow(c, "POST", "/inc", "slow", nil)
	if r := a.do(c, "POST", "/inc", nil); r.code != 200 || r.counter != 2 {
		t.Fatalf("fast increment: %+v", r)
	}
	if r := finish(); r.code != 409 || r.setCookie != "" {
		t.Fatalf("slow increment of the same field: %d, Set-Cookie %q; want 409 and no cookie", r.code, r.setCookie)
	}
	// The same with /set: equal values, still two writers.
	finish = a.slow(c, "POST", "/set", "slow2", url.Values{"counter": {"7"}})
	if r := a.do(c, "POST", "/set", url.Values{"counter": {"7"}}); r.code != 200 {
		t.Fatalf("fast set: %+v", r)
	}
	if r := finish(); r.code != 409 {
		t.Fatalf("slow set of the same field to the same value: %d, want 409", r.code)
	}
}

func noteDuringSlowIncrement(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{})
	finish := a.slow(c, "POST", "/inc", "slow", nil)
	if r := a.do(c, "POST", "/note", url.Values{"text": {"hello"}}); r.code != 200 {
		t.Fatalf("note: %+v", r)
	}
	if r := finish(); r.code != 200 {
		t.Fatalf("slow increment beside a note: %d, want 200 (merged)", r.code)
	}
	if r := a.do(c, "GET", "/whoami", nil); r.counter != 2 || r.note != "hello" {
		t.Fatalf("after a note set during a slow increment: %+v; want counter 2 and the note", r)
	}
}

func olderBinaryKeepsNewerField(t *testing.T, newStore NewStore) {
	clock := sessiontest.NewClock(time.Now().Truncate(time.Millisecond))
	st := newStore(t, clock.Now)
	older := newApp[Sess](t, st, clock, session.Options{})
	newer := newApp[SessV2](t, st, clock, session.Options{})
	// Both servers are on 127.0.0.1: one browser, one cookie jar.
	c, cn := older.srv.Client(), newer.srv.Client()
	cn.Jar = c.Jar
	if r := newer.do(cn, "POST", "/theme", url.Values{"theme": {"dark"}}); r.code != 200 {
		t.Fatalf("newer sets the theme: %+v", r)
	}
	// Without a race: the older binary writes, the field survives.
	if r := older.do(c, "POST", "/inc", nil); r.code != 200 || r.counter != 1 {
		t.Fatalf("older increments: %+v", r)
	}
	if r := newer.do(cn, "GET", "/whoami", nil); r.theme != "dark" || r.counter != 1 {
		t.Fatalf("after the older binary's write: %+v; want theme dark, counter 1", r)
	}
	// With a race: the older binary merges over the newer's write.
	finish := older.slow(c, "POST", "/inc", "slow", nil)
	if r := newer.do(cn, "POST", "/theme", url.Values{"theme": {"light"}}); r.code != 200 {
		t.Fatalf("newer changes the theme: %+v", r)
	}
	if r := finish(); r.code != 200 {
		t.Fatalf("older's racing increment: %d", r.code)
	}
	if r := newer.do(cn, "GET", "/whoami", nil); r.theme != "light" || r.counter != 2 {
		t.Fatalf("after the race: %+v; want theme light, counter 2", r)
	}
}

func doubleLogin(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{})
	form := func() url.Values { return url.Values{"user": {"ann"}} }
	first := a.slow(c, "POST", "/login", "one", form())
	second := a.slow(c, "POST", "/login", "two", form())
	if r := first(); r.code != 200 || r.setCookie == "" {
		t.Fatalf("first login: %d, Set-Cookie %q", r.code, r.setCookie)
	}
	if r := second(); r.code != 200 || r.setCookie == "" {
		t.Fatalf("second login: %d, Set-Cookie %q", r.code, r.setCookie)
	}
	if r := a.do(c, "GET", "/whoami", nil); r.user != "ann" || r.counter != 1 {
		t.Fatalf("after a double-submitted login: %+v; want ann, counter 1", r)
	}
}

func loginRacingSlow(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{IdleTimeout: 30 * time.Minute})
	old := cookie(t, a, c)
	write := a.slow(c, "POST", "/inc", "write", nil)
	read := a.slow(c, "GET", "/whoami", "read", nil)
	if r := a.do(c, "POST", "/login", url.Values{"user": {"ann"}}); r.code != 200 || r.setCookie == "" {
		t.Fatalf("login: %+v", r)
	}
	if r := write(); r.code != 409 || r.setCookie != "" {
		t.Fatalf("a write begun before the login: %d, Set-Cookie %q; want 409 and no cookie", r.code, r.setCookie)
	}
	if r := read(); r.code != 200 || r.setCookie != "" {
		t.Fatalf("a read begun before the login: %d, Set-Cookie %q; want 200 and no cookie", r.code, r.setCookie)
	}
	if now := cookie(t, a, c); now == old {
		t.Fatal("the browser holds the pre-login token")
	}
	if r := a.do(c, "GET", "/whoami", nil); r.user != "ann" || r.counter != 1 {
		t.Fatalf("after the login: %+v; want ann, counter 1", r)
	}
	// The old token, replayed, is an empty session whose writes fail.
	stale := tokenClient(a, old)
	if r := a.do(stale, "GET", "/whoami", nil); r.user != "" || r.counter != 0 {
		t.Fatalf("the pre-login token reads %+v", r)
	}
	if r := a.do(stale, "POST", "/inc", nil); r.code != 409 || r.setCookie != "" {
		t.Fatalf("a write with the pre-login token: %d, Set-Cookie %q; want 409, no cookie", r.code, r.setCookie)
	}
}

func logoutRacingSlow(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{})
	if r := a.do(c, "POST", "/login", url.Values{"user": {"ann"}}); r.code != 200 {
		t.Fatalf("login: %+v", r)
	}
	tok := cookie(t, a, c)
	finish := a.slow(c, "POST", "/inc", "slow", nil)
	if r := a.do(c, "POST", "/logout", nil); r.code != 200 {
		t.Fatalf("logout: %+v", r)
	}
	if r := finish(); r.code != 409 || r.setCookie != "" {
		t.Fatalf("a write begun before the logout: %d, Set-Cookie %q; want 409, no cookie", r.code, r.setCookie)
	}
	if r := a.do(c, "GET", "/whoami", nil); r.user != "" {
		t.Fatalf("after the logout the browser is %+v", r)
	}
	if r := a.do(tokenClient(a, tok), "GET", "/whoami", nil); r.user != "" || r.counter != 0 {
		t.Fatalf("the logged-out token reads %+v", r)
	}
	// A logout begun before a login ends the session the login made.
	if r := a.do(c, "POST", "/login", url.Values{"user": {"bob"}}); r.code != 200 {
		t.Fatalf("login: %+v", r)
	}
	logout := a.slow(c, "POST", "/logout", "logout", nil)
	if r := a.do(c, "POST", "/login", url.Values{"user": {"bob"}}); r.code != 200 {
		t.Fatalf("second login: %+v", r)
	}
	tok = cookie(t, a, c)
	if r := logout(); r.code != 200 {
		t.Fatalf("the slow logout: %d", r.code)
	}
	if r := a.do(tokenClient(a, tok), "GET", "/whoami", nil); r.user != "" {
		t.Fatalf("a logout begun before a login left the login's session: %+v", r)
	}
}

func refreshNeverReverts(t *testing.T, newStore NewStore) {
	a, c := start(t, newStore, session.Options{IdleTimeout: 40 * time.Minute})
	if r := a.do(c, "POST", "/roles", url.Values{"roles": {"admin"}}); r.code != 200 {
		t.Fatalf("grant: %+v", r)
	}
	a.clock.Advance(15 * time.Minute) // a refresh is due on the next read
	finish := a.slow(c, "GET", "/whoami", "read", nil)
	if r := a.do(c, "POST", "/roles", url.Values{"roles": {""}}); r.code != 200 || len(r.roles) != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	if r := finish(); r.code != 200 {
		t.Fatalf("the slow read: %d", r.code)
	}
	if r := a.do(c, "GET", "/whoami", nil); len(r.roles) != 0 {
		t.Fatalf("a read-only refresh brought back roles %v", r.roles)
	}
}

// cookie returns the session token the browser holds.
func cookie[T any](t *testing.T, a *app[T], c *http.Client) string {
	t.Helper()
	tok := a.srv.Token(c)
	if tok == "" {
		t.Fatal("the browser holds no session cookie")
	}
	return tok
}

// tokenClient is a browser that holds token.
func tokenClient[T any](a *app[T], token string) *http.Client {
	c := a.srv.Client()
	a.srv.SetToken(c, token)
	return c
}
