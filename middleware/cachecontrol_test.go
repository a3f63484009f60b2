package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNoStore: every Cache-Control line the handler set is kept as it was,
// and no-store is added unless the response already keeps shared caches
// from storing it.
func TestNoStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		have []string // the handler's Cache-Control lines
		want []string
	}{
		{"none", nil, []string{"no-store"}},
		{"blank line", []string{" "}, []string{"no-store"}},
		{"no-store", []string{"no-store"}, []string{"no-store"}},
		{"private", []string{"private, max-age=60"}, []string{"private, max-age=60"}},
		{"public", []string{"public, max-age=3600"}, []string{"public, max-age=3600", "no-store"}},
		{"immutable", []string{"s-maxage=10, immutable"}, []string{"s-maxage=10, immutable", "no-store"}},

		// Every line counts, not only the first.
		{"private on line 2", []string{"max-age=600", "private"}, []string{"max-age=600", "private"}},
		{"no-store on line 2", []string{"max-age=0", "no-store"}, []string{"max-age=0", "no-store"}},
		{"one line", []string{"max-age=0, no-store"}, []string{"max-age=0, no-store"}},

		// Directive names are case-insensitive.
		{"NO-STORE", []string{"NO-STORE"}, []string{"NO-STORE"}},
		{"Private", []string{"max-age=60, Private"}, []string{"max-age=60, Private"}},

		// A qualified private leaves the rest of the response, the token
		// with it, to shared caches.
		{"private qualified", []string{`private="X-Debug"`}, []string{`private="X-Debug"`, "no-store"}},
		{"private empty list", []string{`private=""`}, []string{`private=""`, "no-store"}},
		{"private token arg", []string{`private=X-Debug`}, []string{`private=X-Debug`, "no-store"}},

		// Names are matched as directives, not as substrings.
		{"substring", []string{"x-no-store-please, x-private"}, []string{"x-no-store-please, x-private", "no-store"}},
		{"prefix", []string{"no-stored, privately"}, []string{"no-stored, privately", "no-store"}},

		// A comma inside a quoted string does not end the directive.
		{"quoted comma", []string{`no-cache="Set-Cookie, private", max-age=60`}, []string{`no-cache="Set-Cookie, private", max-age=60`, "no-store"}},
		{"quoted comma then private", []string{`no-cache="a, b", private`}, []string{`no-cache="a, b", private`}},
		{"escaped quote", []string{`ext="a\", private", public`}, []string{`ext="a\", private", public`, "no-store"}},
		{"unterminated quote", []string{`ext="a, private`}, []string{`ext="a, private`, "no-store"}},
		{"spaces and empties", []string{" ,, no-store ,"}, []string{" ,, no-store ,"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.have {
				h.Add("Cache-Control", v)
			}
			noStore(h)
			if diff := cmp.Diff(tc.want, h.Values("Cache-Control")); diff != "" {
				t.Errorf("noStore(%q) (-want +got):\n%s", tc.have, diff)
			}
		})
	}
}

// TestNoStoreThroughMiddleware: a handler's Cache-Control lines reach the
// client unchanged beside the session cookie.
func TestNoStoreThroughMiddleware(t *testing.T) {
	for _, tc := range []struct {
		have, want []string
	}{
		{[]string{"max-age=600", "private"}, []string{"max-age=600", "private"}},
		{[]string{"max-age=0", "no-store"}, []string{"max-age=0", "no-store"}},
		{[]string{"public", "max-age=600"}, []string{"public", "max-age=600", "no-store"}},
	} {
		m := newManager(t, nil)
		h := New(m, Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, v := range tc.have {
				w.Header().Add("Cache-Control", v)
			}
			m.Get(r).N = 1
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if len(rec.Result().Cookies()) != 1 {
			t.Fatalf("%q: no session cookie", tc.have)
		}
		if diff := cmp.Diff(tc.want, rec.Result().Header.Values("Cache-Control")); diff != "" {
			t.Errorf("handler set %q (-want +got):\n%s", tc.have, diff)
		}
	}
}
