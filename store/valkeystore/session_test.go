package valkeystore_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/sitetest"
	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/valkeystore"
)

// The end-to-end tests run the demo's routes through the manager and the
// middleware against a real server, standalone and cluster.

// site is the demo's routes on a key prefix of its own.
type site struct {
	*sitetest.Site
	t      *testing.T
	client valkey.Client
	prefix string
}

func newSite(t *testing.T, client valkey.Client, opts session.Options, vopts valkeystore.Options) *site {
	t.Helper()
	s := &site{t: t, client: client, prefix: uniquePrefix(t, client)}
	vopts.Prefix = s.prefix
	if vopts.Timeout == 0 {
		vopts.Timeout = 500 * time.Millisecond
	}
	s.Site = sitetest.New(t, valkeystore.New(client, vopts), sessiontest.NewClock(time.Now()), opts)
	return s
}

// keys lists the site's keys on the server, with SCAN.
func (s *site) keys() []string {
	return scanKeys(s.t, context.Background(), s.client, s.prefix)
}

// audit checks what a dump of the server would show: every key has a TTL,
// and no key or value holds a token the site handed out.
func (s *site) audit() {
	s.t.Helper()
	checkTTLs(s.t, s.client, s.prefix)
	ctx := context.Background()
	for _, k := range s.keys() {
		v, err := s.client.Do(ctx, s.client.B().Get().Key(k).Build()).AsBytes()
		if err != nil && !valkey.IsValkeyNil(err) {
			s.t.Fatal(err)
		}
		for _, tok := range s.Tokens() {
			if strings.Contains(k, tok) || bytes.Contains(v, []byte(tok)) {
				s.t.Errorf("key %s (or its value) contains a session token", k)
			}
		}
	}
}

// shortLived counts the keys that expire within RotationGrace: markers of
// retired tokens.
func (s *site) shortLived() int {
	s.t.Helper()
	n := 0
	for _, k := range s.keys() {
		ms, err := s.client.Do(context.Background(), s.client.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			s.t.Fatal(err)
		}
		if ms > 0 && ms <= session.DefaultRotationGrace.Milliseconds() {
			n++
		}
	}
	return n
}

func forEachServer(t *testing.T, f func(t *testing.T, client valkey.Client)) {
	t.Run("standalone", func(t *testing.T) { f(t, newClient(t, serverAddrs(t, envAddr))) })
	t.Run("cluster", func(t *testing.T) { f(t, newClient(t, serverAddrs(t, envClusterAddrs))) })
}

func TestSessionLifecycle(t *testing.T) {
	forEachServer(t, func(t *testing.T, client valkey.Client) {
		for _, cache := range []time.Duration{0, time.Minute} {
			t.Run("cache="+cache.String(), func(t *testing.T) {
				s := newSite(t, client, session.Options{}, valkeystore.Options{CacheTTL: cache})
				if a := s.Do("GET", "/whoami", nil); a.Code != 200 || a.SetCookie != "" || len(s.keys()) != 0 {
					t.Fatalf("anonymous read: %+v, %d keys; want no cookie and no key", a, len(s.keys()))
				}
				for want := 1; want <= 3; want++ {
					if a := s.Do("GET", "/", nil); a.Counter != want {
						t.Fatalf("counter = %d, want %d", a.Counter, want)
					}
				}
				before := s.Token()
				if a := s.Do("POST", "/login", url.Values{"user": {"ann"}}); a.User != "ann" || s.Token() == before {
					t.Fatalf("login: %+v; want a new token", a)
				}
				// The old key holds a marker of the rotation that lives for
				// RotationGrace only.
				if keys := s.keys(); len(keys) != 2 || s.shortLived() != 1 {
					t.Fatalf("after regenerate the server holds %d keys, %d short-lived; want the session and a marker", len(keys), s.shortLived())
				}
				if a := s.Do("GET", "/whoami", nil); a.User != "ann" || a.Counter != 3 {
					t.Fatalf("whoami after login = %+v", a)
				}
				s.audit()
				s.Do("POST", "/logout", nil)
				if keys := s.keys(); len(keys) != 1 || s.shortLived() != 1 {
					t.Fatalf("after logout the server holds %v; want only the login's marker", keys)
				}
				if a := s.Do("GET", "/whoami", nil); a.User != "" || a.Counter != 0 {
					t.Fatalf("after logout whoami = %+v", a)
				}
				if errs := s.Srv.Errors(); len(errs) != 0 {
					t.Fatalf("errors: %v", errs)
				}
			})
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	forEachServer(t, func(t *testing.T, client valkey.Client) {
		s := newSite(t, client, session.Options{Lifetime: time.Hour, IdleTimeout: 20 * time.Minute}, valkeystore.Options{})
		s.Do("GET", "/", nil)
		pttl := func() time.Duration {
			keys := s.keys()
			if len(keys) != 1 {
				t.Fatalf("server holds %d keys, want 1", len(keys))
			}
			ms, err := client.Do(context.Background(), client.B().Pttl().Key(keys[0]).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			return time.Duration(ms) * time.Millisecond
		}
		if d := pttl(); d <= 19*time.Minute || d > 20*time.Minute {
			t.Fatalf("TTL %v, want the idle timeout", d)
		}
		// Idle: the server's copy outlives the manager's clock here, so the
		// sealed deadline is what ends the session.
		s.Clock.Advance(21 * time.Minute)
		if a := s.Do("GET", "/whoami", nil); a.Counter != 0 {
			t.Fatalf("idle session alive: %+v", a)
		}
		if keys := s.keys(); len(keys) != 0 {
			t.Fatalf("the expired record was not deleted: %v", keys)
		}
		// Absolute: activity every 10 minutes does not get past an hour.
		s.Do("GET", "/", nil)
		for range 5 {
			s.Clock.Advance(10 * time.Minute)
			if a := s.Do("GET", "/whoami", nil); a.Counter != 1 {
				t.Fatalf("active session lost: %+v", a)
			}
		}
		s.Clock.Advance(10 * time.Minute)
		if a := s.Do("GET", "/whoami", nil); a.Counter != 0 {
			t.Fatalf("session outlived its absolute lifetime: %+v", a)
		}
		s.audit()
	})
}

// TestSessionStoreDown: a frozen server makes requests fail promptly through
// the error handler, with no cookie and no write over the stored session; a
// killed and restarted one serves again without rebuilding the client.
func TestSessionStoreDown(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, []string{srv.addr()})
	s := newSite(t, client, session.Options{}, valkeystore.Options{Timeout: 300 * time.Millisecond})
	s.Do("POST", "/login", url.Values{"user": {"bo"}})
	s.Do("GET", "/", nil)
	keys := s.keys()
	ctx := context.Background()
	stored, err := client.Do(ctx, client.B().Get().Key(keys[0]).Build()).AsBytes()
	if err != nil {
		t.Fatal(err)
	}

	srv.signal(syscall.SIGSTOP)
	for _, path := range []string{"/", "/whoami"} {
		start := time.Now()
		a := s.Do("GET", path, nil)
		if a.Code != http.StatusServiceUnavailable || a.SetCookie != "" {
			t.Fatalf("GET %s with the server frozen: %+v; want the error handler and no cookie", path, a)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("GET %s took %v with the server frozen", path, d)
		}
	}
	srv.signal(syscall.SIGCONT)
	if got, err := client.Do(ctx, client.B().Get().Key(keys[0]).Build()).AsBytes(); err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("the stored session changed while the server was frozen (err %v)", err)
	}
	if a := s.Do("GET", "/", nil); a.Code != 200 || a.Counter != 2 {
		t.Fatalf("after the server woke: %+v", a)
	}
	for _, err := range s.Srv.Errors() {
		if !errors.Is(err, session.ErrStore) {
			t.Errorf("error %v does not match session.ErrStore", err)
		}
	}

	srv.kill()
	if a := s.Do("GET", "/", nil); a.Code != http.StatusServiceUnavailable || a.SetCookie != "" {
		t.Fatalf("with the server gone: %+v", a)
	}
	srv.start()
	poll(t, 5*time.Second, "the site did not recover after the server restarted", func() bool {
		return s.Do("GET", "/", nil).Code == 200
	})
}

// TestSessionServerFull: a server refusing writes issues no new cookie.
func TestSessionServerFull(t *testing.T) {
	srv := startServer(t, "--maxmemory-policy", "noeviction")
	client := newClient(t, []string{srv.addr()})
	s := newSite(t, client, session.Options{}, valkeystore.Options{})
	s.Do("POST", "/login", url.Values{"user": {"cy"}})
	old := s.Token()
	ctx := context.Background()
	// Fill the server up to a limit just above what it uses.
	if err := client.Do(ctx, client.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	a := s.Do("POST", "/login", url.Values{"user": {"dee"}})
	if a.Code != http.StatusServiceUnavailable || a.SetCookie != "" {
		t.Fatalf("login on a full server: %+v; want the error handler and no cookie", a)
	}
	if s.Token() != old {
		t.Fatal("the browser's cookie changed")
	}
	if err := client.Do(ctx, client.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "0").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if a := s.Do("GET", "/whoami", nil); a.User != "cy" {
		t.Fatalf("after the server has room again: %+v; want the old session", a)
	}
}

// TestSessionSchemaChange: a record written by an older payload type loads
// into the new one, or is dropped, never an error.
func TestSessionSchemaChange(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	st := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: time.Second})
	ctx := context.Background()
	type v1 struct {
		User  string
		Old   int
		Roles []string
	}
	type v2 struct {
		User  string
		Roles []string
		New   bool
	}
	type v3 struct{ User []int }
	m1, _ := session.New[v1](st, session.Options{})
	token := sessiontest.Seed(t, m1, v1{User: "ann", Old: 4, Roles: []string{"a"}})
	m2, _ := session.New[v2](st, session.Options{})
	if p, err := m2.Begin(ctx, token).Get(); err != nil || p.User != "ann" || len(p.Roles) != 1 || p.New {
		t.Fatalf("v1 record as v2: %+v, %v", p, err)
	}
	m3, _ := session.New[v3](st, session.Options{})
	for range 2 {
		if p, err := m3.Begin(ctx, token).Get(); err != nil || p.User != nil {
			t.Fatalf("incompatible record: %+v, %v; want an empty session", p, err)
		}
	}
	// Left alone: an instance still running v1 reads it.
	if keys := scanKeys(t, ctx, client, prefix); len(keys) != 1 {
		t.Fatalf("the undecodable record was deleted: %v", keys)
	}
}
