package middleware

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{nil, ""},
		{[]string{"session=abc"}, "abc"},
		{[]string{"a=1; session=abc; b=2"}, "abc"},
		{[]string{"a=1;session=abc"}, "abc"},
		{[]string{"xsession=no; session=yes"}, "yes"},
		{[]string{"session=first; session=second"}, "first"},
		{[]string{"a=1", "session=line2"}, "line2"},
		{[]string{`session="quoted"`}, "quoted"},
		{[]string{`session="`}, `"`},
		{[]string{"session"}, ""},
		{[]string{"session="}, ""},
		{[]string{";;; ;session=x;"}, "x"},
	} {
		if got := cookieValue(tc.lines, "session"); got != tc.want {
			t.Errorf("cookieValue(%q) = %q, want %q", tc.lines, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { cookieValue([]string{"a=1; b=2; session=abc"}, "session") }); n != 0 {
		t.Errorf("cookieValue allocates %v times", n)
	}
}

func TestAddVary(t *testing.T) {
	for _, tc := range []struct {
		have []string
		want []string
	}{
		{nil, []string{"Cookie"}},
		{[]string{"Accept-Encoding"}, []string{"Accept-Encoding", "Cookie"}},
		{[]string{"Accept-Encoding, cookie"}, []string{"Accept-Encoding, cookie"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		for _, v := range tc.have {
			h.Add("Vary", v)
		}
		addVary(h, "Cookie")
		if diff := cmp.Diff(tc.want, h.Values("Vary")); diff != "" {
			t.Errorf("addVary(%q) (-want +got):\n%s", tc.have, diff)
		}
	}
}

type sess struct{ N int }

type failingStore struct{ store.Store }

func (failingStore) Write(context.Context, []store.Op) error {
	return errors.New("disk full")
}

// tally is a memstore that counts the records it holds.
type tally struct {
	*memstore.Store
	mu   sync.Mutex
	live map[string]bool
}

func newTally() *tally {
	return &tally{Store: memstore.New(memstore.Options{SweepInterval: -1}), live: map[string]bool{}}
}

func (s *tally) Write(ctx context.Context, ops []store.Op) error {
	err := s.Store.Write(ctx, ops)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.Applied {
			s.live[op.Key] = len(op.New) > 0
		}
	}
	return err
}

func (s *tally) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ok := range s.live {
		if ok {
			n++
		}
	}
	return n
}

func newManager(t *testing.T, st store.Store) *session.Manager[sess] {
	t.Helper()
	if st == nil {
		st = memstore.New(memstore.Options{SweepInterval: -1})
	}
	m, err := session.New[sess](st, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCommitPoints(t *testing.T) {
	for name, respond := range map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) },
		"Write":       func(w http.ResponseWriter) { io.WriteString(w, "x") },
		"ReadFrom":    func(w http.ResponseWriter) { io.Copy(w, strings.NewReader("x")) },
		"Flush":       func(w http.ResponseWriter) { w.(http.Flusher).Flush() },
		"Controller":  func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
		"Return":      func(w http.ResponseWriter) {},
	} {
		t.Run(name, func(t *testing.T) {
			m := newManager(t, nil)
			h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m.Get(r).N = 1
				respond(w)
				if name != "Return" && w.Header().Get("Set-Cookie") == "" {
					t.Error("the response started without the session cookie")
				}
				m.Get(r).N = 2 // too late: not saved
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if got := rec.Result().Cookies(); len(got) != 1 {
				t.Fatalf("cookies = %v, want one", got)
			}
		})
	}
}

func TestEarlyHintsDoNotCommit(t *testing.T) {
	m := newManager(t, nil)
	h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		m.Get(r).N = 1
		w.WriteHeader(http.StatusOK)
	}))
	// The recorder does not model 1xx answers; a real server does.
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(res.Cookies()) != 1 {
		t.Fatal("a change after 103 Early Hints was not saved")
	}
}

func TestFailedCommitAbortsResponse(t *testing.T) {
	m := newManager(t, failingStore{memstore.New(memstore.Options{SweepInterval: -1})})
	var gotErr, writeErr error
	h := New(m, Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		http.Error(w, "sorry", http.StatusServiceUnavailable)
	}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).N = 1
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		http.SetCookie(w, &http.Cookie{Name: "csrf", Value: "x"})
		_, writeErr = io.WriteString(w, `{"secret":"handler output"}`)
		if err := http.NewResponseController(w).Flush(); !errors.Is(err, ErrAborted) {
			t.Errorf("Flush after a failed commit: %v", err)
		}
		if _, err := io.Copy(w, strings.NewReader("more")); !errors.Is(err, ErrAborted) {
			t.Errorf("ReadFrom after a failed commit: %v", err)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "handler output") {
		t.Fatalf("got %d %q; want the error handler's answer only", rec.Code, rec.Body)
	}
	if !errors.Is(gotErr, session.ErrStore) || !errors.Is(writeErr, ErrAborted) {
		t.Fatalf("handler error %v, write error %v", gotErr, writeErr)
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Fatal("a failed save issued a cookie")
	}
	h2 := rec.Result().Header
	if h2.Get("Content-Encoding") != "" || h2.Get("Cache-Control") != "no-store" || h2.Get("Content-Security-Policy") == "" {
		t.Fatalf("error answer headers %v: want the handler's representation headers gone, no-store, policies kept", h2)
	}
}

// hijackable is a recorder that can be hijacked, like a real HTTP/1 writer.
type hijackable struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (h *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return nil, nil, nil
}

func TestHijackCommitsFirst(t *testing.T) {
	st := newTally()
	m := newManager(t, st)
	h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).N = 5
		if _, _, err := http.NewResponseController(w).Hijack(); err != nil {
			t.Errorf("Hijack: %v", err)
		}
	}))
	w := &hijackable{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if !w.hijacked || st.Len() != 1 {
		t.Fatalf("hijacked=%v, records=%d; want the session saved before the hijack", w.hijacked, st.Len())
	}
}

func TestUnwrapReachesDeadlines(t *testing.T) {
	m := newManager(t, nil)
	srv := httptest.NewServer(New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
	})))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPanicCommitsNothing: a handler that panics before answering leaves the
// session as it was; the panic goes on to whoever recovers it.
func TestPanicCommitsNothing(t *testing.T) {
	st := newTally()
	m := newManager(t, st)
	h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).N = 42
		panic("handler bug")
	}))
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	}()
	if st.Len() != 0 || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("a panicking handler saved %d records, Set-Cookie %q", st.Len(), rec.Header().Get("Set-Cookie"))
	}
}

// TestHeadRequest: HEAD answers carry the same session headers as GET.
func TestHeadRequest(t *testing.T) {
	m := newManager(t, nil)
	h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).N++
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/", nil))
	if len(rec.Result().Cookies()) != 1 || rec.Header().Get("Vary") != "Cookie" {
		t.Fatalf("HEAD: cookies %v, Vary %q", rec.Result().Cookies(), rec.Header().Get("Vary"))
	}
}

// TestErrorsNamePackage: an error reads with its own package's prefix, so a
// user who sees it knows where to look.
func TestErrorsNamePackage(t *testing.T) {
	if got := ErrAborted.Error(); !strings.HasPrefix(got, "middleware: ") {
		t.Errorf("ErrAborted = %q, want the prefix \"middleware: \"", got)
	}
}

// TestCommitOnPurpose: Commit saves the session mid-handler and puts its
// cookie on the headers, through a writer wrapped around the middleware's;
// later changes are saved when the handler returns, under the token sent.
func TestCommitOnPurpose(t *testing.T) {
	st := newTally()
	m := newManager(t, st)
	var hdr http.Header
	h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Get(r).N = 7
		wrapped := struct{ http.ResponseWriter }{w} // no Unwrap: Commit finds nothing
		if err := Commit(wrapped); err != nil || st.Len() != 0 {
			t.Errorf("Commit through an opaque wrapper = %v, %d records; want nothing done", err, st.Len())
		}
		if err := Commit(unwrapper{w}); err != nil {
			t.Errorf("Commit: %v", err)
		}
		hdr = w.Header().Clone()
		m.Get(r).N = 8 // after the response started
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if st.Len() != 1 || !strings.Contains(hdr.Get("Set-Cookie"), m.CookieName()+"=") || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("after Commit: %d records, headers %v", st.Len(), hdr)
	}
	tok := strings.TrimPrefix(strings.SplitN(hdr.Get("Set-Cookie"), ";", 2)[0], m.CookieName()+"=")
	if p, _ := m.Begin(context.Background(), tok).Get(); p.N != 8 || st.Len() != 1 {
		t.Fatalf("saved %+v in %d records, want the value at the handler's return in one", p, st.Len())
	}
}

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestDefaultErrorHandlerCodes(t *testing.T) {
	h := DefaultErrorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: both changed Count", session.ErrConflict), http.StatusConflict},
		{fmt.Errorf("%w: load: down", session.ErrStore), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest("GET", "/", nil), tc.err)
		if rec.Code != tc.code {
			t.Errorf("%v answered %d, want %d", tc.err, rec.Code, tc.code)
		}
	}
}

// TestRoutesBounded: a route is warned about once, and the routes
// remembered stay within maxRoutes however many paths there are.
func TestRoutesBounded(t *testing.T) {
	var rs routes
	if !rs.first("GET /a") || rs.first("GET /a") {
		t.Fatal("a route is not new exactly once")
	}
	for i := range 2 * maxRoutes {
		rs.first("GET /item/" + strconv.Itoa(i))
	}
	if len(rs.seen) != maxRoutes || rs.first("GET /b") {
		t.Fatalf("%d routes remembered and a new one still warned about; want %d and none", len(rs.seen), maxRoutes)
	}
}
