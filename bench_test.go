package session_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session"
	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/valkeystore"
)

// benchSess is the payload the figures are measured on.
type benchSess struct {
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
}

func fullSess() benchSess {
	return benchSess{
		UserID:   4211,
		Name:     "Ada Lovelace",
		Roles:    []string{"admin", "editor"},
		CSRF:     "k3J9f0aQz8LrT2vX5mN1pB7cY4wE6hGd",
		Cart:     []int64{101, 202, 303, 404, 505},
		LastSeen: 1764000000000,
	}
}

// benchWriter is a ResponseWriter that costs nothing, so the figures show the
// middleware and not the recorder.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

var benchKey = []byte("0123456789abcdef0123456789abcdef")

type benchSetup struct {
	name   string
	store  func(b *testing.B) store.Backend
	codec  codec.Codec
	cipher bool
}

func benchSetups() []benchSetup {
	mem := func(*testing.B) store.Backend { return memstore.New(memstore.Options{SweepInterval: -1}) }
	cookie := func(*testing.B) store.Backend { return cookiestore.New(cookiestore.Options{}) }
	setups := []benchSetup{
		{"mem/msgpack", mem, codec.MsgPack(), false},
		{"mem/msgpack/cipher", mem, codec.MsgPack(), true},
		{"mem/json", mem, codec.JSON(), false},
		{"mem/json/cipher", mem, codec.JSON(), true},
		{"cookie/msgpack", cookie, codec.MsgPack(), true},
		{"cookie/json", cookie, codec.JSON(), true},
	}
	// Against a real server when there is one (make bench-valkey, or
	// scripts/servers.sh run go test -bench ...).
	if addr := os.Getenv("VALKEY_ADDR"); addr != "" {
		vk := func(cache time.Duration) func(b *testing.B) store.Backend {
			return func(b *testing.B) store.Backend {
				c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Close)
				return valkeystore.New(c, valkeystore.Options{Prefix: "bench:", CacheTTL: cache})
			}
		}
		setups = append(setups,
			benchSetup{"valkey/msgpack/cipher", vk(0), codec.MsgPack(), true},
			benchSetup{"valkey/msgpack/cipher/cached", vk(time.Minute), codec.MsgPack(), true},
		)
	}
	return setups
}

func (s benchSetup) manager(b *testing.B) *session.Manager[benchSess] {
	b.Helper()
	opts := session.Options{Codec: s.codec}
	if s.cipher {
		r, err := cipher.NewRing(benchKey)
		if err != nil {
			b.Fatal(err)
		}
		opts.Cipher = r
	}
	m, err := session.New[benchSess](s.store(b), opts)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchRequest runs h once per iteration on a request carrying cookie.
func benchRequest(b *testing.B, h http.Handler, cookie string) {
	r, _ := http.NewRequest("GET", "https://example.com/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := &benchWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// seed runs one writing request and returns the cookie it set.
func seed(b *testing.B, h http.Handler) string {
	b.Helper()
	w := &benchWriter{h: make(http.Header)}
	r, _ := http.NewRequest("GET", "https://example.com/", nil)
	h.ServeHTTP(w, r)
	c := w.h.Get("Set-Cookie")
	name, rest, _ := strings.Cut(c, "=")
	value, _, _ := strings.Cut(rest, ";")
	if value == "" {
		b.Fatalf("seed request set no cookie: %q", c)
	}
	return name + "=" + value
}

// BenchmarkBare is the baseline: the same request without sessions.
func BenchmarkBare(b *testing.B) {
	var sink int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sink++
		w.WriteHeader(http.StatusOK)
	})
	benchRequest(b, h, "")
}

func BenchmarkRequest(b *testing.B) {
	for _, s := range benchSetups() {
		b.Run(s.name+"/read", func(b *testing.B) {
			m := s.manager(b)
			var writeOnce bool
			h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := m.Get(r)
				if !writeOnce {
					*p = fullSess()
					writeOnce = true
				}
				_ = p.UserID
				w.WriteHeader(http.StatusOK)
			}))
			benchRequest(b, h, seed(b, h))
		})
		b.Run(s.name+"/modify", func(b *testing.B) {
			m := s.manager(b)
			h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := m.Get(r)
				if p.UserID == 0 {
					*p = fullSess()
				}
				p.LastSeen++
				w.WriteHeader(http.StatusOK)
			}))
			benchRequest(b, h, seed(b, h))
		})
		b.Run(s.name+"/update", func(b *testing.B) {
			m := s.manager(b)
			h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				err := m.Update(r, func(p *benchSess) error {
					if p.UserID == 0 {
						*p = fullSess()
					}
					p.LastSeen++
					return nil
				})
				if err != nil {
					b.Error(err)
				}
				w.WriteHeader(http.StatusOK)
			}))
			benchRequest(b, h, seed(b, h))
		})
		b.Run(s.name+"/new", func(b *testing.B) {
			m := s.manager(b)
			h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				*m.Get(r) = fullSess()
				w.WriteHeader(http.StatusOK)
			}))
			benchRequest(b, h, "")
		})
	}
	b.Run("mem/msgpack/untouched", func(b *testing.B) {
		m := benchSetups()[0].manager(b)
		h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		}))
		benchRequest(b, h, "")
	})
}

func BenchmarkCodec(b *testing.B) {
	v := fullSess()
	for _, c := range []struct {
		name  string
		codec codec.Codec
	}{{"msgpack", codec.MsgPack()}, {"json", codec.JSON()}} {
		enc, err := c.codec.Append(nil, &v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 512)
			for b.Loop() {
				buf, _ = c.codec.Append(buf[:0], &v)
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out benchSess
				if err := c.codec.Unmarshal(enc, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCipher(b *testing.B) {
	r, err := cipher.NewRing(benchKey)
	if err != nil {
		b.Fatal(err)
	}
	v := fullSess()
	plain, _ := codec.MsgPack().Append(make([]byte, 26), &v)
	ad := []byte("an-associated-data-string-of-43-characters!")
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = r.Seal(buf[:0], plain, ad)
		}
	})
	b.Run("open", func(b *testing.B) {
		sealed := r.Seal(nil, plain, ad)
		work := make([]byte, len(sealed))
		b.ReportAllocs()
		for b.Loop() {
			copy(work, sealed) // Open decrypts in place
			if _, _, err := r.Open(work, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkToken(b *testing.B) {
	m, err := session.New[benchSess](memstore.New(memstore.Options{SweepInterval: -1}), session.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		// A commit of a new, non-empty session: token, key, encode, save.
		t := m.Begin(ctx, "")
		p, _ := t.Get()
		p.UserID = 1
		if _, err := t.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConflict measures what a concurrent write costs: another
// request saved the session after this one loaded it, so the commit's
// compare-and-set fails and it merges and saves again (memory store,
// cipher). "merge" changes a field the other did not touch; "update" is
// Manager.Update re-running its function on the newer session.
func BenchmarkConflict(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"merge", "update"} {
		b.Run("mem/msgpack/cipher/"+mode, func(b *testing.B) {
			m := benchSetups()[1].manager(b)
			s := m.Begin(ctx, "")
			p, _ := s.Get()
			*p = fullSess()
			res, err := s.Commit(ctx)
			if err != nil {
				b.Fatal(err)
			}
			tok := res.Token
			b.ReportAllocs()
			for b.Loop() {
				mine, other := m.Begin(ctx, tok), m.Begin(ctx, tok)
				pm, _ := mine.Get()
				po, _ := other.Get()
				po.LastSeen++
				if _, err := other.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				switch mode {
				case "merge":
					pm.Cart = append(pm.Cart[:0], pm.Cart...)
					pm.UserID++
					if _, err := mine.Commit(ctx); err != nil {
						b.Fatal(err)
					}
				case "update":
					if err := mine.Update(func(s *benchSess) error { s.UserID++; return nil }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
