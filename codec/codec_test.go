package codec_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/typedsession/session/codec"
)

var codecs = []struct {
	name string
	c    codec.Codec
}{
	{"msgpack", codec.MsgPack()},
	{"json", codec.JSON()},
}

// timeEqual compares times by instant, ignoring location and monotonic clock.
var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

type item struct {
	SKU   string
	Qty   int
	Price float64
}

type address struct {
	Street string
	City   *string
}

type rich struct {
	UserID   int64
	Min, Max int64
	UMax     uint64
	Name     string
	Admin    bool
	Ratio    float64
	Login    time.Time
	Zero     time.Time
	Roles    []string
	Cart     []item
	Empty    []int
	Nil      []int
	Attrs    map[string]string
	Counts   map[string]int64
	Home     *address
	Work     *address
	Flash    []string
	Bytes    []byte
	Nested   struct{ A, B []map[string][]int }
	Tagged   string    `msgpack:"t" json:"t"`
	Far      time.Time // needs msgpack's 96-bit time
	F32      float32
	Ints     []int64 // every width of msgpack integer
	Long     string  // str16 and str32
	Longer   string
	Blob     []byte      // bin16
	Many     map[int]int // map16
	internal int         // unexported: never encoded
}

func richValue() rich {
	city := "Zürich"
	v := rich{
		UserID: 4211,
		Min:    math.MinInt64,
		Max:    math.MaxInt64,
		UMax:   math.MaxUint64,
		Name:   "Ada Lovelace — 日本語 🦫 \u0000 \"quoted\" <html>",
		Admin:  true,
		Ratio:  -1.5e-300,
		Login:  time.Date(2025, 11, 24, 13, 14, 15, 123456789, time.FixedZone("X", 3600)),
		Roles:  []string{"admin", "", "editor"},
		Cart:   []item{{"A-1", 2, 9.99}, {"B-2", 1, 0}},
		Empty:  []int{},
		Attrs:  map[string]string{"theme": "dark", "": "empty key", "ключ": "значение"},
		Counts: map[string]int64{"min": math.MinInt64, "max": math.MaxInt64},
		Home:   &address{"1 Main St", &city},
		Flash:  []string{"saved"},
		Bytes:  []byte{0, 1, 2, 0xff},
		Tagged: "tag",
	}
	v.Nested.A = []map[string][]int{{"x": {1, 2}}, nil}
	v.Far = time.Date(3000, 1, 2, 3, 4, 5, 6, time.UTC)
	v.F32 = 0.5
	for _, n := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32} {
		v.Ints = append(v.Ints, n, -n, -n-1)
	}
	v.Long = strings.Repeat("é", 200)
	v.Longer = strings.Repeat("x", 70000)
	v.Blob = bytes.Repeat([]byte{0xc1}, 300)
	v.Many = make(map[int]int)
	for i := range 20 {
		v.Many[i] = -i
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			want := richValue()
			want.internal = 99
			b, err := cc.c.Append(nil, &want)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			var got rich
			if err := cc.c.Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want.internal = 0
			opts := cmp.Options{timeEqual, cmp.AllowUnexported(rich{})}
			if diff := cmp.Diff(want, got, opts); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if !got.Login.Equal(want.Login) {
				t.Errorf("Login = %v, want %v", got.Login, want.Login)
			}
			if !got.Zero.IsZero() {
				t.Errorf("zero time decoded as %v", got.Zero)
			}
			if got.Work != nil {
				t.Errorf("nil pointer decoded as %+v", got.Work)
			}
			if got.Nil != nil || got.Empty == nil {
				t.Errorf("nil/empty slices: Nil = %#v, Empty = %#v", got.Nil, got.Empty)
			}
		})
	}
}

func TestRoundTripScalars(t *testing.T) {
	values := []any{
		int64(0), int64(-1), int64(math.MinInt64), int64(math.MaxInt64),
		int64(math.MinInt32 - 1), int64(math.MaxUint32 + 1),
		"", "ascii", "日本語", string([]byte{0xe2, 0x82, 0xac}),
		true, false, 3.25,
	}
	for _, cc := range codecs {
		for _, v := range values {
			t.Run(fmt.Sprintf("%s/%T/%v", cc.name, v, v), func(t *testing.T) {
				b, err := cc.c.Append(nil, v)
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				got := newLike(v)
				if err := cc.c.Unmarshal(b, got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				if diff := cmp.Diff(v, deref(got)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

func newLike(v any) any {
	switch v.(type) {
	case int64:
		return new(int64)
	case string:
		return new(string)
	case bool:
		return new(bool)
	case float64:
		return new(float64)
	}
	panic("unreachable")
}

func deref(p any) any {
	switch p := p.(type) {
	case *int64:
		return *p
	case *string:
		return *p
	case *bool:
		return *p
	case *float64:
		return *p
	}
	panic("unreachable")
}

// Schema evolution: the same session under successive versions of its type.
type sessV1 struct {
	UserID int64
	Name   string
	Cart   []int64
	Theme  string
}

type sessAdded struct { // a field added
	UserID int64
	Name   string
	Cart   []int64
	Theme  string
	Locale string
	Prefs  map[string]bool
}

type sessRemoved struct { // Theme removed
	UserID int64
	Name   string
	Cart   []int64
}

type sessRenamed struct { // Name renamed to FullName
	UserID   int64
	FullName string
	Cart     []int64
	Theme    string
}

type sessRetyped struct { // Name retyped string -> int
	UserID int64
	Name   int
	Cart   []int64
	Theme  string
}

type sessRetypedSlice struct { // Cart retyped []int64 -> string
	UserID int64
	Name   string
	Cart   string
	Theme  string
}

type sessRetypedStruct struct { // Theme retyped string -> struct
	UserID int64
	Name   string
	Cart   []int64
	Theme  struct{ Dark bool }
}

func TestSchemaEvolution(t *testing.T) {
	old := sessV1{UserID: 7, Name: "Ada", Cart: []int64{1, -2, math.MaxInt64}, Theme: "dark"}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			b, err := cc.c.Append(nil, &old)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			decode := func(v any) error {
				t.Helper()
				var err error
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("Unmarshal into %T panicked: %v", v, r)
						}
					}()
					err = cc.c.Unmarshal(b, v)
				}()
				return err
			}

			t.Run("added", func(t *testing.T) {
				var got sessAdded
				if err := decode(&got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				want := sessAdded{UserID: 7, Name: "Ada", Cart: old.Cart, Theme: "dark"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
			t.Run("removed", func(t *testing.T) {
				var got sessRemoved
				if err := decode(&got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				want := sessRemoved{UserID: 7, Name: "Ada", Cart: old.Cart}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
			t.Run("renamed", func(t *testing.T) {
				var got sessRenamed
				if err := decode(&got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				want := sessRenamed{UserID: 7, Cart: old.Cart, Theme: "dark"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
			for _, v := range []any{new(sessRetyped), new(sessRetypedSlice), new(sessRetypedStruct)} {
				t.Run(fmt.Sprintf("retyped %T", v), func(t *testing.T) {
					if err := decode(v); err == nil {
						t.Errorf("Unmarshal into %T = nil error, want an error", v)
					}
				})
			}
			t.Run("new to old", func(t *testing.T) {
				// Rolling back a deploy: a record with the added field
				// decodes into the old type.
				nb, err := cc.c.Append(nil, &sessAdded{UserID: 8, Locale: "fr", Prefs: map[string]bool{"x": true}})
				if err != nil {
					t.Fatal(err)
				}
				var got sessV1
				if err := cc.c.Unmarshal(nb, &got); err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				if diff := cmp.Diff(sessV1{UserID: 8}, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestSchemaEvolutionNilToValue changes a pointer field to a value of the
// same name: old records hold nil there. msgpack/v5.4.1 panics decoding nil
// into time.Time or netip.Addr (non-nilable types whose pointer implements a
// decoding interface); the codec must turn that into an error or a zero value.
func TestSchemaEvolutionNilToValue(t *testing.T) {
	type oldTime struct {
		Name string
		At   *time.Time
	}
	type newTime struct {
		Name string
		At   time.Time
	}
	type oldAddr struct {
		Name string
		At   *netip.Addr
	}
	type newAddr struct {
		Name string
		At   netip.Addr
	}
	type oldStruct struct {
		Name string
		At   *item
	}
	type newStruct struct {
		Name string
		At   item
	}
	tests := []struct {
		name     string
		old, new any
		want     any // a successful decode must give this
	}{
		{"time", &oldTime{Name: "x"}, new(newTime), &newTime{Name: "x"}},
		{"netip", &oldAddr{Name: "x"}, new(newAddr), &newAddr{Name: "x"}},
		{"struct", &oldStruct{Name: "x"}, new(newStruct), &newStruct{Name: "x"}},
	}
	for _, cc := range codecs {
		for _, tt := range tests {
			t.Run(cc.name+"/"+tt.name, func(t *testing.T) {
				b, err := cc.c.Append(nil, tt.old)
				if err != nil {
					t.Fatal(err)
				}
				v := reflect.New(reflect.TypeOf(tt.new).Elem()).Interface()
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("Unmarshal(%x) into %T panicked: %v", b, v, r)
						}
					}()
					err = cc.c.Unmarshal(b, v)
				}()
				if err != nil {
					t.Logf("Unmarshal into %T: %v (the session is dropped)", v, err)
					return
				}
				if diff := cmp.Diff(tt.want, v, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
	// The pooled decoder survives: the next decode works.
	b, _ := codec.MsgPack().Append(nil, fullPayload())
	var p payload
	if err := codec.MsgPack().Unmarshal(b, &p); err != nil {
		t.Fatalf("Unmarshal after a recovered panic: %v", err)
	}
}

// payload is the benchmark's session plus a map and a time.
type payload struct {
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
	Attrs    map[string]string
	Login    time.Time
}

func fullPayload() payload {
	return payload{
		UserID:   4211,
		Name:     "Ada Lovelace",
		Roles:    []string{"admin", "editor"},
		CSRF:     "k3J9f0aQz8LrT2vX5mN1pB7cY4wE6hGd",
		Cart:     []int64{101, 202, 303, 404, 505},
		LastSeen: 1764000000000,
		Attrs:    map[string]string{"theme": "dark"},
		Login:    time.UnixMilli(1764000000000),
	}
}

var garbage = [][]byte{
	nil,
	{},
	{0x00},
	{0xc1},                           // msgpack: never used
	{0xff, 0xff, 0xff},               // negative fixints
	{0x81},                           // map missing its entry
	{0x81, 0xa6, 'U', 's', 'e', 'r'}, // truncated key
	{0x81, 0xa6, 'U', 's', 'e', 'r', 'I', 'D'},                       // missing value
	{0x81, 0xa6, 'U', 's', 'e', 'r', 'I', 'D', 0xcf},                 // truncated uint64
	{0x81, 0xa4, 'C', 'a', 'r', 't', 0x93, 0x01},                     // short array
	{0x81, 0xa5, 'L', 'o', 'g', 'i', 'n', 0xd7, 0xff, 0, 0},          // truncated time
	{0x81, 0xa5, 'L', 'o', 'g', 'i', 'n', 0xc7, 0x03, 0xff, 1, 2, 3}, // time ext of bad length
	{0x81, 0xa5, 'L', 'o', 'g', 'i', 'n', 0xd6, 0x05, 1, 2, 3, 4},    // wrong ext type
	{0xdd, 0xff, 0xff, 0xff, 0xff},
	{0xdf, 0xff, 0xff, 0xff, 0xff},
	{0xc6, 0xff, 0xff, 0xff, 0xff},
	{0xdb, 0xff, 0xff, 0xff, 0xff},
	{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
	bytes.Repeat([]byte{0x91}, 100000), // deep nesting
	[]byte(`{`),
	[]byte(`{"UserID":`),
	[]byte(`{"UserID":"x"}`),
	[]byte(`{"UserID":1e400}`),
	[]byte(`{"Cart":[1,2,"x"]}`),
	[]byte(`{"Login":"yesterday"}`),
	[]byte(`{"UserID":1} trailing`),
	[]byte(`[1,2,3]`),
	[]byte(`null null`),
	[]byte("\xff\xfe"),
	bytes.Repeat([]byte("["), 100000),
}

func TestGarbage(t *testing.T) {
	for _, cc := range codecs {
		for i, in := range garbage {
			t.Run(fmt.Sprintf("%s/%d", cc.name, i), func(t *testing.T) {
				for i, v := range []any{new(payload), new(rich), new(any), new(map[string]any), new([]int64)} {
					mustFail := i < 2 // some garbage is a valid number or list
					var err error
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("Unmarshal(%.40x) into %T panicked: %v", in, v, r)
							}
						}()
						err = cc.c.Unmarshal(in, v)
					}()
					if err == nil && mustFail {
						t.Errorf("Unmarshal(%.40x) into %T = nil error, want an error", in, v)
					}
				}
			})
		}
	}
}

// TestTruncated checks that every proper prefix of a record is an error, not
// a partly decoded value.
func TestTruncated(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			b, err := cc.c.Append(nil, fullPayload())
			if err != nil {
				t.Fatal(err)
			}
			for n := range len(b) {
				var p payload
				if err := cc.c.Unmarshal(b[:n], &p); err == nil {
					t.Errorf("Unmarshal(first %d of %d bytes) = nil error, decoded %+v", n, len(b), p)
				}
			}
		})
	}
}

// TestMsgPackHugeLengths checks that a length prefix declaring billions of
// elements in a few bytes of input costs no more than the input is worth.
// msgpack/v5 allocates what the prefix declares (up to 32 GiB for []int64,
// 4 GiB for []byte), so the codec checks lengths before decoding.
func TestMsgPackHugeLengths(t *testing.T) {
	prefixes := map[string][]byte{
		"array32": {0xdd, 0xff, 0xff, 0xff, 0xff},
		"array16": {0xdc, 0xff, 0xff},
		"map32":   {0xdf, 0xff, 0xff, 0xff, 0xff},
		"map16":   {0xde, 0xff, 0xff},
		"bin32":   {0xc6, 0xff, 0xff, 0xff, 0xff},
		"str32":   {0xdb, 0xff, 0xff, 0xff, 0xff},
		"ext32":   {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		"1M elem": {0xdd, 0x00, 0x10, 0x00, 0x00},
	}
	targets := []struct {
		name string
		new  func() any
	}{
		{"[]int64", func() any { return new([]int64) }},
		{"[]string", func() any { return new([]string) }},
		{"[][]byte", func() any { return new([][]byte) }},
		{"[]byte", func() any { return new([]byte) }},
		{"map[string]string", func() any { return new(map[string]string) }},
		{"map[string]int64", func() any { return new(map[string]int64) }},
		{"any", func() any { return new(any) }},
		{"string", func() any { return new(string) }},
		{"time.Time", func() any { return new(time.Time) }},
		{"payload", func() any { return new(payload) }},
	}
	for name, in := range prefixes {
		// Bare, and as the value of a struct field.
		inputs := map[string][]byte{
			"bare":  in,
			"Cart":  append([]byte{0x81, 0xa4, 'C', 'a', 'r', 't'}, in...),
			"Attrs": append([]byte{0x81, 0xa5, 'A', 't', 't', 'r', 's'}, in...),
			"Roles": append([]byte{0x81, 0xa5, 'R', 'o', 'l', 'e', 's'}, in...),
		}
		for where, data := range inputs {
			for _, tg := range targets {
				t.Run(name+"/"+where+"/"+tg.name, func(t *testing.T) {
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					err := codec.MsgPack().Unmarshal(data, tg.new())
					runtime.ReadMemStats(&after)
					if err == nil {
						t.Errorf("Unmarshal(%x) = nil error", data)
					}
					// Other tests may run in parallel with -race off; a
					// few MB of slack still catches gigabytes.
					if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
						t.Errorf("Unmarshal(%x) allocated %d bytes", data, d)
					}
				})
			}
		}
	}
}

// TestMsgPackBoundedBySize checks that a well-formed but long input costs in
// proportion to its size: a slice of n int64 from n one-byte nils.
func TestMsgPackBoundedBySize(t *testing.T) {
	const n = 100_000
	in := append([]byte{0xdd, 0, 0, 0, 0}, bytes.Repeat([]byte{0xc0}, n)...)
	binary.BigEndian.PutUint32(in[1:], n)
	var (
		s             []int64
		before, after runtime.MemStats
	)
	runtime.ReadMemStats(&before)
	err := codec.MsgPack().Unmarshal(in, &s)
	runtime.ReadMemStats(&after)
	if err != nil || len(s) != n {
		t.Fatalf("Unmarshal(%d nils) = (%d elements, %v)", n, len(s), err)
	}
	// 8 bytes per element, twice over for msgpack's growSliceValue.
	if d := after.TotalAlloc - before.TotalAlloc; d > 32*uint64(len(in))+64<<10 {
		t.Errorf("Unmarshal of %d input bytes allocated %d bytes", len(in), d)
	}
	// One element fewer than declared: rejected before any decoding.
	var s2 []int64
	if err := codec.MsgPack().Unmarshal(in[:len(in)-1], &s2); err == nil || s2 != nil {
		t.Errorf("Unmarshal(%d of %d) = (%d elements, %v), want an error and no slice", n-1, n, len(s2), err)
	}
}

// TestMsgPackDepth checks that nesting is bounded without rejecting the depth
// a real payload has.
func TestMsgPackDepth(t *testing.T) {
	nest := func(depth int) []byte {
		return append(bytes.Repeat([]byte{0x91}, depth), 0x01)
	}
	var v any
	if err := codec.MsgPack().Unmarshal(nest(100), &v); err != nil {
		t.Errorf("depth 100: %v", err)
	}
	if err := codec.MsgPack().Unmarshal(nest(1_000_000), &v); err == nil {
		t.Errorf("depth 1e6: nil error")
	}
}

// TestMsgPackTrailing checks that a record followed by a malformed or
// truncated value is refused rather than decoded from its prefix. Complete
// values after the first are tolerated: a msgpack.CustomEncoder may write
// several with EncodeMulti.
func TestMsgPackTrailing(t *testing.T) {
	b, err := codec.MsgPack().Append(nil, fullPayload())
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range [][]byte{{0xc1}, {0xdd, 0, 0, 0, 9}, {0xa5, 'x'}} {
		var p payload
		if err := codec.MsgPack().Unmarshal(append(b[:len(b):len(b)], tail...), &p); err == nil {
			t.Errorf("Unmarshal(record + %x) = nil error", tail)
		}
	}
}

// pair encodes itself as two msgpack values, as the msgpack package's own
// CustomEncoder example does.
type pair struct {
	S string
	N int
}

func (p *pair) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeMulti(p.S, p.N) }
func (p *pair) DecodeMsgpack(dec *msgpack.Decoder) error { return dec.DecodeMulti(&p.S, &p.N) }

// TestMsgPackCustomEncoder checks that the well-formedness check accepts what
// a custom encoder writing several values produces.
func TestMsgPackCustomEncoder(t *testing.T) {
	type withPair struct {
		A int
		P *pair
		Z string
	}
	want := withPair{A: 1, P: &pair{"s", 2}, Z: "z"}
	for _, v := range []any{&want, &pair{"top", 3}} {
		b, err := codec.MsgPack().Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := codec.MsgPack().Unmarshal(b, got); err != nil {
			t.Fatalf("Unmarshal(%x) into %T: %v", b, got, err)
		}
		if diff := cmp.Diff(v, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestAppend(t *testing.T) {
	prefix := []byte("header--")
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			want, err := cc.c.Append(nil, fullPayload())
			if err != nil {
				t.Fatal(err)
			}
			for _, dst := range [][]byte{
				append([]byte(nil), prefix...),
				append(make([]byte, 0, 4096), prefix...),
			} {
				out, err := cc.c.Append(dst, fullPayload())
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(prefix, out[:len(prefix)]); diff != "" {
					t.Errorf("Append clobbered dst (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(want, out[len(prefix):]); diff != "" {
					t.Errorf("Append wrote (-want +got):\n%s", diff)
				}
			}
			// A value that cannot be encoded leaves dst as it was.
			dst := append([]byte(nil), prefix...)
			out, err := cc.c.Append(dst, map[string]any{"f": func() {}})
			if err == nil {
				t.Errorf("Append(func) = nil error")
			}
			if !bytes.Equal(out, prefix) {
				t.Errorf("failed Append returned %q, want %q", out, prefix)
			}
			// And the next Append is not polluted by the failed one.
			again, err := cc.c.Append(nil, fullPayload())
			if err != nil || !bytes.Equal(again, want) {
				t.Errorf("Append after a failure = (%x, %v), want %x", again, err, want)
			}
		})
	}
}

// TestUnmarshalDoesNotAlias checks that decoded values do not share memory
// with the input, which the manager reuses.
func TestUnmarshalDoesNotAlias(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			type blob struct {
				S string
				B []byte
			}
			in, err := cc.c.Append(nil, blob{S: "hello", B: []byte("world")})
			if err != nil {
				t.Fatal(err)
			}
			var got blob
			if err := cc.c.Unmarshal(in, &got); err != nil {
				t.Fatal(err)
			}
			for i := range in {
				in[i] = 'X'
			}
			if diff := cmp.Diff(blob{S: "hello", B: []byte("world")}, got); diff != "" {
				t.Errorf("decoded value changed with its input (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 200 {
						want := fullPayload()
						want.UserID = int64(g*1000 + i)
						want.Cart = append(want.Cart, int64(i))
						b, err := cc.c.Append(nil, want)
						if err != nil {
							errs <- err
							return
						}
						var got payload
						if err := cc.c.Unmarshal(b, &got); err != nil {
							errs <- err
							return
						}
						if diff := cmp.Diff(want, got, timeEqual); diff != "" {
							errs <- fmt.Errorf("goroutine %d, round %d (-want +got):\n%s", g, i, diff)
							return
						}
						// Garbage on the same pooled decoders.
						_ = cc.c.Unmarshal(b[:len(b)/2], new(payload))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to both codecs: they never panic, and what
// they accept re-encodes and decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, cc := range codecs {
		b, err := cc.c.Append(nil, fullPayload())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		b, _ = cc.c.Append(nil, payload{})
		f.Add(b)
		r := richValue()
		r.Longer = "" // keep seeds small: big inputs slow every exec
		b, _ = cc.c.Append(nil, r)
		f.Add(b)
	}
	for _, g := range garbage {
		if len(g) < 1000 {
			f.Add(g)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cc := range codecs {
			var p payload
			if err := cc.c.Unmarshal(data, &p); err != nil {
				continue
			}
			b, err := cc.c.Append(nil, p)
			if err != nil {
				// JSON cannot encode every time msgpack decodes (years
				// outside 0-9999).
				if cc.name == "json" {
					continue
				}
				t.Fatalf("%s: re-encoding a decoded value: %v", cc.name, err)
			}
			var again payload
			if err := cc.c.Unmarshal(b, &again); err != nil {
				t.Fatalf("%s: decoding a re-encoded value: %v", cc.name, err)
			}
			if diff := cmp.Diff(p, again, timeEqual); diff != "" {
				t.Fatalf("%s: re-encoding changed the value (-first +second):\n%s", cc.name, diff)
			}
		}
		var r rich
		_ = codec.MsgPack().Unmarshal(data, &r)
		_ = codec.JSON().Unmarshal(data, &r)
		var a any
		_ = codec.MsgPack().Unmarshal(data, &a)
		// Splitting never panics, and what splits joins back to a value
		// that splits the same.
		for _, cc := range codecs {
			fs, ok := cc.c.Fields(nil, data)
			if !ok {
				continue
			}
			joined := cc.c.AppendFields(nil, fs)
			again, ok := cc.c.Fields(nil, joined)
			if !ok || !cmp.Equal(fs, again, cmpopts.EquateEmpty()) {
				t.Fatalf("%s: fields %q joined to %q split to %q, %v", cc.name, fs, joined, again, ok)
			}
		}
	})
}

// TestFields: a payload splits into its top-level fields in order, each
// value as the codec wrote it, and joins back to a map that decodes to the
// same value; a map holds any key, and fields can be dropped or carried.
func TestFields(t *testing.T) {
	type inner struct{ A, B int }
	type withEmbedded struct {
		inner
		Name  string
		Long  string
		Many  []int
		Table map[string]int
	}
	v := withEmbedded{inner: inner{1, 2}, Name: "ann", Long: strings.Repeat("x", 300), Many: []int{1, 2, 3}, Table: map[string]int{"k": 1}}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			b, err := cc.c.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			fs, ok := cc.c.Fields(nil, b)
			if !ok {
				t.Fatalf("Fields(%q) failed", b)
			}
			var keys []string
			for _, f := range fs {
				keys = append(keys, f.Key)
			}
			if diff := cmp.Diff([]string{"A", "B", "Name", "Long", "Many", "Table"}, keys); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			var back withEmbedded
			if err := cc.c.Unmarshal(cc.c.AppendFields(nil, fs), &back); err != nil || !cmp.Equal(v, back, cmp.AllowUnexported(withEmbedded{})) {
				t.Fatalf("joined fields decode to %+v, %v", back, err)
			}
			// An unknown field joined in is skipped by the decoder and kept
			// by a second split.
			extra := append(fs[:len(fs):len(fs)], codec.Field{Key: "Newer", Value: fs[2].Value})
			joined := cc.c.AppendFields(nil, extra)
			if err := cc.c.Unmarshal(joined, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := cc.c.Fields(nil, joined); len(again) != len(fs)+1 || again[len(fs)].Key != "Newer" {
				t.Fatalf("the unknown field did not survive: %q", again)
			}
			for _, notMap := range []any{42, "text", []int{1}} {
				b, _ := cc.c.Append(nil, notMap)
				if _, ok := cc.c.Fields(nil, b); ok {
					t.Errorf("Fields of %v succeeded", notMap)
				}
			}
			if _, ok := cc.c.Fields(nil, append(b, b...)); ok {
				t.Error("Fields of two values succeeded")
			}
		})
	}
	// Many fields and long keys use the wider MessagePack headers.
	many := map[string]int{}
	for i := range 70000 {
		many[fmt.Sprint(i)] = i
	}
	many[strings.Repeat("k", 70000)] = 1
	b, _ := codec.MsgPack().Append(nil, many)
	fs, ok := codec.MsgPack().Fields(nil, b)
	if !ok || len(fs) != len(many) {
		t.Fatalf("a map of %d entries split into %d, %v", len(many), len(fs), ok)
	}
	var back map[string]int
	if err := codec.MsgPack().Unmarshal(codec.MsgPack().AppendFields(nil, fs), &back); err != nil || !cmp.Equal(many, back) {
		t.Fatalf("the big map does not join back: %v", err)
	}
}

// tagged is a payload tagged for encoding/json, as many applications' types
// already are, plus one field that MsgPack is told apart.
type tagged struct {
	UserID  int64    `json:"user_id"`
	CSRF    string   `json:"-"`
	Note    string   `json:"note,omitempty"`
	Roles   []string `json:",omitempty"`
	Theme   string   // untagged: the field name
	Both    string   `msgpack:"m" json:"j"`
	MsgOnly string   `msgpack:"-" json:"kept_by_json"`
}

// TestStructTags: MsgPack reads json tags where a field has no msgpack tag,
// so a struct tagged for JSON is stored under the same keys by both codecs;
// a msgpack tag, where there is one, wins.
func TestStructTags(t *testing.T) {
	in := tagged{UserID: 7, CSRF: "secret-csrf", Theme: "dark", Both: "b", MsgOnly: "x"}
	for _, tc := range []struct {
		name string
		c    codec.Codec
		keys []string // the top-level keys stored, sorted
		want tagged   // what decodes back
	}{
		{"msgpack", codec.MsgPack(), []string{"Theme", "m", "user_id"},
			tagged{UserID: 7, Theme: "dark", Both: "b"}},
		{"json", codec.JSON(), []string{"Theme", "j", "kept_by_json", "user_id"},
			tagged{UserID: 7, Theme: "dark", Both: "b", MsgOnly: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.c.Append(nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("secret-csrf")) {
				t.Errorf("a json:\"-\" field was stored: %q", b)
			}
			var m map[string]any
			if err := tc.c.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if diff := cmp.Diff(tc.keys, keys); diff != "" {
				t.Errorf("stored keys (-want +got):\n%s", diff)
			}
			var got tagged
			if err := tc.c.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
	// omitempty from the json tag is honoured when the field is set.
	b, err := codec.MsgPack().Append(nil, &tagged{Note: "n", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := codec.MsgPack().Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["note"] != "n" || m["Roles"] == nil {
		t.Errorf("set omitempty fields: stored %v, want note and Roles", m)
	}
}

// TestStructTagsKeepName: a msgpack tag naming the Go field keeps reading
// records written before the field gained a json tag; an embedded struct
// tagged noinline is nested under its name, as JSON nests it.
func TestStructTagsKeepName(t *testing.T) {
	type before struct {
		UserID int64
		Name   string
	}
	type after struct {
		UserID int64  `msgpack:"UserID" json:"user_id"`
		Name   string `json:"name"`
	}
	b, err := codec.MsgPack().Append(nil, &before{UserID: 7, Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	var got after
	if err := codec.MsgPack().Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(after{UserID: 7}, got); diff != "" {
		t.Errorf("old record into the json-tagged type (-want +got):\n%s", diff)
	}

	type base struct{ A int }
	type outer struct {
		base `msgpack:"base,noinline" json:"base"`
		C    int
	}
	for _, cc := range codecs {
		b, err := cc.c.Append(nil, &outer{base{1}, 2})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := cc.c.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["base"]; !ok || len(m) != 2 {
			t.Errorf("%s: stored %v, want keys base and C", cc.name, m)
		}
	}
}

// TestCodecsAreFunctions: the codecs are returned by functions, not held in
// variables that any package could reassign for every other one. Each call
// returns an equal value, so a caller can tell which codec it holds.
func TestCodecsAreFunctions(t *testing.T) {
	for name, f := range map[string]func() codec.Codec{"MsgPack": codec.MsgPack, "JSON": codec.JSON} {
		if c := f(); c == nil || c != f() {
			t.Errorf("%s() = %#v, then %#v; want one non-nil value", name, c, f())
		}
	}
	if codec.MsgPack() == codec.JSON() {
		t.Error("MsgPack() == JSON()")
	}
}
