package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	ourmem "github.com/typedsession/session/store/memstore"
)

// Sized is the payload of BenchmarkScale: a user id, a counter and a note
// whose length sets the size of the encoded payload.
type Sized struct {
	UserID int64
	Seen   int64
	Note   string
}

// sized returns a Sized whose msgpack encoding is n bytes long.
func sized(tb testing.TB, n int) Sized {
	v := Sized{UserID: 4211, Seen: 1764000000000}
	for pad := 0; ; pad++ {
		v.Note = strings.Repeat("n", pad)
		b, err := codec.MsgPack().Append(nil, &v)
		if err != nil {
			tb.Fatal(err)
		}
		switch {
		case len(b) == n:
			return v
		case len(b) > n:
			tb.Fatalf("no note gives a payload of exactly %d bytes", n)
		}
	}
}

// hot is how many sessions the requests cycle through: as many as a busy
// minute of a busy site sees, so that the records read are not all in cache.
const hot = 1000

// BenchmarkScale measures read and modify through the middleware on the
// memory store as the payload grows (100 B, 1 kB, 3 kB encoded) and as the
// number of live sessions in the store grows (1k, 100k, 1M). The requests
// cycle through a thousand real sessions; the rest of the store is filled
// with records of the same size under random keys. Compare with
//
//	benchstat -row /payload,/op -col /sessions FILE
func BenchmarkScale(b *testing.B) {
	for _, n := range []struct {
		name  string
		count int
	}{{"1k", 1000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		if n.count > 100_000 && testing.Short() {
			continue
		}
		for _, size := range []struct {
			name  string
			bytes int
		}{{"100B", 100}, {"1kB", 1000}, {"3kB", 3000}} {
			b.Run("payload="+size.name+"/sessions="+n.name, func(b *testing.B) {
				benchScale(b, n.count, sized(b, size.bytes))
			})
		}
	}
}

func benchScale(b *testing.B, sessions int, payload Sized) {
	st := ourmem.New(ourmem.Options{})
	defer st.Close()
	m, err := session.New[Sized](st, session.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var seen int64
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := m.Get(r)
		if p.UserID == 0 {
			*p = payload
		}
		if r.Method == http.MethodPost { // modify
			p.Seen++
		}
		seen += p.UserID
		w.WriteHeader(http.StatusOK)
	}))
	// The sessions the requests use, created through the middleware.
	gets := make([]*http.Request, hot)
	posts := make([]*http.Request, hot)
	w := &sinkWriter{h: make(http.Header)}
	for i := range gets {
		serve(h, w, newRequest(""))
		c := cookieOf(w.h)
		if c == "" {
			b.Fatal("seeding set no cookie")
		}
		gets[i] = newRequest(c)
		posts[i] = newRequest(c)
		posts[i].Method = http.MethodPost
	}
	// The rest of the store: records of about the same size (the payload
	// and its envelope) under keys of the same shape.
	rec := make([]byte, len(mustEncode(b, &payload))+32)
	exp := time.Now().Add(time.Hour)
	ops := make([]store.Op, 1)
	var k [32]byte
	for range sessions - hot {
		rand.Read(k[:])
		ops[0] = store.Op{Key: base64.RawURLEncoding.EncodeToString(k[:]), New: rec, Expiry: exp}
		if err := st.Write(context.Background(), ops); err != nil || !ops[0].Applied {
			b.Fatal("fill:", err)
		}
	}
	// The fill's garbage collected now, not in the first measurement; then
	// requests until the heap has gone through a collection at its working
	// size. Before that, allocations land on memory the process has not
	// touched yet (page faults, a few µs per request with a large store),
	// which the first benchmark after the fill alone would pay.
	runtime.GC()
	start, deadline := gcCycles(), time.Now().Add(20*time.Second)
	for i := 0; gcCycles() == start && time.Now().Before(deadline); i++ {
		serve(h, w, gets[i%hot])
		serve(h, w, posts[i%hot])
	}
	for _, op := range []struct {
		name string
		reqs []*http.Request
	}{{"read", gets}, {"modify", posts}} {
		b.Run("op="+op.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				serve(h, w, op.reqs[i%hot])
				i++
			}
		})
	}
	if seen == 0 {
		b.Fatal("the handler saw no session")
	}
}

// gcCycles returns how many collections have completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func mustEncode(tb testing.TB, v *Sized) []byte {
	b, err := codec.MsgPack().Append(nil, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSized(t *testing.T) {
	for _, n := range []int{100, 1000, 3000} {
		v := sized(t, n)
		if got := len(mustEncode(t, &v)); got != n {
			t.Errorf("sized(%d) encodes to %d bytes", n, got)
		}
	}
}
