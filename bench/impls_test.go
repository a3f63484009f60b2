package bench

import (
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	"github.com/valkey-io/valkey-go"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
	ourmem "github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/sqlstore"
	"github.com/typedsession/session/store/valkeystore"
)

// lib is one implementation as the benchmarks drive it: a middleware, and
// how a handler loads and saves the payload through it. load returns the
// zero Sess when the request has no session.
type lib struct {
	wrap func(http.Handler) http.Handler
	load func(w http.ResponseWriter, r *http.Request) Sess
	save func(w http.ResponseWriter, r *http.Request, v Sess)

	// trips counts the round trips to the database, where they are counted
	// (the SQL stores); nil elsewhere.
	trips *atomic.Int64
}

// impl names an implementation. Names are what benchstat groups by
// (impl=NAME in the benchmark's name).
type impl struct {
	name  string
	env   string // the environment variable naming the server it needs, if any
	build func(tb testing.TB) lib
}

var (
	key32   = []byte("0123456789abcdef0123456789abcdef")
	hashKey = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
)

func impls() []impl {
	return []impl{
		{name: "bare", build: bareLib},
		{name: "floor", build: floorLib},
		{name: "typedsession-memory", build: func(tb testing.TB) lib {
			s := ourmem.New(ourmem.Options{})
			tb.Cleanup(func() { s.Close() })
			return ours(tb, s, nil)
		}},
		{name: "typedsession-cookie", build: func(tb testing.TB) lib {
			return ours(tb, cookiestore.New(cookiestore.Options{}), ring(tb))
		}},
		{name: "typedsession-valkey", env: "VALKEY_ADDR", build: func(tb testing.TB) lib {
			return ours(tb, valkeyStore(tb, 0), nil)
		}},
		{name: "typedsession-valkey-cached", env: "VALKEY_ADDR", build: func(tb testing.TB) lib {
			return ours(tb, valkeyStore(tb, time.Minute), nil)
		}},
		{name: "typedsession-postgres", env: "PG_DSN", build: func(tb testing.TB) lib {
			return sqlStore(tb, openPostgres(tb), sqlstore.PostgreSQL)
		}},
		{name: "typedsession-sqlite", build: func(tb testing.TB) lib {
			return sqlStore(tb, openSQLite(tb), sqlstore.SQLite)
		}},
		{name: "scs-memory", build: func(tb testing.TB) lib {
			// No cleanup goroutine: scs's StopCleanup races with its start
			// (a data race under -race), and a run is shorter than its minute.
			return scsLib(memstore.NewWithCleanupInterval(0))
		}},
		{name: "scs-redis", env: "VALKEY_ADDR", build: func(tb testing.TB) lib {
			addr := os.Getenv("VALKEY_ADDR")
			pool := &redis.Pool{MaxIdle: 16, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
			tb.Cleanup(func() { pool.Close() })
			return scsLib(redisstore.New(pool))
		}},
		{name: "scs-postgres", env: "PG_DSN", build: func(tb testing.TB) lib {
			return scsSQL(tb, openPostgres(tb), true)
		}},
		{name: "scs-sqlite", build: func(tb testing.TB) lib {
			return scsSQL(tb, openSQLite(tb), false)
		}},
		{name: "gorilla-cookie", build: func(testing.TB) lib {
			cs := sessions.NewCookieStore(hashKey, key32)
			cs.Options.Secure, cs.Options.HttpOnly, cs.Options.SameSite = true, true, http.SameSiteLaxMode
			get := func(r *http.Request) *sessions.Session {
				s, _ := cs.Get(r, "sess") // a bad or missing cookie gives a new session
				return s
			}
			return lib{
				wrap: func(h http.Handler) http.Handler { return h },
				load: func(_ http.ResponseWriter, r *http.Request) Sess {
					v, _ := get(r).Values["sess"].(Sess)
					return v
				},
				save: func(w http.ResponseWriter, r *http.Request, v Sess) {
					s := get(r) // the request's registry hands back the same session
					s.Values["sess"] = v
					if err := s.Save(r, w); err != nil {
						panic(err)
					}
				},
			}
		}},
	}
}

// available returns the implementations this run can measure, in a random
// order when BENCH_SEED is set (run.sh sets a new one for each pass).
func available(tb testing.TB) []impl {
	var out []impl
	for _, im := range impls() {
		if im.env != "" && os.Getenv(im.env) == "" {
			continue
		}
		out = append(out, im)
	}
	if seed, err := strconv.ParseUint(os.Getenv("BENCH_SEED"), 10, 64); err == nil {
		rng := rand.New(rand.NewPCG(seed, seed))
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

func bareLib(testing.TB) lib {
	var kept Sess
	return lib{
		wrap: func(h http.Handler) http.Handler { return h },
		load: func(http.ResponseWriter, *http.Request) Sess { return kept },
		save: func(_ http.ResponseWriter, _ *http.Request, v Sess) { kept = v },
	}
}

func floorLib(testing.TB) lib {
	f := NewFloor()
	return lib{
		wrap: f.Wrap,
		load: func(_ http.ResponseWriter, r *http.Request) Sess { return *f.Get(r) },
		save: func(_ http.ResponseWriter, r *http.Request, v Sess) { *f.Get(r) = v },
	}
}

func ring(tb testing.TB) *cipher.Ring {
	r, err := cipher.NewRing(key32)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func ours(tb testing.TB, st store.Backend, c *cipher.Ring) lib {
	m, err := session.New[Sess](st, session.Options{Cipher: c})
	if err != nil {
		tb.Fatal(err)
	}
	return lib{
		wrap: middleware.New(m, middleware.Options{}),
		load: func(_ http.ResponseWriter, r *http.Request) Sess { return *m.Get(r) },
		save: func(_ http.ResponseWriter, r *http.Request, v Sess) { *m.Get(r) = v },
	}
}

func valkeyStore(tb testing.TB, cache time.Duration) store.Store {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{os.Getenv("VALKEY_ADDR")}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return valkeystore.New(c, valkeystore.Options{Prefix: "bench:", CacheTTL: cache})
}

func scsLib(st scs.Store) lib {
	sm := scs.New()
	sm.Store = st
	sm.Cookie.Secure = true
	return lib{
		wrap: sm.LoadAndSave,
		load: func(_ http.ResponseWriter, r *http.Request) Sess {
			v, _ := sm.Get(r.Context(), "sess").(Sess)
			return v
		},
		save: func(_ http.ResponseWriter, r *http.Request, v Sess) { sm.Put(r.Context(), "sess", v) },
	}
}

// The three requests measured. read loads a session and changes nothing;
// modify changes a field; create is a first visit that writes. read and
// modify create the session on a first visit, which is how they are seeded.
var ops = []struct {
	name    string
	seeded  bool
	handler func(l lib, seen *int64) http.Handler
}{
	{"read", true, func(l lib, seen *int64) http.Handler {
		return l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := l.load(w, r)
			if v.UserID == 0 {
				l.save(w, r, Full())
			}
			*seen = v.UserID + v.LastSeen
			w.WriteHeader(http.StatusOK)
		}))
	}},
	{"modify", true, func(l lib, seen *int64) http.Handler {
		return l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := l.load(w, r)
			if v.UserID == 0 {
				v = Full()
			}
			v.LastSeen++
			l.save(w, r, v)
			*seen = v.UserID + v.LastSeen
			w.WriteHeader(http.StatusOK)
		}))
	}},
	{"new", false, func(l lib, seen *int64) http.Handler {
		return l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := Full()
			l.save(w, r, v)
			*seen = v.UserID
			w.WriteHeader(http.StatusOK)
		}))
	}},
}

// sinkWriter is a ResponseWriter that costs nothing, so that the figures
// show the middleware and not a recorder.
type sinkWriter struct{ h http.Header }

func (w *sinkWriter) Header() http.Header         { return w.h }
func (w *sinkWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *sinkWriter) WriteHeader(int)             {}

func newRequest(cookie string) *http.Request {
	r, _ := http.NewRequest("GET", "https://example.com/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// serve runs h on a shallow copy of base: gorilla/sessions keeps a registry
// in the request it is given, so each request must be a fresh one (for all
// implementations alike).
func serve(h http.Handler, w *sinkWriter, base *http.Request) {
	clear(w.h)
	r := *base
	h.ServeHTTP(w, &r)
}

// cookieOf returns the name=value of the last Set-Cookie in h, or "".
func cookieOf(h http.Header) string {
	all := h.Values("Set-Cookie")
	if len(all) == 0 {
		return ""
	}
	nv, _, _ := strings.Cut(all[len(all)-1], ";")
	return nv
}
