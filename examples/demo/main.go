// Command demo serves a small site whose sessions are typed structs.
//
//	go run ./examples/demo [-addr 127.0.0.1:8080]
//	    [-store memory|cookie|valkey|postgres|sqlite] [-valkey ADDR]
//	    [-valkey-cache DURATION] [-dsn URL|FILE] [-codec msgpack|json]
//	    [-idle 30m] [-lifetime 24h] [-insecure]
//
// -store valkey keeps sessions in the Valkey (or Redis) server at -valkey,
// with -valkey-cache above zero serving reads from a client-side cache for at
// most that long. -store postgres keeps them in the PostgreSQL database whose
// connection URL -dsn gives (postgres://user:password@host:5432/db), -store
// sqlite in the SQLite file whose path -dsn gives; either creates the tables
// when they are missing.
//
// Keys come from SESSION_KEYS, comma-separated hex 32-byte keys, the first of
// which seals; without it a random key is made for this run, except with
// -store valkey or -store postgres, where several instances share the store
// and the demo refuses to start without it. With -store sqlite a random key
// works too, but the sessions it sealed stay in the file unreadable once the
// demo stops: set SESSION_KEYS to keep them across restarts, or to share the
// file between processes.
//
// Routes, all answering JSON:
//
//	GET  /        increments the session's counter, losing no concurrent
//	              increment (Manager.Update): {"counter": n}
//	GET  /whoami  reads only: {"user": name, "counter": n, "note": text}
//	POST /login   form field user; regenerates the token and binds the
//	              session to the user: {"user": name}
//	POST /logout  destroys the session: {"user": ""}
//	GET  /slow?ms=N[&read=1]  loads the session, waits N ms (0..2000), then
//	              increments the counter through plain Get: {"counter": n};
//	              with read=1 it changes nothing and answers as /whoami
//	POST /note    form field text; sets the note: {"note": text}
//	GET  /sessions           the logged-in user's live sessions, newest first:
//	              {"sessions": [{"current", "created", "last_seen", "expires",
//	              "user_agent"}]}; 401 when not logged in, 501 with -store cookie
//	POST /logout-others      revokes the user's other sessions: {"revoked": n}
//	POST /logout-everywhere  revokes all of them, this one included: {"revoked": n}
//
// A change that conflicts with a concurrent request's answers 409.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/sqlstore"
	"github.com/typedsession/session/store/valkeystore"
	"github.com/valkey-io/valkey-go"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for -store postgres
	_ "modernc.org/sqlite"             // the "sqlite" driver (pure Go, no cgo), for -store sqlite
)

// Sess is the demo's session payload.
type Sess struct {
	User    string `json:"user" msgpack:"user"`
	Counter int64  `json:"counter" msgpack:"counter"`
	Note    string `json:"note" msgpack:"note"`
}

type config struct {
	addr        string
	store       string
	valkey      string
	valkeyCache time.Duration
	dsn         string
	codec       string
	idle        time.Duration
	lifetime    time.Duration
	insecure    bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address")
	flag.StringVar(&cfg.store, "store", "memory", "session store: memory, cookie, valkey, postgres or sqlite")
	flag.StringVar(&cfg.valkey, "valkey", "127.0.0.1:6379", "Valkey (or Redis) address for -store valkey")
	flag.DurationVar(&cfg.valkeyCache, "valkey-cache", 0, "with -store valkey, serve reads from a client-side cache for at most this long (0 = off)")
	flag.StringVar(&cfg.dsn, "dsn", "", "PostgreSQL connection URL for -store postgres, or SQLite file path for -store sqlite")
	flag.StringVar(&cfg.codec, "codec", "msgpack", "payload codec: msgpack or json")
	flag.DurationVar(&cfg.idle, "idle", 30*time.Minute, "idle timeout (0 = off)")
	flag.DurationVar(&cfg.lifetime, "lifetime", 24*time.Hour, "absolute session lifetime")
	flag.BoolVar(&cfg.insecure, "insecure", false, "omit the cookie's Secure attribute (plain-http development)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("demo", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if not nil, receives the bound address.
func run(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	h, closeStore, err := build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving", "addr", "http://"+ln.Addr().String(), "store", cfg.store, "codec", cfg.codec)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		// Connections still busy (or opened and never used, as browsers
		// open them speculatively) after the grace period: cut them.
		logger.Warn("closing connections still open after 5s", "err", err)
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// build assembles the demo's handler from its flags. The function it returns
// closes the store, once the server has stopped.
func build(ctx context.Context, cfg config, logger *slog.Logger) (http.Handler, func(), error) {
	ring, err := keys(logger, cfg.store)
	if err != nil {
		return nil, nil, err
	}
	var cdc codec.Codec
	switch cfg.codec {
	case "msgpack":
		cdc = codec.MsgPack()
	case "json":
		cdc = codec.JSON()
	default:
		return nil, nil, fmt.Errorf("-codec %q: want msgpack or json", cfg.codec)
	}
	st, closeStore, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	mgr, err := session.New[Sess](st, session.Options{
		Codec:       cdc,
		Cipher:      ring,
		Lifetime:    cfg.lifetime,
		IdleTimeout: cfg.idle,
		Cookie:      session.Cookie{InsecureNoSecure: cfg.insecure},
		DeviceHints: session.DeviceHints{UserAgent: true}, // shown by /sessions
	})
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return middleware.New(mgr, middleware.Options{ErrorHandler: errorJSON(logger)})(routes(mgr)), closeStore, nil
}

// keys returns the key ring from SESSION_KEYS, or one random key for a
// store that no other process shares.
func keys(logger *slog.Logger, storeName string) (*cipher.Ring, error) {
	if s := os.Getenv("SESSION_KEYS"); s != "" {
		r, err := cipher.ParseKeys(s)
		if err != nil {
			return nil, fmt.Errorf("SESSION_KEYS: %w", err)
		}
		return r, nil
	}
	switch storeName {
	case "valkey", "postgres":
		// A random key here would make every other instance's records
		// unreadable to this one, and this one's to them.
		return nil, fmt.Errorf("-store %s needs SESSION_KEYS (comma-separated hex 32-byte keys, e.g. from `openssl rand -hex 32`), the same on every instance sharing the store", storeName)
	case "sqlite":
		// A local file, which one process at a time uses in the common
		// case; but the file outlives the key, so say what that costs.
		logger.Warn("SESSION_KEYS is unset: using a random key, so the sessions kept in the file cannot be read once the demo stops")
	default:
		logger.Warn("SESSION_KEYS is unset: using a random key, so sessions end when the demo stops")
	}
	return cipher.NewRing(cipher.NewKey())
}

// openStore returns the store -store names and the function that closes it.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (store.Backend, func(), error) {
	switch cfg.store {
	case "memory":
		s := memstore.New(memstore.Options{})
		return s, func() { s.Close() }, nil
	case "cookie":
		return cookiestore.New(cookiestore.Options{}), func() {}, nil
	case "valkey":
		if cfg.valkeyCache < 0 {
			return nil, nil, fmt.Errorf("-valkey-cache %v: want 0 (off) or more", cfg.valkeyCache)
		}
		c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{cfg.valkey}})
		if err != nil {
			return nil, nil, fmt.Errorf("-valkey %s: %w", cfg.valkey, err)
		}
		// A request's context has no deadline of its own: bound each command
		// so a server that is down answers with an error, not a hang.
		return valkeystore.New(c, valkeystore.Options{Timeout: time.Second, CacheTTL: cfg.valkeyCache}), c.Close, nil
	case "postgres", "sqlite":
		return openSQL(ctx, cfg, logger)
	}
	return nil, nil, fmt.Errorf("-store %q: want memory, cookie, valkey, postgres or sqlite", cfg.store)
}

// sqliteSettings are the settings sqlstore's documentation gives for a
// SQLite file: the busy timeout first (the pragmas run in order on each new
// connection, and switching a fresh file to WAL while another connection does
// the same fails at once without one), WAL so that reads run during a write,
// commits that do not wait for fsync, and transactions that take the write
// lock when they begin.
const sqliteSettings = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// openSQL opens the database -dsn names and creates the session tables in
// it when they are missing. The function it returns stops the store's
// sweeper, then closes the database.
func openSQL(ctx context.Context, cfg config, logger *slog.Logger) (store.Backend, func(), error) {
	driver, dsn, dialect := "pgx", cfg.dsn, sqlstore.PostgreSQL
	switch {
	case cfg.dsn == "" && cfg.store == "postgres":
		return nil, nil, errors.New("-store postgres needs -dsn, a connection URL such as postgres://user:password@127.0.0.1:5432/db")
	case cfg.dsn == "":
		return nil, nil, errors.New("-store sqlite needs -dsn, the path of the database file (made when missing)")
	case cfg.store == "sqlite" && strings.ContainsAny(cfg.dsn, "?#"):
		// They would end the path and start the driver's settings.
		return nil, nil, fmt.Errorf("-dsn %q: want a SQLite file path, without ? or #", cfg.dsn)
	case cfg.store == "sqlite":
		driver, dsn, dialect = "sqlite", "file:"+cfg.dsn+sqliteSettings, sqlstore.SQLite
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("-store %s: %w", cfg.store, err)
	}
	// A small pool, all of it kept open: with the default of 2 idle
	// connections every burst of requests would open connections and close
	// them again, and opening many at once is slow (PostgreSQL starts a
	// process for each; 32 at once took 0.8 s here, near the 1 s bound below,
	// 8 took 0.2 s). Requests beyond 8 wait for a connection, which a
	// statement of a millisecond or less soon frees.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	// Bound each call, as for Valkey; the sweeper's failures go to the log.
	opts := sqlstore.Options{Dialect: dialect, Timeout: time.Second, Logger: logger}
	start, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// CreateSchema does nothing when the tables are there (and on PostgreSQL
	// holds a lock, so instances starting together do not collide): the
	// demo runs it at every start.
	if err := sqlstore.CreateSchema(start, db, opts); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-store %s: %w", cfg.store, err)
	}
	st, err := sqlstore.New(start, db, opts)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-store %s: %w", cfg.store, err)
	}
	return st, func() {
		st.Close()
		db.Close()
	}, nil
}

func routes(mgr *session.Manager[Sess]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		err := mgr.Update(r, func(s *Sess) error {
			s.Counter++
			return nil
		})
		if !answered(w, err) {
			reply(w, http.StatusOK, map[string]any{"counter": mgr.Get(r).Counter})
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		reply(w, http.StatusOK, map[string]any{"user": s.User, "counter": s.Counter, "note": s.Note})
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.FormValue("ms"))
		if err != nil || ms < 0 || ms > 2000 {
			reply(w, http.StatusBadRequest, map[string]any{"error": "ms must be an integer from 0 to 2000"})
			return
		}
		s := mgr.Get(r)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		if r.FormValue("read") == "1" {
			reply(w, http.StatusOK, map[string]any{"user": s.User, "counter": s.Counter, "note": s.Note})
			return
		}
		s.Counter++ // plain Get: merged at commit, or a 409 if another request changed the counter
		reply(w, http.StatusOK, map[string]any{"counter": s.Counter})
	})
	mux.HandleFunc("POST /note", func(w http.ResponseWriter, r *http.Request) {
		text := r.FormValue("text")
		mgr.Get(r).Note = text
		reply(w, http.StatusOK, map[string]any{"note": text})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user")
		if user == "" {
			reply(w, http.StatusBadRequest, map[string]any{"error": "form field user is required"})
			return
		}
		// Login regenerates the token and binds the session to its owner.
		if err := mgr.Login(r, user); err != nil {
			failed(w, err)
			return
		}
		mgr.Get(r).User = user
		reply(w, http.StatusOK, map[string]any{"user": user})
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		_ = mgr.Destroy(r)
		reply(w, http.StatusOK, map[string]any{"user": ""})
	})
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		owner, ok := loggedIn(w, r, mgr)
		if !ok {
			return
		}
		list, err := mgr.Sessions(r.Context(), owner)
		if err != nil {
			failed(w, err)
			return
		}
		out := []map[string]any{}
		for _, d := range list {
			out = append(out, map[string]any{
				"current":    d.Current,
				"created":    d.Created.UTC().Format(time.RFC3339),
				"last_seen":  d.LastSeen.UTC().Format(time.RFC3339),
				"expires":    d.Expires.UTC().Format(time.RFC3339),
				"user_agent": d.UserAgent,
			})
		}
		reply(w, http.StatusOK, map[string]any{"sessions": out})
	})
	mux.HandleFunc("POST /logout-others", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := loggedIn(w, r, mgr); !ok {
			return
		}
		n, err := mgr.RevokeOthers(r)
		if err != nil {
			failed(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"revoked": n})
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		owner, ok := loggedIn(w, r, mgr)
		if !ok {
			return
		}
		n, err := mgr.RevokeAll(r.Context(), owner)
		if err != nil {
			failed(w, err)
			return
		}
		_ = mgr.Destroy(r) // and this browser's cookie
		reply(w, http.StatusOK, map[string]any{"revoked": n})
	})
	return mux
}

// loggedIn returns the owner of the request's session, or answers 401 and
// reports false.
func loggedIn(w http.ResponseWriter, r *http.Request, mgr *session.Manager[Sess]) (string, bool) {
	info, err := mgr.Info(r)
	switch {
	case err != nil:
		return "", false // the middleware's error handler answers
	case info.Owner == "":
		reply(w, http.StatusUnauthorized, map[string]any{"error": "not logged in"})
		return "", false
	}
	return info.Owner, true
}

// failed answers an error of the session's per-owner calls.
func failed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, session.ErrNoIndex):
		reply(w, http.StatusNotImplemented, map[string]any{"error": "this store keeps nothing on the server to list or revoke"})
	case errors.Is(err, session.ErrNotBound):
		reply(w, http.StatusUnauthorized, map[string]any{"error": "not logged in"})
	case errors.Is(err, session.ErrConflict):
		reply(w, http.StatusConflict, map[string]any{"error": "the session changed concurrently; try again"})
	default:
		reply(w, http.StatusInternalServerError, map[string]any{"error": "session failed"})
	}
}

// answered answers a failed Update and reports whether it did. A load
// failure is left to the middleware's error handler, which answers it.
func answered(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, session.ErrConflict):
		reply(w, http.StatusConflict, map[string]any{"error": "the session changed concurrently; try again"})
	case errors.Is(err, session.ErrStore):
	default:
		reply(w, http.StatusInternalServerError, map[string]any{"error": "session failed"})
	}
	return true
}

// errorJSON answers a session that could not be loaded or saved in JSON,
// like every other answer: 409 for a conflict, 500 for a store failure.
func errorJSON(logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		code, msg := http.StatusInternalServerError, "the session store failed"
		if errors.Is(err, session.ErrConflict) {
			code, msg = http.StatusConflict, "the session changed concurrently; try again"
		}
		logger.WarnContext(r.Context(), "session failed", "err", err, "method", r.Method, "path", r.URL.Path)
		reply(w, code, map[string]any{"error": msg})
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
