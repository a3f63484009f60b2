package racetest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
)

// ownerApp serves login, listing and revocation routes on a memory store.
type ownerApp struct {
	t     *testing.T
	clock *sessiontest.Clock
	mgr   *session.Manager[Sess]
	h     http.Handler
}

func newOwnerApp(t *testing.T, st store.Store, clock *sessiontest.Clock) *ownerApp {
	a := &ownerApp{t: t, clock: clock}
	mgr, err := session.New[Sess](st, session.Options{Now: clock.Now, Cipher: ring(t), IdleTimeout: time.Hour, DeviceHints: session.DeviceHints{UserAgent: true, IP: true}})
	if err != nil {
		t.Fatal(err)
	}
	a.mgr = mgr
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := a.mgr.Login(r, r.FormValue("user")); err != nil {
			t.Errorf("Login: %v", err)
		}
		a.mgr.Get(r).User = r.FormValue("user")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(a.mgr.Get(r).User))
	})
	a.h = mux
	return a
}

// do serves one request with token (may be empty) from a browser on a
// documentation address, and returns the answer and the token the client
// holds afterwards.
func (a *ownerApp) do(method, path, token, form string) (string, string) {
	a.t.Helper()
	r := httptest.NewRequest(method, "https://example.com"+path, strings.NewReader(form))
	r.RemoteAddr = "203.0.113.77:4444"
	r.Header.Set("User-Agent", "TestBrowser/1.0")
	if form != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		r = sessiontest.WithToken(r, a.mgr, token)
	}
	res := sessiontest.Serve(a.t, a.mgr, a.h, r)
	return res.Body.String(), res.Token
}

// NewPair returns two stores that are two instances' views of one place
// (for memory, one store twice; for Valkey, two clients on one prefix).
type NewPair func(t *testing.T, now func() time.Time) (store.Store, store.Store)

// Owners checks sessions bound to owners, listed and revoked, on two
// instances: a revocation on one takes effect on the other's next request.
func Owners(t *testing.T, newPair NewPair) {
	clock := sessiontest.NewClock(time.Now().Truncate(time.Millisecond))
	st1, st2 := newPair(t, clock.Now)
	one := newOwnerApp(t, st1, clock)
	two := newOwnerApp(t, st2, clock) // a second instance
	ctx := context.Background()

	_, laptop := one.do("POST", "/login", "", "user=ann")
	clock.Advance(time.Minute)
	_, phone := two.do("POST", "/login", "", "user=ann")
	_, bob := one.do("POST", "/login", "", "user=bob")

	list, err := one.mgr.Sessions(ctx, "ann")
	if err != nil || len(list) != 2 {
		t.Fatalf("ann's sessions: %+v, %v; want 2", list, err)
	}
	if !list[0].Created.After(list[1].Created) {
		t.Fatalf("not newest first: %+v", list)
	}
	for _, d := range list {
		if d.UserAgent != "TestBrowser/1.0" || d.IP != "203.0.113.0/24" || d.Current {
			t.Fatalf("device %+v: want the hints recorded and no current one outside a request", d)
		}
		if strings.Contains(d.Handle, laptop) || strings.Contains(d.Handle, phone) || d.Handle == laptop || d.Handle == phone {
			t.Fatal("a handle is a token")
		}
		// A handle cannot open a session.
		if got, _ := one.do("GET", "/whoami", d.Handle, ""); got != "" {
			t.Fatalf("a handle opened the session of %q", got)
		}
	}
	// Revoking one of ann's sessions needs ann's handle.
	if err := one.mgr.Revoke(ctx, "bob", list[0].Handle); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("bob revoking ann's session: %v, want ErrNotFound", err)
	}
	if err := one.mgr.Revoke(ctx, "ann", "../../etc"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a malformed handle: %v", err)
	}
	if err := one.mgr.Revoke(ctx, "ann", list[0].Handle); err != nil { // the phone
		t.Fatal(err)
	}
	signedOut(t, two, phone, "the revoked phone")
	if got, _ := two.do("GET", "/whoami", laptop, ""); got != "ann" {
		t.Fatalf("the laptop is %q after revoking the phone", got)
	}

	// Sign out everywhere else, from the laptop: the new phone session ends.
	_, phone = two.do("POST", "/login", "", "user=ann")
	var n int
	revokeOthers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, _ := one.mgr.Sessions(r.Context(), "ann")
		current := 0
		for _, d := range list {
			if d.Current {
				current++
			}
		}
		if current != 1 {
			t.Errorf("%d sessions marked current, want 1", current)
		}
		n, err = one.mgr.RevokeOthers(r)
	})
	sessiontest.Serve(t, one.mgr, revokeOthers, sessiontest.WithToken(httptest.NewRequest("POST", "https://example.com/", nil), one.mgr, laptop))
	if err != nil || n != 1 {
		t.Fatalf("RevokeOthers = %d, %v; want 1", n, err)
	}
	signedOut(t, two, phone, "the other session after RevokeOthers")
	if got, _ := two.do("GET", "/whoami", laptop, ""); got != "ann" {
		t.Fatalf("the session that signed the others out is %q", got)
	}

	// Sign out everywhere: every instance, every session of ann; bob stays.
	if n, err := two.mgr.RevokeAll(ctx, "ann"); err != nil || n != 1 {
		t.Fatalf("RevokeAll = %d, %v; want 1", n, err)
	}
	signedOut(t, one, laptop, "the laptop after RevokeAll")
	if got, _ := one.do("GET", "/whoami", bob, ""); got != "bob" {
		t.Fatalf("another owner's session is %q after RevokeAll(ann)", got)
	}
	if list, _ := one.mgr.Sessions(ctx, "ann"); len(list) != 0 {
		t.Fatalf("after RevokeAll ann has %+v", list)
	}
	// A new login works afterwards.
	_, again := one.do("POST", "/login", "", "user=ann")
	if got, _ := two.do("GET", "/whoami", again, ""); got != "ann" {
		t.Fatalf("a login after RevokeAll is %q", got)
	}
	// Entries end with their sessions.
	clock.Advance(25 * time.Hour)
	if list, _ := one.mgr.Sessions(ctx, "ann"); len(list) != 0 {
		t.Fatalf("expired sessions listed: %+v", list)
	}
}

// signedOut checks that token opens no session on a. A store with a
// client-side cache learns of another instance's write when the server's
// invalidation arrives, within milliseconds: the check allows it a second.
func signedOut(t *testing.T, a *ownerApp, token, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		got, _ := a.do("GET", "/whoami", token, "")
		if got == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %q", what, got)
		}
		time.Sleep(time.Millisecond)
	}
}
