package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// startDemo runs the demo as main would, on a free port, until the test ends.
func startDemo(t *testing.T, cfg config) string {
	t.Helper()
	base, _ := startStoppable(t, cfg)
	return base
}

// startStoppable is startDemo, and returns as well a function that stops
// the demo before the test ends, as SIGTERM would, and waits until it has.
func startStoppable(t *testing.T, cfg config) (base string, stop func()) {
	t.Helper()
	cfg.addr = "127.0.0.1:0"
	cfg.insecure = true // plain http in tests; the Secure attribute is tested elsewhere
	if cfg.codec == "" {
		cfg.codec = "msgpack"
	}
	if cfg.store == "" {
		cfg.store = "memory"
	}
	if cfg.lifetime == 0 {
		cfg.lifetime = 24 * time.Hour
	}
	if cfg.store == "valkey" || cfg.store == "postgres" {
		t.Setenv("SESSION_KEYS", strings.Repeat("3c", 32))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- run(ctx, cfg, logger, ready) }()
	select {
	case addr := <-ready:
		stop = sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo did not stop cleanly: %v", err)
			}
		})
		t.Cleanup(stop)
		return "http://" + addr, stop
	case err := <-done:
		cancel()
		t.Fatalf("demo failed to start: %v", err)
	}
	return "", nil
}

// needEnv returns the environment variable env, or skips the test when it
// is unset, failing it under CI=true, where a missing server is a failure.
func needEnv(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: under CI=true a missing server is a failure", env)
		}
		t.Skipf("set %s or run `make test`, which starts a throwaway server", env)
	}
	return v
}

// postgresDSN returns PG_DSN, which must name a server on the loopback
// interface, with a schema of the test's own first on its search_path, so
// that runs against a long-lived server see none of one another's sessions.
// The schema is dropped when the test ends, after the demo has stopped.
func postgresDSN(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(needEnv(t, "PG_DSN"))
	if err != nil {
		t.Fatalf("PG_DSN: %v", err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Fatalf("PG_DSN: host %q is not a loopback address; the tests only use local servers", u.Hostname())
	}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "demo_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

type demoClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (d demoClient) call(method, path string, form url.Values) (int, map[string]any, http.Header) {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := d.c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" && res.StatusCode < 500 {
		d.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body, res.Header
}

func TestDemoContract(t *testing.T) {
	for _, cfg := range []config{
		{codec: "msgpack", store: "memory"},
		{codec: "json", store: "memory", idle: time.Minute},
		{codec: "msgpack", store: "cookie"},
		{codec: "json", store: "valkey"},
		{codec: "msgpack", store: "valkey", valkeyCache: time.Minute},
		{codec: "json", store: "postgres"},
		{codec: "msgpack", store: "sqlite"},
	} {
		name := cfg.codec + "/" + cfg.store
		if cfg.valkeyCache > 0 {
			name += "+cache"
		}
		t.Run(name, func(t *testing.T) {
			switch cfg.store {
			case "valkey":
				cfg.valkey = needEnv(t, "VALKEY_ADDR")
			case "postgres":
				cfg.dsn = postgresDSN(t)
			case "sqlite":
				cfg.dsn = filepath.Join(t.TempDir(), "demo.db")
			}
			base := startDemo(t, cfg)
			jar, _ := cookiejar.New(nil)
			d := demoClient{t, base, &http.Client{Jar: jar}}
			defer d.c.CloseIdleConnections()

			code, body, h := d.call("GET", "/whoami", nil)
			if code != 200 || h.Get("Set-Cookie") != "" {
				t.Fatalf("first whoami: %d, Set-Cookie %q", code, h.Get("Set-Cookie"))
			}
			if diff := cmp.Diff(map[string]any{"user": "", "counter": 0.0, "note": ""}, body); diff != "" {
				t.Fatalf("whoami (-want +got):\n%s", diff)
			}
			for want := 1.0; want <= 2; want++ {
				if _, body, _ := d.call("GET", "/", nil); body["counter"] != want {
					t.Fatalf("GET / = %v, want counter %v", body, want)
				}
			}
			if code, _, _ := d.call("POST", "/login", nil); code != http.StatusBadRequest {
				t.Fatalf("login without user: %d, want 400", code)
			}
			if code, _, _ := d.call("POST", "/login", url.Values{"user": {""}}); code != http.StatusBadRequest {
				t.Fatalf("login with an empty user: %d, want 400", code)
			}
			if _, body, _ := d.call("POST", "/login", url.Values{"user": {"ann"}}); !cmp.Equal(body, map[string]any{"user": "ann"}) {
				t.Fatalf("login = %v", body)
			}
			if _, body, _ := d.call("GET", "/whoami", nil); !cmp.Equal(body, map[string]any{"user": "ann", "counter": 2.0, "note": ""}) {
				t.Fatalf("whoami after login = %v", body)
			}
			if _, body, _ := d.call("POST", "/note", url.Values{"text": {"hi"}}); !cmp.Equal(body, map[string]any{"note": "hi"}) {
				t.Fatalf("note = %v", body)
			}
			if _, body, _ := d.call("GET", "/slow?ms=0&read=1", nil); !cmp.Equal(body, map[string]any{"user": "ann", "counter": 2.0, "note": "hi"}) {
				t.Fatalf("slow read = %v", body)
			}
			if _, body, _ := d.call("GET", "/slow?ms=1", nil); !cmp.Equal(body, map[string]any{"counter": 3.0}) {
				t.Fatalf("slow = %v", body)
			}
			for _, ms := range []string{"-1", "2001", "x", ""} {
				if code, _, _ := d.call("GET", "/slow?ms="+ms, nil); code != http.StatusBadRequest {
					t.Fatalf("slow?ms=%s: %d, want 400", ms, code)
				}
			}
			if cfg.store != "cookie" {
				// Concurrent increments of one session all count.
				const n = 64
				done := make(chan int, n)
				for range n {
					go func() {
						code, _, _ := d.call("GET", "/", nil)
						done <- code
					}()
				}
				for range n {
					if code := <-done; code != 200 {
						t.Errorf("a concurrent increment answered %d", code)
					}
				}
				if _, body, _ := d.call("GET", "/whoami", nil); body["counter"] != 3.0+n {
					t.Fatalf("after %d concurrent increments: %v", n, body)
				}
			}
			// Devices: a second browser logs in as ann too.
			jar2, _ := cookiejar.New(nil)
			other := demoClient{t, base, &http.Client{Jar: jar2}}
			defer other.c.CloseIdleConnections()
			if code, _, _ := other.call("GET", "/sessions", nil); code != http.StatusUnauthorized {
				t.Fatalf("sessions when not logged in: %d, want 401", code)
			}
			if code, _, _ := other.call("POST", "/logout-others", nil); code != http.StatusUnauthorized {
				t.Fatalf("logout-others when not logged in: %d, want 401", code)
			}
			other.call("POST", "/login", url.Values{"user": {"ann"}})
			code, body, _ = d.call("GET", "/sessions", nil)
			if cfg.store == "cookie" {
				if code != http.StatusNotImplemented || body["error"] == nil {
					t.Fatalf("sessions with the cookie store: %d %v, want 501 with an error", code, body)
				}
			} else {
				list, _ := body["sessions"].([]any)
				if code != 200 || len(list) != 2 {
					t.Fatalf("sessions: %d %v, want 2", code, body)
				}
				first, _ := list[0].(map[string]any)
				for _, k := range []string{"current", "created", "last_seen", "expires", "user_agent"} {
					if _, ok := first[k]; !ok {
						t.Fatalf("a session lacks %q: %v", k, first)
					}
				}
				if _, err := time.Parse(time.RFC3339, first["created"].(string)); err != nil {
					t.Fatalf("created %v: %v", first["created"], err)
				}
				current := 0
				for _, e := range list {
					if e.(map[string]any)["current"] == true {
						current++
					}
				}
				if current != 1 {
					t.Fatalf("%d sessions marked current", current)
				}
				if _, body, _ := d.call("POST", "/logout-others", nil); body["revoked"] != 1.0 {
					t.Fatalf("logout-others = %v, want 1 revoked", body)
				}
				if _, body, _ := other.call("GET", "/whoami", nil); body["user"] != "" {
					t.Fatalf("the other browser after logout-others: %v", body)
				}
				if _, body, _ := d.call("GET", "/whoami", nil); body["user"] != "ann" {
					t.Fatalf("this browser after logout-others: %v", body)
				}
				other.call("POST", "/login", url.Values{"user": {"ann"}})
				code, body, h := d.call("POST", "/logout-everywhere", nil)
				if code != 200 || body["revoked"] != 2.0 || !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
					t.Fatalf("logout-everywhere = %d %v, Set-Cookie %q; want 2 revoked and the cookie expired", code, body, h.Get("Set-Cookie"))
				}
				if _, body, _ := other.call("GET", "/whoami", nil); body["user"] != "" {
					t.Fatalf("the other browser after logout-everywhere: %v", body)
				}
				d.call("POST", "/login", url.Values{"user": {"ann"}})
			}
			if _, body, _ := d.call("POST", "/logout", nil); !cmp.Equal(body, map[string]any{"user": ""}) {
				t.Fatalf("logout = %v", body)
			}
			if _, body, _ := d.call("GET", "/whoami", nil); !cmp.Equal(body, map[string]any{"user": "", "counter": 0.0, "note": ""}) {
				t.Fatalf("whoami after logout = %v", body)
			}
		})
	}
}

func TestDemoKeys(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("SESSION_KEYS", strings.Repeat("ab", 32)+","+strings.Repeat("cd", 32))
	if _, err := keys(discard, "memory"); err != nil {
		t.Fatalf("two valid keys: %v", err)
	}
	for _, bad := range []string{"zz", strings.Repeat("00", 32), strings.Repeat("ab", 16)} {
		t.Setenv("SESSION_KEYS", bad)
		_, err := keys(discard, "memory")
		if err == nil {
			t.Errorf("SESSION_KEYS=%q accepted", bad)
		} else if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q repeats the key", err)
		}
	}
	os.Unsetenv("SESSION_KEYS")
	// A store no other process shares works with a random key.
	for _, private := range []string{"memory", "cookie", "sqlite"} {
		if _, err := keys(discard, private); err != nil {
			t.Fatalf("no SESSION_KEYS with -store %s: %v, want a random key", private, err)
		}
	}
	// Shared ones refuse, before they connect to anything.
	for _, cfg := range []config{
		{store: "valkey", valkey: "127.0.0.1:1"},
		{store: "postgres", dsn: "postgres://demo@127.0.0.1:1/demo"},
	} {
		cfg.codec, cfg.lifetime = "msgpack", time.Hour
		err := run(context.Background(), cfg, discard, nil)
		if err == nil || !strings.Contains(err.Error(), "SESSION_KEYS") || !strings.Contains(err.Error(), "-store "+cfg.store) {
			t.Errorf("run -store %s without SESSION_KEYS: %v, want a refusal naming SESSION_KEYS", cfg.store, err)
		}
	}
}

// TestDemoSQLiteRestart stops the demo and starts it again on the same
// SQLite file: with SESSION_KEYS the session goes on; without, the record
// left in the file cannot be opened and the visitor starts afresh, as the
// demo's documentation says.
func TestDemoSQLiteRestart(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		t.Run(map[bool]string{true: "SESSION_KEYS", false: "random key"}[keyed], func(t *testing.T) {
			if keyed {
				t.Setenv("SESSION_KEYS", strings.Repeat("7e", 32))
			} else {
				t.Setenv("SESSION_KEYS", "")
			}
			cfg := config{store: "sqlite", dsn: filepath.Join(t.TempDir(), "demo.db")}
			jar, _ := cookiejar.New(nil) // cookies do not depend on the port
			base, stop := startStoppable(t, cfg)
			d := demoClient{t, base, &http.Client{Jar: jar}}
			d.call("GET", "/", nil)
			if _, body, _ := d.call("GET", "/", nil); body["counter"] != 2.0 {
				t.Fatalf("GET / = %v, want counter 2", body)
			}
			d.c.CloseIdleConnections()
			stop()

			d.base, _ = startStoppable(t, cfg)
			defer d.c.CloseIdleConnections()
			want := map[bool]float64{true: 3, false: 1}[keyed]
			if code, body, _ := d.call("GET", "/", nil); code != 200 || body["counter"] != want {
				t.Fatalf("GET / after the restart = %d %v, want counter %v", code, body, want)
			}
		})
	}
}

func TestDemoBadFlags(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("SESSION_KEYS", strings.Repeat("3c", 32)) // so that each fails for its own reason
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  config
		want string // in the error
	}{
		{config{store: "disk", codec: "msgpack"}, "-store"},
		{config{store: "memory", codec: "xml"}, "-codec"},
		{config{store: "memory", codec: "json", idle: -time.Second}, "IdleTimeout"},
		{config{store: "valkey", valkey: "127.0.0.1:1", valkeyCache: -time.Second, codec: "msgpack"}, "-valkey-cache"},
		{config{store: "postgres", codec: "msgpack"}, "-dsn"},
		{config{store: "sqlite", codec: "msgpack"}, "-dsn"},
		{config{store: "sqlite", dsn: filepath.Join(dir, "demo.db?mode=ro"), codec: "msgpack"}, "-dsn"},
		{config{store: "sqlite", dsn: filepath.Join(dir, "missing", "demo.db"), codec: "msgpack"}, "-store sqlite"},
	} {
		c.cfg.lifetime = time.Hour
		if err := run(context.Background(), c.cfg, logger, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%+v) = %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
}

// TestDemoBinarySIGTERM builds the demo and checks that it serves and then
// exits cleanly on SIGTERM, as the contract says.
func TestDemoBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	// Build it as the README runs it, from the repository's root through
	// go.work, even when GOWORK=off (as make sets it): that is what keeps
	// `go run ./examples/demo` working there.
	build := exec.Command("go", "build", "-o", bin, ".")
	if root, err := filepath.Abs(filepath.Join("..", "..")); err == nil {
		if work := filepath.Join(root, "go.work"); exists(work) {
			build = exec.Command("go", "build", "-o", bin, "./examples/demo")
			build.Dir = root
			build.Env = append(os.Environ(), "GOWORK="+work)
		}
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build.Args, err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-insecure")
	cmd.Env = append(os.Environ(), "SESSION_KEYS="+strings.Repeat("5a", 32))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var base string
	for base == "" && lines.Scan() {
		if _, addr, ok := strings.Cut(lines.Text(), "addr=http://"); ok {
			base = "http://" + strings.Fields(addr)[0]
		}
	}
	if base == "" {
		t.Fatal("the demo never said where it serves")
	}
	go io.Copy(io.Discard, stderr)
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if body["counter"] != 1.0 {
		t.Fatalf("GET / = %v", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo still running 10s after SIGTERM")
	}
}

// exists reports whether the file name is there.
func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
