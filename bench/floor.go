package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
)

// Floor is the smallest typed session middleware worth the name, and the
// floor the harness measures the libraries against: sessions are values of
// Sess in a map behind a mutex, keyed by a random cookie. No codec, no
// cipher, no expiry, no compare-and-set; but lazy, writing only what
// changed, and with the headers a session cookie needs.
type Floor struct {
	mu sync.Mutex
	m  map[string]Sess
}

// NewFloor returns an empty Floor.
func NewFloor() *Floor { return &Floor{m: make(map[string]Sess)} }

type floorKey struct{}

type floorState struct {
	token     string
	loaded    bool
	found     bool
	committed bool
	orig, cur Sess
}

// Get returns the request's session, loading it on first use.
func (f *Floor) Get(r *http.Request) *Sess {
	st := r.Context().Value(floorKey{}).(*floorState)
	if !st.loaded {
		st.loaded = true
		if st.token != "" {
			f.mu.Lock()
			v, ok := f.m[st.token]
			f.mu.Unlock()
			if ok {
				st.orig, st.cur, st.found = v, v.clone(), true
			}
		}
	}
	return &st.cur
}

// Wrap is the middleware.
func (f *Floor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &floorState{}
		if c, err := r.Cookie("sid"); err == nil && len(c.Value) == 43 {
			st.token = c.Value
		}
		fw := &floorWriter{ResponseWriter: w, f: f, st: st}
		next.ServeHTTP(fw, r.WithContext(context.WithValue(r.Context(), floorKey{}, st)))
		fw.commit()
	})
}

type floorWriter struct {
	http.ResponseWriter
	f  *Floor
	st *floorState
}

func (w *floorWriter) WriteHeader(code int) {
	w.commit()
	w.ResponseWriter.WriteHeader(code)
}

func (w *floorWriter) Write(p []byte) (int, error) {
	w.commit()
	return w.ResponseWriter.Write(p)
}

// commit saves a changed session once, when the response starts.
func (w *floorWriter) commit() {
	st := w.st
	if !st.loaded || st.committed {
		return
	}
	st.committed = true
	h := w.Header()
	h.Add("Vary", "Cookie")
	if st.found && st.cur.equal(&st.orig) || !st.found && st.cur.equal(&Sess{}) {
		return
	}
	if !st.found {
		var b [32]byte
		rand.Read(b[:])
		st.token = base64.RawURLEncoding.EncodeToString(b[:])
		h.Add("Set-Cookie", "sid="+st.token+"; Path=/; HttpOnly; Secure; SameSite=Lax")
		h.Set("Cache-Control", "no-store")
	}
	w.f.mu.Lock()
	w.f.m[st.token] = st.cur.clone()
	w.f.mu.Unlock()
}

func (s *Sess) clone() Sess {
	c := *s
	c.Roles = slices.Clone(s.Roles)
	c.Cart = slices.Clone(s.Cart)
	return c
}

func (s *Sess) equal(o *Sess) bool {
	return s.UserID == o.UserID && s.Name == o.Name && s.CSRF == o.CSRF && s.LastSeen == o.LastSeen &&
		slices.Equal(s.Roles, o.Roles) && slices.Equal(s.Cart, o.Cart)
}
