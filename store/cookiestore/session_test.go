package cookiestore_test

// Tests of the cookie store through the whole stack: session.Manager with a
// cipher.Ring, the middleware, and HTTP requests.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/cookiestore"
)

// Sess is the payload of the sessions under test.
type Sess struct {
	UserID  int64
	Name    string
	Counter int
	Blob    string
}

func newClock() *sessiontest.Clock {
	return sessiontest.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
}

var (
	keyA = bytes.Repeat([]byte{0xa1}, cipher.KeySize)
	keyB = bytes.Repeat([]byte{0xb2}, cipher.KeySize)
	keyC = bytes.Repeat([]byte{0xc3}, cipher.KeySize)
)

func ring(t testing.TB, keys ...[]byte) *cipher.Ring {
	t.Helper()
	r, err := cipher.NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// app is a manager on a cookie store with a few routes, served through
// sessiontest.Serve, which keeps the errors the middleware met.
type app struct {
	mgr  *session.Manager[Sess]
	h    http.Handler
	errs []error
}

// newApp builds an app. A nil opts.Cipher means a ring of keyA.
func newApp(t testing.TB, st *cookiestore.Store, opts session.Options) *app {
	t.Helper()
	if opts.Cipher == nil {
		opts.Cipher = ring(t, keyA)
	}
	mgr, err := session.New[Sess](st, opts)
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	a := &app{mgr: mgr}
	reply := func(w http.ResponseWriter, s *Sess) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		reply(w, mgr.Get(r))
	})
	mux.HandleFunc("GET /inc", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Counter++
		reply(w, s)
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := mgr.Get(r)
		s.Blob = string(b)
		reply(w, s)
	})
	mux.HandleFunc("POST /name", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Name = r.FormValue("name")
		reply(w, s)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := mgr.Regenerate(r); err != nil {
			return
		}
		s := mgr.Get(r)
		s.Name = r.FormValue("user")
		s.UserID = 42
		reply(w, s)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		_ = mgr.Destroy(r)
		reply(w, mgr.Get(r))
	})
	a.h = mux
	return a
}

func (a *app) takeErrs() []error {
	e := a.errs
	a.errs = nil
	return e
}

// resp is what a request through the app gave.
type resp struct {
	code   int
	sess   Sess
	cookie *http.Cookie // the Set-Cookie for the session cookie, if any
	raw    []string     // every Set-Cookie line
	header http.Header
}

// do sends a request with the session cookie's value set to value (none when
// value is empty), written raw into the Cookie header so that any bytes can
// be sent.
func (a *app) do(t testing.TB, method, target, body, value string) resp {
	t.Helper()
	return a.doNamed(t, method, target, body, a.mgr.CookieName(), value)
}

func (a *app) doNamed(t testing.TB, method, target, body, name, value string) resp {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "https://example.test"+target, rb)
	if strings.HasPrefix(body, "name=") || strings.HasPrefix(body, "user=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if value != "" {
		req.Header.Set("Cookie", name+"="+value)
	}
	sr := sessiontest.Serve(t, a.mgr, a.h, req)
	if sr.Err != nil {
		a.errs = append(a.errs, sr.Err)
	}
	res := sr.Result()
	out := resp{code: res.StatusCode, raw: res.Header.Values("Set-Cookie"), header: res.Header}
	for _, c := range res.Cookies() {
		if c.Name == a.mgr.CookieName() {
			out.cookie = c
		}
	}
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&out.sess); err != nil {
			t.Fatalf("%s %s: decoding the reply: %v", method, target, err)
		}
	}
	return out
}

// mustCookie returns the value of the session cookie the response set.
func mustCookie(t testing.TB, r resp) string {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d, want 200", r.code)
	}
	if r.cookie == nil || r.cookie.Value == "" {
		t.Fatalf("no session cookie set; Set-Cookie: %q", r.raw)
	}
	return r.cookie.Value
}

// wantNoSession checks a response that read the session of a client whose
// cookie must count as none: 200, an empty session, no cookie, no error.
func wantNoSession(t testing.TB, a *app, r resp, what string) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("%s: status %d, want 200", what, r.code)
	}
	if r.sess != (Sess{}) {
		t.Fatalf("%s: session = %+v, want empty", what, r.sess)
	}
	if len(r.raw) != 0 {
		t.Fatalf("%s: Set-Cookie %q on a read of no session", what, r.raw)
	}
	if errs := a.takeErrs(); len(errs) != 0 {
		t.Fatalf("%s: error handler called: %v", what, errs)
	}
}

func TestNewRequiresCipher(t *testing.T) {
	_, err := session.New[Sess](cookiestore.New(cookiestore.Options{}), session.Options{})
	if !errors.Is(err, session.ErrOptions) {
		t.Fatalf("session.New(cookiestore, no cipher) = %v, want ErrOptions", err)
	}
}

func TestCookieRoundTrip(t *testing.T) {
	a := newApp(t, cookiestore.New(cookiestore.Options{}), session.Options{})
	r := a.do(t, "GET", "/inc", "", "")
	c := mustCookie(t, r)
	if !r.cookie.Secure || !r.cookie.HttpOnly || r.cookie.SameSite != http.SameSiteLaxMode || r.cookie.Path != "/" {
		t.Errorf("cookie attributes = %+v, want Secure HttpOnly SameSite=Lax Path=/", r.cookie)
	}
	for i := 2; i <= 4; i++ {
		r = a.do(t, "GET", "/inc", "", c)
		if r.sess.Counter != i {
			t.Fatalf("request %d: counter = %d", i, r.sess.Counter)
		}
		c = mustCookie(t, r) // changed data: a new sealed value
	}
	// A read that changes nothing sends no cookie.
	r = a.do(t, "GET", "/get", "", c)
	if r.sess.Counter != 4 || len(r.raw) != 0 {
		t.Fatalf("read: counter %d, Set-Cookie %q; want 4 and none", r.sess.Counter, r.raw)
	}
	if errs := a.takeErrs(); len(errs) != 0 {
		t.Fatal(errs)
	}
}

// secretEncodings returns the base64url spellings of secret at each of the
// three byte alignments it can have inside a longer encoded record, with the
// edge characters (which also depend on the neighbouring bytes) cut off.
func secretEncodings(secret string) []string {
	var out []string
	for p := 0; p < 3; p++ {
		enc := base64.RawURLEncoding.EncodeToString(append(make([]byte, p), secret...))
		out = append(out, enc[(p*4+2)/3+1:len(enc)-2])
	}
	return out
}

func TestCookieNotReadable(t *testing.T) {
	const secret = "supersecretvalue-XYZ"
	for _, cd := range []struct {
		name  string
		codec codec.Codec
	}{{"msgpack", nil}, {"json", codec.JSON()}} {
		t.Run(cd.name, func(t *testing.T) {
			a := newApp(t, cookiestore.New(cookiestore.Options{}), session.Options{Codec: cd.codec})
			r := a.do(t, "POST", "/name", "name="+secret, "")
			c := mustCookie(t, r)
			if r.sess.Name != secret {
				t.Fatalf("session name = %q", r.sess.Name)
			}
			// The check is only worth something if the plaintext would be
			// found: prove it on an unsealed encoding of the same record.
			plain := base64.RawURLEncoding.EncodeToString(append([]byte("prefix!"), secret...))
			found := false
			for _, enc := range secretEncodings(secret) {
				found = found || strings.Contains(plain, enc)
			}
			if !found {
				t.Fatal("secretEncodings misses the secret in a plain encoding")
			}

			hay := strings.Join(r.raw, "\n")
			if strings.Contains(hay, secret) || strings.Contains(strings.ToLower(hay), "supersecret") {
				t.Fatalf("cookie shows the secret in clear: %q", hay)
			}
			for _, enc := range secretEncodings(secret) {
				if strings.Contains(c, enc) {
					t.Fatalf("cookie %q contains the base64url of the secret (%q)", c, enc)
				}
			}
			// And the cookie still carries it, to the server.
			if got := a.do(t, "GET", "/get", "", c).sess.Name; got != secret {
				t.Fatalf("reloaded name = %q", got)
			}
		})
	}
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestCookieTampering(t *testing.T) {
	st := cookiestore.New(cookiestore.Options{})
	a := newApp(t, st, session.Options{})
	c := mustCookie(t, a.do(t, "POST", "/login", "user=alice", ""))
	if got := a.do(t, "GET", "/get", "", c).sess; got.Name != "alice" || got.UserID != 42 {
		t.Fatalf("the untampered cookie gives %+v", got)
	}

	t.Run("every character changed to every other", func(t *testing.T) {
		for i := 0; i < len(c); i++ {
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == c[i] {
					continue
				}
				v := c[:i] + alphabet[j:j+1] + c[i+1:]
				wantNoSession(t, a, a.do(t, "GET", "/get", "", v), "char "+c[i:i+1]+"->"+alphabet[j:j+1])
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 1; n < len(c); n++ {
			wantNoSession(t, a, a.do(t, "GET", "/get", "", c[:n]), "prefix")
			wantNoSession(t, a, a.do(t, "GET", "/get", "", c[n:]), "suffix")
		}
	})
	t.Run("extended", func(t *testing.T) {
		for _, v := range []string{
			c + "A", c + "AA", c + "AAA", c + "AAAA", c + c, "A" + c, "AAAA" + c,
			c + "==", c + "%00", c + strings.Repeat("A", 10_000),
			// base64 decoders skip CR and LF: without the alphabet check
			// these would decode to the genuine record.
			c[:20] + "\r\n" + c[20:], c[:20] + "\n" + c[20:], c[:len(c)-1] + "\r" + c[len(c)-1:],
			// (Whitespace around the whole value is not tampering: the
			// Cookie header's parser trims it.)
		} {
			wantNoSession(t, a, a.do(t, "GET", "/get", "", v), "extended "+strconv.Quote(v[len(v)-min(len(v), 4):]))
		}
	})
	t.Run("moved to another cookie name", func(t *testing.T) {
		other := newApp(t, st, session.Options{Cookie: session.Cookie{Name: "other"}})
		wantNoSession(t, other, other.doNamed(t, "GET", "/get", "", "other", c), "moved")
		// The other manager's own cookies do work, under its name.
		oc := mustCookie(t, other.do(t, "GET", "/inc", "", ""))
		if got := other.do(t, "GET", "/get", "", oc).sess.Counter; got != 1 {
			t.Fatalf("other manager's own cookie: counter %d", got)
		}
		// ...and not under ours.
		wantNoSession(t, a, a.do(t, "GET", "/get", "", oc), "moved back")
	})
	t.Run("sealed by another key ring", func(t *testing.T) {
		foreign := newApp(t, st, session.Options{Cipher: ring(t, keyC)})
		fc := mustCookie(t, foreign.do(t, "POST", "/login", "user=mallory", ""))
		wantNoSession(t, a, a.do(t, "GET", "/get", "", fc), "foreign key")
	})
	t.Run("tampered cookie gets a fresh session on write", func(t *testing.T) {
		v := c[:10] + string(alphabet[(strings.IndexByte(alphabet, c[10])+1)%64]) + c[11:]
		r := a.do(t, "GET", "/inc", "", v)
		nc := mustCookie(t, r)
		if r.sess != (Sess{Counter: 1}) || nc == c || nc == v {
			t.Fatalf("write with a tampered cookie: %+v, new cookie same as old: %v", r.sess, nc == c)
		}
	})
}

func TestCookieExpiry(t *testing.T) {
	const (
		lifetime = time.Hour
		idle     = 10 * time.Minute
	)
	st := cookiestore.New(cookiestore.Options{})

	t.Run("idle", func(t *testing.T) {
		clk := newClock()
		t0 := clk.Now()
		a := newApp(t, st, session.Options{Lifetime: lifetime, IdleTimeout: idle, Now: clk.Now})
		r := a.do(t, "GET", "/inc", "", "")
		c0 := mustCookie(t, r)
		// A persistent cookie lasts until the absolute deadline; the idle
		// one is sealed inside and enforced by the server.
		if !r.cookie.Expires.Equal(t0.Add(lifetime)) || r.cookie.MaxAge != int(lifetime/time.Second) {
			t.Fatalf("cookie Expires %v Max-Age %d, want the absolute deadline %v", r.cookie.Expires, r.cookie.MaxAge, t0.Add(lifetime))
		}

		clk.Advance(idle - time.Millisecond)
		r = a.do(t, "GET", "/get", "", c0)
		if r.sess.Counter != 1 {
			t.Fatalf("1 ms before the idle deadline: %+v", r.sess)
		}
		c1 := mustCookie(t, r) // the read refreshed the idle deadline

		clk.Advance(time.Millisecond) // t0 + idle
		// The client replays c0, as if it ignored the cookie's Max-Age (or
		// forged a longer one: the Cookie header carries only name=value, so
		// nothing the client claims about expiry reaches the server). The
		// deadline sealed inside c0 has passed.
		wantNoSession(t, a, a.do(t, "GET", "/get", "", c0), "c0 past its idle deadline")
		if got := a.do(t, "GET", "/get", "", c1).sess.Counter; got != 1 {
			t.Fatalf("refreshed cookie at t0+idle: counter %d, want 1", got)
		}
		clk.Advance(idle)
		wantNoSession(t, a, a.do(t, "GET", "/get", "", c1), "c1 past its idle deadline")
	})

	t.Run("absolute", func(t *testing.T) {
		clk := newClock()
		t0 := clk.Now()
		a := newApp(t, st, session.Options{Lifetime: lifetime, IdleTimeout: idle, Now: clk.Now})
		c := mustCookie(t, a.do(t, "GET", "/inc", "", ""))
		first := c
		// Use the session every 5 minutes: activity keeps the idle deadline
		// moving but never the absolute one.
		var last resp
		for clk.Now().Before(t0.Add(lifetime - 5*time.Minute)) {
			clk.Advance(5 * time.Minute)
			last = a.do(t, "GET", "/inc", "", c)
			c = mustCookie(t, last)
		}
		if want := t0.Add(lifetime); !last.cookie.Expires.Equal(want) {
			t.Fatalf("last cookie expires %v, want the absolute deadline %v", last.cookie.Expires, want)
		}
		clk.Advance(5*time.Minute - time.Millisecond) // t0 + lifetime - 1 ms
		if got := a.do(t, "GET", "/get", "", c).sess.Counter; got != 12 {
			t.Fatalf("1 ms before the absolute deadline: counter %d, want 12", got)
		}
		clk.Advance(time.Millisecond)
		wantNoSession(t, a, a.do(t, "GET", "/get", "", c), "past the absolute deadline")
		wantNoSession(t, a, a.do(t, "GET", "/get", "", first), "first cookie past the absolute deadline")
	})

	t.Run("replayed old cookie whose Max-Age still allows it", func(t *testing.T) {
		// A cookie issued under a 24 h lifetime carries Max-Age=86400. The
		// site then shortens Lifetime to one hour: two hours later the
		// browser would still send the cookie, but the server, checking the
		// created time sealed inside, refuses it.
		clk := newClock()
		long := newApp(t, st, session.Options{Lifetime: 24 * time.Hour, Now: clk.Now})
		r := long.do(t, "GET", "/inc", "", "")
		c := mustCookie(t, r)
		if r.cookie.MaxAge != 86400 {
			t.Fatalf("Max-Age = %d, want 86400", r.cookie.MaxAge)
		}
		clk.Advance(2 * time.Hour)
		if got := long.do(t, "GET", "/get", "", c).sess.Counter; got != 1 {
			t.Fatalf("within the 24 h lifetime: counter %d", got)
		}
		short := newApp(t, st, session.Options{Lifetime: time.Hour, Now: clk.Now})
		wantNoSession(t, short, short.do(t, "GET", "/get", "", c), "cookie older than the present Lifetime")
	})
}

// largestBlob returns the longest Blob that a session of a (with nothing else
// in it) can carry, found by growing it one byte at a time until the commit
// fails with ErrTooLarge.
func largestBlob(t *testing.T, a *app) int {
	t.Helper()
	ctx := context.Background()
	for n := 1; ; n++ {
		txn := a.mgr.Begin(ctx, "")
		s, err := txn.Get()
		if err != nil {
			t.Fatal(err)
		}
		s.Blob = strings.Repeat("x", n)
		res, err := txn.Commit(ctx)
		if err != nil {
			if !errors.Is(err, session.ErrTooLarge) {
				t.Fatalf("commit of a %d-byte blob: %v, want ErrTooLarge", n, err)
			}
			if res.Send || res.Token != "" {
				t.Fatalf("a failed commit asked to send a token: %+v", res)
			}
			return n - 1
		}
		if !res.Send {
			t.Fatalf("commit of a new %d-byte blob did not send a cookie", n)
		}
		if n > cookiestore.MaxCookieSize {
			t.Fatal("no size limit reached")
		}
	}
}

func TestCookieSizeLimit(t *testing.T) {
	// With "__Host-session" (14 bytes) the value has 4082 bytes of room,
	// which a base64 length can fill exactly.
	st := cookiestore.New(cookiestore.Options{})
	a := newApp(t, st, session.Options{Cookie: session.Cookie{Name: "__Host-session"}})
	n := largestBlob(t, a)
	t.Logf("largest blob: %d bytes", n)

	c0 := mustCookie(t, a.do(t, "POST", "/set", "small", ""))

	// One byte over: the error handler gets ErrTooLarge, no cookie is sent,
	// and the previous cookie still holds the previous data.
	over := strings.Repeat("y", n+1)
	r := a.do(t, "POST", "/set", over, c0)
	if r.code != http.StatusInternalServerError {
		t.Fatalf("one byte over: status %d, want the default error handler's 500", r.code)
	}
	if len(r.raw) != 0 {
		t.Fatalf("one byte over: Set-Cookie %q, want none", r.raw)
	}
	errs := a.takeErrs()
	if len(errs) != 1 || !errors.Is(errs[0], session.ErrTooLarge) {
		t.Fatalf("error handler got %v, want one error matching session.ErrTooLarge", errs)
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "4096") || strings.Contains(msg, c0) {
		t.Errorf("error %q should state the limit and hold no token", msg)
	}
	if got := a.do(t, "GET", "/get", "", c0).sess.Blob; got != "small" {
		t.Fatalf("after the failed save the previous cookie gives Blob %q, want %q", got, "small")
	}

	// At the limit: it works, and name plus value is exactly MaxSize.
	at := strings.Repeat("z", n)
	r = a.do(t, "POST", "/set", at, c0)
	c1 := mustCookie(t, r)
	if got := len(r.cookie.Name) + len(c1); got != st.MaxSize() {
		t.Fatalf("cookie at the limit: name+value = %d bytes, want %d", got, st.MaxSize())
	}
	if got := a.do(t, "GET", "/get", "", c1).sess.Blob; got != at {
		t.Fatalf("cookie at the limit reloads a %d-byte blob, want %d", len(got), n)
	}
	if errs := a.takeErrs(); len(errs) != 0 {
		t.Fatal(errs)
	}

	// A lower MaxSize lowers the limit the same way.
	smallStore := cookiestore.New(cookiestore.Options{MaxSize: 1024})
	small := newApp(t, smallStore, session.Options{Cookie: session.Cookie{Name: "__Host-session"}})
	m := largestBlob(t, small)
	r = small.do(t, "POST", "/set", strings.Repeat("z", m), "")
	if got := len(r.cookie.Name) + len(mustCookie(t, r)); got != 1024 {
		t.Fatalf("MaxSize 1024: largest cookie %d bytes", got)
	}
	if m >= n {
		t.Fatalf("MaxSize 1024 allows %d bytes of blob, 4096 allows %d", m, n)
	}
}

func TestCookieKeyRotation(t *testing.T) {
	st := cookiestore.New(cookiestore.Options{})
	onlyA := newApp(t, st, session.Options{Cipher: ring(t, keyA)})
	bThenA := newApp(t, st, session.Options{Cipher: ring(t, keyB, keyA)})
	onlyB := newApp(t, st, session.Options{Cipher: ring(t, keyB)})

	r := onlyA.do(t, "GET", "/inc", "", "")
	cA := mustCookie(t, r)
	r = onlyA.do(t, "GET", "/inc", "", cA)
	cA = mustCookie(t, r)

	// The new ring opens the old cookie; a mere read sends nothing, so an
	// instance still on the old ring keeps reading it during a deploy.
	r = bThenA.do(t, "GET", "/get", "", cA)
	if r.sess.Counter != 2 || len(r.raw) != 0 {
		t.Fatalf("ring(B, A) reading a ring(A) cookie: %+v, Set-Cookie %q", r.sess, r.raw)
	}
	// The next write re-seals it with the new first key.
	r = bThenA.do(t, "GET", "/inc", "", cA)
	cB := mustCookie(t, r)
	if cB == cA {
		t.Fatal("re-sealed cookie equals the old one")
	}
	// It is sealed with B: B alone opens it, A alone does not.
	if got := onlyB.do(t, "GET", "/get", "", cB).sess.Counter; got != 3 {
		t.Fatalf("ring(B) opening the re-sealed cookie: counter %d, want 3", got)
	}
	wantNoSession(t, onlyA, onlyA.do(t, "GET", "/get", "", cB), "ring(A) opening a B cookie")
	// Once re-sealed, reads send nothing more.
	if r := bThenA.do(t, "GET", "/get", "", cB); len(r.raw) != 0 || r.sess.Counter != 3 {
		t.Fatalf("read of an up-to-date cookie: %+v, Set-Cookie %q", r.sess, r.raw)
	}
	// After key A is removed, a cookie sealed with it is no session.
	wantNoSession(t, onlyB, onlyB.do(t, "GET", "/get", "", cA), "ring(B) opening an A cookie")
	for _, a := range []*app{onlyA, bThenA, onlyB} {
		if errs := a.takeErrs(); len(errs) != 0 {
			t.Fatal(errs)
		}
	}
}

func TestCookieDestroy(t *testing.T) {
	clk := newClock()
	a := newApp(t, cookiestore.New(cookiestore.Options{}), session.Options{Lifetime: time.Hour, Now: clk.Now})
	c := mustCookie(t, a.do(t, "POST", "/login", "user=alice", ""))
	c = mustCookie(t, a.do(t, "GET", "/inc", "", c))

	r := a.do(t, "POST", "/logout", "", c)
	if r.code != http.StatusOK || r.sess != (Sess{}) {
		t.Fatalf("logout: %d %+v", r.code, r.sess)
	}
	if r.cookie == nil || r.cookie.Value != "" || r.cookie.MaxAge >= 0 {
		t.Fatalf("logout Set-Cookie %q: want the session cookie expired", r.raw)
	}
	if len(r.raw) != 1 || !strings.Contains(r.raw[0], "Max-Age=0") {
		t.Fatalf("logout Set-Cookie %q: want one line with Max-Age=0", r.raw)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("logout Cache-Control %q, want no-store", cc)
	}

	// The documented limit of stateless cookies: the server cannot revoke
	// a cookie. A copy of the old value, replayed after logout, still opens
	// until its own deadline. The package doc says so; this keeps it true.
	clk.Advance(30 * time.Minute)
	if got := a.do(t, "GET", "/get", "", c).sess; got.Name != "alice" || got.Counter != 1 {
		t.Fatalf("replayed cookie after logout = %+v; the package doc says it still opens until its deadline", got)
	}
	clk.Advance(30 * time.Minute) // the absolute deadline
	wantNoSession(t, a, a.do(t, "GET", "/get", "", c), "replayed cookie after its deadline")
}

func TestCookieRegenerate(t *testing.T) {
	a := newApp(t, cookiestore.New(cookiestore.Options{}), session.Options{})
	c0 := mustCookie(t, a.do(t, "GET", "/inc", "", ""))
	r := a.do(t, "POST", "/login", "user=alice", c0)
	c1 := mustCookie(t, r)
	if c1 == c0 || r.sess != (Sess{UserID: 42, Name: "alice", Counter: 1}) {
		t.Fatalf("login: %+v, cookie changed: %v", r.sess, c1 != c0)
	}
	if got := a.do(t, "GET", "/get", "", c1).sess; got.Name != "alice" || got.Counter != 1 {
		t.Fatalf("new cookie after login: %+v", got)
	}
	// As with Destroy, the server cannot revoke the pre-login cookie: it
	// still opens, with the pre-login data (no user). The package doc says
	// so; this keeps it true.
	if got := a.do(t, "GET", "/get", "", c0).sess; got != (Sess{Counter: 1}) {
		t.Fatalf("pre-login cookie after login: %+v", got)
	}
}

// TestHeaderTransport carries the sealed record in a request header instead
// of a cookie, for API clients: the same store, manager and middleware.
func TestHeaderTransport(t *testing.T) {
	mgr, err := session.New[Sess](cookiestore.New(cookiestore.Options{}), session.Options{Cipher: ring(t, keyA)})
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.New(mgr, middleware.Options{Header: "X-Session"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		if r.Method == "POST" {
			s.Counter++
		}
		_ = json.NewEncoder(w).Encode(s)
	}))
	send := func(method, token string) (Sess, http.Header) {
		req := httptest.NewRequest(method, "/", nil)
		if token != "" {
			req.Header.Set("X-Session", token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var s Sess
		if err := json.NewDecoder(rec.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		if len(rec.Result().Cookies()) != 0 {
			t.Fatalf("header transport set a cookie: %q", rec.Header().Values("Set-Cookie"))
		}
		return s, rec.Header()
	}
	_, hd := send("POST", "")
	tok := hd.Get("X-Session")
	if tok == "" {
		t.Fatal("no token in the response header")
	}
	s, hd := send("POST", tok)
	if s.Counter != 2 || hd.Get("X-Session") == "" {
		t.Fatalf("second request: %+v, token %d chars", s, len(hd.Get("X-Session")))
	}
	if s, _ := send("GET", tok[:len(tok)-2]); s != (Sess{}) {
		t.Fatalf("truncated header token opened %+v", s)
	}
}

// FuzzManagerToken sends arbitrary tokens to a manager on a cookie store:
// loading never panics and never errors, and nothing but a genuine cookie
// opens a session.
func FuzzManagerToken(f *testing.F) {
	clk := newClock()
	st := cookiestore.New(cookiestore.Options{})
	a := newApp(f, st, session.Options{Now: clk.Now})
	ctx := context.Background()

	txn := a.mgr.Begin(ctx, "")
	s, _ := txn.Get()
	want := Sess{UserID: 7, Name: "genuine", Counter: 3}
	*s = want
	res, err := txn.Commit(ctx)
	if err != nil || res.Token == "" {
		f.Fatalf("seeding: %+v, %v", res, err)
	}
	genuine := res.Token
	for _, seed := range []string{
		genuine, genuine[:len(genuine)-1], genuine + "A", genuine + "\n", "\r\n" + genuine,
		"", "A", "AAAA", "../../etc/passwd", strings.Repeat("A", 5000),
		base64.RawURLEncoding.EncodeToString(make([]byte, cipher.Overhead+30)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		txn := a.mgr.Begin(ctx, tok)
		s, err := txn.Get()
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		// Fuzzing workers each seal their own genuine cookie (the nonce is
		// random), so a session may open from a genuine cookie other than
		// this process's; it must then be the genuine payload, under the
		// one canonical spelling of a sealed record.
		if *s != (Sess{}) {
			if *s != want {
				t.Fatalf("token %q opened a session %+v", tok, *s)
			}
			rec, err := base64.RawURLEncoding.Strict().DecodeString(tok)
			if err != nil || base64.RawURLEncoding.EncodeToString(rec) != tok {
				t.Fatalf("a non-canonical token %q opened the session", tok)
			}
		}
		if tok == genuine && *s != want {
			t.Fatalf("the genuine token gives %+v", *s)
		}
		res, err := txn.Commit(ctx)
		if err != nil || res.Send || res.Clear {
			t.Fatalf("Commit of a read: %+v, %v", res, err)
		}
	})
}
