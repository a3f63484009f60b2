package cookiestore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/cookiestore"
)

// storetest.Run does not apply to this store: the suite checks records kept
// on the server under keys, and a cookie store keeps none. What the manager
// relies on instead is the store.Carrier contract, which TestCarrier* and
// FuzzUnwrap check here, and the behaviour through session.Manager and the
// middleware, which session_test.go checks.

// unwrap is Load without the context and the never-set error.
func unwrap(s *cookiestore.Store, tok string) ([]byte, bool) {
	rec, ok, err := s.Load(context.Background(), tok)
	if err != nil {
		panic(err)
	}
	return rec, ok
}

func TestNewMaxSize(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, cookiestore.MaxCookieSize},
		{-1, cookiestore.MaxCookieSize},
		{1, 1},
		{1000, 1000},
		{cookiestore.MaxCookieSize, cookiestore.MaxCookieSize},
		{cookiestore.MaxCookieSize + 1, cookiestore.MaxCookieSize},
		{1 << 20, cookiestore.MaxCookieSize},
	} {
		if got := cookiestore.New(cookiestore.Options{MaxSize: tc.in}).MaxSize(); got != tc.want {
			t.Errorf("New(MaxSize: %d).MaxSize() = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCarrierRoundTrip(t *testing.T) {
	s := cookiestore.New(cookiestore.Options{})
	for _, n := range []int{1, 2, 3, 4, 5, 45, 100, 1000, 3000, 3066} {
		rec := make([]byte, n)
		for i := range rec {
			rec[i] = byte(i*7 + n) // every byte value, binary included
		}
		tok, err := s.Wrap("session", rec)
		if err != nil {
			t.Fatalf("Wrap(%d bytes): %v", n, err)
		}
		if want := base64.RawURLEncoding.EncodeToString(rec); tok != want {
			t.Fatalf("Wrap(%d bytes) = %q, want unpadded base64url %q", n, tok, want)
		}
		got, ok := unwrap(s, tok)
		if !ok || !bytes.Equal(got, rec) {
			t.Fatalf("Unwrap(Wrap(%d bytes)) = %x, %v; want %x, true", n, got, ok, rec)
		}
		// The caller owns the result: changing it changes nothing else.
		got[0] ^= 0xff
		again, _ := unwrap(s, tok)
		if !bytes.Equal(again, rec) {
			t.Fatal("Unwrap returned memory shared between calls")
		}
	}
}

func TestCarrierWrapLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxSize int
	}{
		{"session", 0}, // default: 4096
		{"__Host-session", 0},
		{"s", 0},
		{"sid", 100},
		{"session", 64},
	} {
		s := cookiestore.New(cookiestore.Options{MaxSize: tc.maxSize})
		limit := s.MaxSize()
		// Grow the record one byte at a time until Wrap refuses it.
		var last string
		n := 1
		for ; ; n++ {
			tok, err := s.Wrap(tc.name, make([]byte, n))
			if err != nil {
				if !errors.Is(err, store.ErrTooLarge) {
					t.Fatalf("%s/%d: Wrap(%d bytes) = %v, want an error wrapping store.ErrTooLarge", tc.name, limit, n, err)
				}
				msg := err.Error()
				for _, want := range []string{tc.name, strconv.Itoa(limit), strconv.Itoa(len(tc.name) + base64.RawURLEncoding.EncodedLen(n)), strconv.Itoa(n)} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s/%d: error %q does not state %q", tc.name, limit, msg, want)
					}
				}
				break
			}
			if got := len(tc.name) + len(tok); got > limit {
				t.Fatalf("%s/%d: Wrap(%d bytes) gave a cookie of %d bytes, over the limit", tc.name, limit, n, got)
			}
			last = tok
		}
		// The largest accepted cookie is at the limit, or one byte short of it
		// when the room left by the name is 1 mod 4: no base64 length is.
		room := limit - len(tc.name)
		want := limit
		if room%4 == 1 {
			want = limit - 1
		}
		if got := len(tc.name) + len(last); got != want {
			t.Errorf("%s/%d: largest cookie is %d bytes, want %d", tc.name, limit, got, want)
		}
		if _, ok := unwrap(s, last); !ok {
			t.Errorf("%s/%d: the largest cookie Wrap produced does not Unwrap", tc.name, limit)
		}
	}
}

func TestCarrierWrapEmpty(t *testing.T) {
	s := cookiestore.New(cookiestore.Options{})
	for _, rec := range [][]byte{nil, {}} {
		tok, err := s.Wrap("session", rec)
		if err == nil || tok != "" {
			t.Fatalf("Wrap(empty) = %q, %v; want an error: an empty cookie is no cookie", tok, err)
		}
		if errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("Wrap(empty) = %v, which claims too large", err)
		}
	}
}

func TestCarrierUnwrapRejects(t *testing.T) {
	s := cookiestore.New(cookiestore.Options{})
	valid := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 90))
	for _, tc := range []struct{ name, tok string }{
		{"empty", ""},
		{"one char", "A"},
		{"length 1 mod 4", "AAAAA"},
		{"nonzero trailing bits (2 chars)", "AB"},
		{"nonzero trailing bits (3 chars)", "AAB"},
		{"padding", "AA=="},
		{"padding one", "AAA="},
		{"padded valid", valid + "=="},
		{"CRLF inside", "AAAA\r\nAAAA"},
		{"LF inside", valid[:40] + "\n" + valid[40:]},
		{"CR at end", valid + "\r"},
		{"path traversal", "../../etc/passwd"},
		{"dot dot", "..AA"},
		{"std alphabet +", "AA+A"},
		{"std alphabet /", "AA/A"},
		{"space", "AA AA"},
		{"leading space", " " + valid},
		{"quoted", `"` + valid + `"`},
		{"percent-encoded", "%41%41%41%41"},
		{"semicolon", valid + ";x=y"},
		{"NUL", "AAA\x00"},
		{"non-ASCII", "AAé"},
		{"invalid UTF-8", "AA\xff\xfe"},
		{"one over the limit", strings.Repeat("A", cookiestore.MaxCookieSize+1)},
		{"10 kB", strings.Repeat("A", 10_000)},
		{"1 MB", strings.Repeat("_", 1<<20)},
	} {
		rec, ok := unwrap(s, tc.tok)
		if ok || rec != nil {
			t.Errorf("Unwrap(%s) = %x, %v; want nil, false", tc.name, rec, ok)
		}
	}

	// The edges that are accepted: a token of the largest allowed length,
	// and the shortest ones.
	for _, tok := range []string{strings.Repeat("A", cookiestore.MaxCookieSize), "AA", "AAA", "AAAA", "-_-_"} {
		if _, ok := unwrap(s, tok); !ok {
			t.Errorf("Unwrap(%.20q… %d chars) = false, want true", tok, len(tok))
		}
	}

	// A lower MaxSize bounds Unwrap too.
	small := cookiestore.New(cookiestore.Options{MaxSize: 64})
	if _, ok := unwrap(small, strings.Repeat("A", 68)); ok {
		t.Error("Unwrap accepted a token longer than MaxSize")
	}
	if _, ok := unwrap(small, strings.Repeat("A", 64)); !ok {
		t.Error("Unwrap rejected a token of exactly MaxSize")
	}
}

func FuzzUnwrap(f *testing.F) {
	s := cookiestore.New(cookiestore.Options{})
	small := cookiestore.New(cookiestore.Options{MaxSize: 64})
	for _, seed := range []string{
		"", "A", "AA", "AB", "AAA", "AAAA", "AA==", "AAAA\r\nAAAA", "../x", "-_-_",
		base64.RawURLEncoding.EncodeToString([]byte("a sealed record, or so it claims")),
		base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0}, 45)),
		// Inputs around the limit of the small store; the default limit is
		// covered by TestCarrierWrapLimit, and kilobyte seeds only make the
		// fuzzer spend its time minimizing long inputs.
		strings.Repeat("A", 64), strings.Repeat("A", 65), strings.Repeat("_", 68),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, st := range []*cookiestore.Store{s, small} {
			// in as a token: Unwrap never panics, allocates within bounds,
			// and accepts only the one spelling Wrap gives.
			rec, ok := unwrap(st, in)
			if ok {
				if len(in) > st.MaxSize() || len(rec) > st.MaxSize()*3/4 {
					t.Fatalf("Unwrap accepted %d chars into %d bytes with MaxSize %d", len(in), len(rec), st.MaxSize())
				}
				if again := base64.RawURLEncoding.EncodeToString(rec); again != in {
					t.Fatalf("Unwrap(%q) accepted a non-canonical spelling of %q", in, again)
				}
			} else if rec != nil {
				t.Fatalf("Unwrap(%q) = %x, false; want nil record", in, rec)
			}

			// in as a record: whatever Wrap accepts, Unwrap returns intact.
			tok, err := st.Wrap("session", []byte(in))
			if err != nil {
				if len(in) != 0 && !errors.Is(err, store.ErrTooLarge) {
					t.Fatalf("Wrap(%d bytes) = %v, want nil or ErrTooLarge", len(in), err)
				}
				continue
			}
			if len("session")+len(tok) > st.MaxSize() {
				t.Fatalf("Wrap made a %d-byte cookie, limit %d", len("session")+len(tok), st.MaxSize())
			}
			back, ok := unwrap(st, tok)
			if !ok || !bytes.Equal(back, []byte(in)) {
				t.Fatalf("Unwrap(Wrap(%q)) = %q, %v", in, back, ok)
			}
		}
	})
}
