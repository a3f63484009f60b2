package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
)

// The differential tests: for the types below, the plan's encoder writes
// the bytes that the msgpack package writes, and Unmarshal (the plan's
// decoder, or the msgpack package where it gives up) decodes any input to
// the value, and the error or not, that the msgpack package alone gives.

type role string

type level uint16

type planBasic struct { // the benchmark's payload
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
}

type planScalars struct {
	B     bool
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	F32   float32
	F64   float64
	S     string
	Bytes []byte
	Role  role
	Level level
	Roles []role
	F32s  []float32
	F64s  []float64
	Bools []bool
	I8s   []int8
	U16s  []uint16
	Us    []uint
}

type planItem struct {
	SKU   string
	Qty   int
	Price float64
}

type planInner struct {
	A int
	B string `json:"b,omitempty"`
}

// PlanEmbedded is exported so that it may also be a field of its own.
type PlanEmbedded struct {
	A int
	X string
}

type planTagged struct {
	planInner            // inlined: A and b
	ID        int64      `json:"id"`
	Note      string     `json:"note,omitempty"`
	Skip      string     `json:"-"`
	SkipMsg   string     `msgpack:"-" json:"skip_msg"`
	Keep      string     `msgpack:"k" json:"j"`
	Dash      string     `msgpack:"-,"`
	Cart      []planItem `json:",omitempty"`
	Addr      struct {
		City string `json:",omitempty"`
		Zip  int    `json:",omitempty"`
	} `json:"addr,omitempty"`
	Always struct {
		City string
	} `json:",omitempty"` // never empty: a field without omitempty
	Matrix  [][]int
	Blobs   [][]byte `json:"blobs,omitempty"`
	Names   [][]string
	F       float64 `json:",omitempty"`
	Flag    bool    `json:",omitempty"`
	U       uint8   `json:",omitempty"`
	private int     //lint:ignore U1000 never encoded: the fuzz target sets it
}

type planShadowed struct { // PlanEmbedded's A is taken: it nests under its name
	A int
	PlanEmbedded
}

type planForced struct { // forced inline: PlanEmbedded's A is dropped
	A            int
	PlanEmbedded `msgpack:",inline"`
}

type planNoInline struct {
	PlanEmbedded `msgpack:",noinline"`
	Z            int
}

type planDup struct { // two fields, one key: both encoded, the last decoded
	A int `msgpack:"x"`
	B int `msgpack:"x"`
}

type planTree struct {
	N    int
	Kids []planTree
}

type planDupInlined struct { // planDup inlined: both of its fields, as ever
	planDup
	C int
}

// planTypes are the types the differential tests run on, each given as a
// pointer to its zero value.
var planTypes = []any{
	new(planBasic), new(planScalars), new(planTagged), new(planShadowed),
	new(planForced), new(planNoInline), new(planDup), new(planTree), new(planDupInlined),
}

func TestPlanBuilt(t *testing.T) {
	for _, v := range planTypes {
		if planFor(reflect.TypeOf(v)) == nil {
			t.Errorf("%T has no plan", v)
		}
	}
}

// cmpExact compares every field, unexported ones too, and floats by their
// bits, so that NaNs compare and -0 differs from 0.
var cmpExact = cmp.Options{
	cmp.Exporter(func(reflect.Type) bool { return true }),
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
	cmp.Comparer(func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }),
}

// checkEncode checks that v, a pointer, encodes as the msgpack package
// encodes it, and decodes back as that package decodes it.
func checkEncode(t *testing.T, v any) []byte {
	t.Helper()
	want, err := slowAppend(nil, v)
	if err != nil {
		t.Fatalf("msgpack: %v", err)
	}
	got, err := MsgPack().Append(nil, v)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Append(%+v) =\n%x, %v; msgpack writes\n%x", v, got, err, want)
	}
	checkDecode(t, want, reflect.TypeOf(v).Elem(), nil)
	return want
}

// checkDecode checks that Unmarshal decodes data into a value of type t
// (a copy of *into, if into is not nil) as the msgpack package does.
func checkDecode(t *testing.T, data []byte, typ reflect.Type, into any) {
	t.Helper()
	slow, fast := reflect.New(typ), reflect.New(typ)
	if into != nil {
		slow.Elem().Set(reflect.ValueOf(into).Elem())
		fast.Elem().Set(reflect.ValueOf(into).Elem())
	}
	var wantErr error
	if wellFormed(data) {
		wantErr = func() (err error) {
			defer func() {
				if recover() != nil {
					err = errMalformed
				}
			}()
			return slowUnmarshal(data, slow.Interface())
		}()
	} else {
		wantErr = errMalformed
	}
	gotErr := MsgPack().Unmarshal(data, fast.Interface())
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Unmarshal(%x) into %v: error %v, msgpack's %v", data, typ, gotErr, wantErr)
	}
	if !same(slow.Interface(), fast.Interface()) {
		t.Fatalf("Unmarshal(%x) into %v (-msgpack +got):\n%s", data, typ,
			cmp.Diff(slow.Interface(), fast.Interface(), cmpExact))
	}
}

// same reports whether a and b are equal under cmpExact. It asks cmp only
// when quicker checks disagree: cmp is slow enough to halve the fuzzing.
func same(a, b any) bool {
	ea, err1 := slowAppend(nil, a)
	eb, err2 := slowAppend(nil, b)
	if err1 == nil && err2 == nil && bytes.Equal(ea, eb) && reflect.DeepEqual(a, b) {
		return true // DeepEqual misses only floats' bits, and the bytes hold them
	}
	return cmp.Equal(a, b, cmpExact)
}

// source turns fuzz bytes into values.
type source struct {
	b    []byte
	made int // bytes and elements made so far: long ones stop at 1<<17
}

func (s *source) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *source) uint64() uint64 {
	var b [8]byte
	n := copy(b[:], s.b)
	s.b = s.b[n:]
	return binary.LittleEndian.Uint64(b[:])
}

// integer returns a number near one of the boundaries of the encodings.
func (s *source) integer() uint64 {
	edges := [...]int64{0, 0x7f, 0xff, 0xffff, 0xffff_ffff, math.MaxInt64, -1,
		-32, -33, math.MinInt8, math.MinInt8 - 1, math.MinInt16, math.MinInt16 - 1,
		math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	c := s.byte()
	if c&0x80 != 0 {
		return s.uint64()
	}
	return uint64(edges[int(c)%len(edges)] + int64(int8(s.byte())%3))
}

// fill sets v, addressable, from the source.
func (s *source) fill(v reflect.Value, depth int) {
	if !v.CanSet() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(s.byte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(s.integer()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(s.integer())
	case reflect.Float32:
		v.SetFloat(float64(math.Float32frombits(uint32(s.uint64()))))
	case reflect.Float64:
		v.SetFloat(math.Float64frombits(s.uint64()))
	case reflect.String:
		n := int(s.byte())
		switch {
		case n < 250:
			n %= 40
		case s.made < 1<<17:
			n = 1 << (n - 242) // str8 to str32 lengths: 256 to 1<<16
		}
		s.made += n
		v.SetString(strings.Repeat(string(rune('a'+n%26)), n))
	case reflect.Slice:
		c := s.byte()
		switch {
		case c == 0 || depth > 3:
			v.SetZero()
		case c == 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, int(s.byte()%3)))
		default:
			n := int(c % 6)
			if c > 250 && s.made < 1<<17 {
				n = int(c-250) * 20 // array16 and bin16
			}
			s.made += n
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				s.fill(v.Index(i), depth+1)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			s.fill(v.Field(i), depth+1)
		}
	}
}

func FuzzMsgPackPlan(f *testing.F) {
	for _, v := range planTypes {
		s := source{b: bytes.Repeat([]byte{3, 0x81, 7, 0x22, 2}, 10)}
		x := reflect.New(reflect.TypeOf(v).Elem())
		s.fill(x.Elem(), 0)
		b, err := slowAppend(nil, x.Interface())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa1, 'A', 0x01, 0xa1, 'x', 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range planTypes {
			typ := reflect.TypeOf(v).Elem()
			// A value from the data: the same bytes, and the same value.
			s := source{b: data}
			x := reflect.New(typ)
			s.fill(x.Elem(), 0)
			enc := checkEncode(t, x.Interface())
			// The data as an encoding, into a zero value and into x.
			checkDecode(t, data, typ, nil)
			checkDecode(t, data, typ, x.Interface())
			// The value's encoding with one byte changed.
			if len(enc) > 0 && len(data) > 1 {
				i := int(data[0]) * len(enc) / 256
				enc[i] = data[1]
				checkDecode(t, enc, typ, nil)
				checkDecode(t, enc, typ, x.Interface())
			}
		}
	})
}

// mp encodes v with the msgpack package, for inputs in tests.
func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := slowAppend(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanDecodeEdges: inputs the plan's decoder gives up on, or reads
// only by the msgpack package's own rules, decode as that package decodes
// them, into a zero value and into a full one.
func TestPlanDecodeEdges(t *testing.T) {
	type kv = map[string]any
	full := &planScalars{I: 1, I8: 2, S: "old", Bytes: []byte("old"), Roles: []role{"r"}, F32s: []float32{1}}
	tagged := &planTagged{ID: 1, Cart: []planItem{{"A", 1, 1}, {"B", 2, 2}}, Names: [][]string{{"x"}, nil}}
	tests := []struct {
		name string
		into any
		data []byte
	}{
		{"nil for an int", full, mp(t, kv{"I": nil})},
		{"nil for a string", full, mp(t, kv{"S": nil})},
		{"nil for a bool", full, mp(t, kv{"B": nil})},
		{"nil for a float", full, mp(t, kv{"F64": nil, "F32": nil})},
		{"nil for []byte", full, mp(t, kv{"Bytes": nil})},
		{"nil for []role", full, mp(t, kv{"Roles": nil})},
		{"nil for []string", &planBasic{Roles: []string{"kept"}}, mp(t, kv{"Roles": nil})},
		{"nil for a struct", tagged, mp(t, kv{"addr": nil})},
		{"nil for the payload", full, []byte{0xc0}},
		{"empty array for a nil slice", new(planScalars), mp(t, kv{"Roles": []any{}, "F32s": []any{}})},
		{"empty array for a slice", full, mp(t, kv{"Roles": []any{}, "F32s": []any{}})},
		{"empty bin", full, mp(t, kv{"Bytes": []byte{}})},
		{"empty bin for nil", new(planScalars), mp(t, kv{"Bytes": []byte{}})},
		{"int8 overflow", full, mp(t, kv{"I8": 300})},
		{"int16 overflow", full, mp(t, kv{"I16": -40000})},
		{"int32 overflow", full, mp(t, kv{"I32": int64(1) << 40})},
		{"uint64 into int64", full, mp(t, kv{"I64": uint64(math.MaxUint64)})},
		{"negative into uint", full, mp(t, kv{"U": -1, "U8": -1})},
		{"uint8 overflow", full, mp(t, kv{"U8": 256})},
		{"int8 width for an int", full, []byte{0x81, 0xa1, 'I', 0xd0, 0x05}},
		{"uint64 width for a small int", full, []byte{0x81, 0xa1, 'I', 0xcf, 0, 0, 0, 0, 0, 0, 0, 5}},
		{"int into a float", full, mp(t, kv{"F64": 3, "F32": -3})},
		{"float32 into float64", full, mp(t, kv{"F64": float32(1.5)})},
		{"float64 into float32", full, mp(t, kv{"F32": 1.5})},
		{"string into an int", full, mp(t, kv{"I": "1"})},
		{"bin into a string", full, mp(t, kv{"S": []byte("bin")})},
		{"str into []byte", full, mp(t, kv{"Bytes": "str"})},
		{"bool into an int", full, mp(t, kv{"I": true})},
		{"int into a bool", full, mp(t, kv{"B": 1})},
		{"array into a struct", tagged, mp(t, kv{"addr": []any{"Paris", 75}})},
		{"array for the payload", new(planBasic), mp(t, []any{1, "n", nil, "c", nil, 2})},
		{"map into a slice", full, mp(t, kv{"F32s": kv{}})},
		{"ext in a field", full, []byte{0x81, 0xa1, 'I', 0xd4, 0x01, 0x01}},
		{"ext in an unknown key", full, []byte{0x82, 0xa1, '?', 0xd4, 0x01, 0x01, 0xa1, 'I', 0x07}},
		{"time in an unknown key", full, mp(t, kv{"When": time.Unix(1, 2)})},
		{"bin key", full, []byte{0x81, 0xc4, 0x01, 'I', 0x07}},
		{"nil key", full, []byte{0x81, 0xc0, 0x07}},
		{"int key", full, []byte{0x81, 0x01, 0x07}},
		{"a key twice", full, []byte{0x82, 0xa1, 'I', 0x01, 0xa1, 'I', 0x02}},
		{"trailing values", full, append(mp(t, kv{"I": 9}), 0x01, 0xa1, 'x')},
		{"fields out of order", new(planBasic), mp(t, kv{"LastSeen": 1, "UserID": 2, "Name": "n"})},
		{"error after fields", full, []byte{0x83, 0xa1, 'I', 0x09, 0xa1, 'S', 0xa3, 'n', 'e', 'w', 0xa1, 'B', 0x07}},
		{"merge into struct elements", tagged, mp(t, kv{"Cart": []kv{{"Qty": 5}}, "Names": []any{nil, []string{"y"}, nil}})},
		{"the embedded struct by name", new(planTagged), mp(t, kv{"planInner": kv{"A": 4, "b": "x"}})},
		{"the embedded struct by its fields", new(planTagged), mp(t, kv{"A": 4, "b": "x"})},
		{"shadowed embedded struct", new(planShadowed), mp(t, kv{"A": 1, "PlanEmbedded": kv{"A": 2, "X": "x"}})},
		{"a duplicated key", new(planDup), []byte{0x82, 0xa1, 'x', 0x01, 0xa1, 'x', 0x02}},
		{"a duplicated key, inlined", new(planDupInlined), []byte{0x83, 0xa1, 'x', 0x01, 0xa1, 'x', 0x02, 0xa1, 'C', 0x03}},
		{"a struct with a duplicated key by name", new(planDupInlined), mp(t, kv{"planDup": kv{"x": 4}})},
		{"deep tree", new(planTree), mp(t, kv{"N": 1, "Kids": []kv{{"N": 2, "Kids": []kv{{"N": 3}}}, {"Kids": nil}}})},
		{"map16", new(planBasic), append([]byte{0xde, 0, 1}, mp(t, kv{"Name": "n"})[1:]...)},
		{"array16 and str8", new(planBasic), []byte{0x81, 0xa5, 'R', 'o', 'l', 'e', 's', 0xdc, 0, 1, 0xd9, 1, 'r'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := reflect.TypeOf(tt.into).Elem()
			checkDecode(t, tt.data, typ, nil)
			checkDecode(t, tt.data, typ, tt.into)
		})
	}
}

// TestPlanEncodeEdges: values at the edges of each encoding are written as
// the msgpack package writes them.
func TestPlanEncodeEdges(t *testing.T) {
	snan32 := math.Float32frombits(0x7f800001) // quieted on the way, by both
	tests := []any{
		&planScalars{},
		&planScalars{F32: snan32, F64: math.Float64frombits(0x7ff0000000000001), F32s: []float32{snan32, float32(math.Inf(-1))}},
		&planScalars{F32: float32(math.Copysign(0, -1)), F64: math.Copysign(0, -1)},
		&planScalars{I: math.MinInt64, I8: math.MinInt8, I16: math.MinInt16, I32: math.MinInt32, I64: math.MaxInt64,
			U: math.MaxUint64, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64},
		&planScalars{I: -32, I8: -33, I16: 127, I32: 128, I64: 255, U: 256, U16: 65535, U32: 65536, U64: 1 << 32},
		&planScalars{S: strings.Repeat("s", 31), Bytes: []byte{}, Roles: []role{}, Bools: []bool{true, false}},
		&planScalars{S: strings.Repeat("s", 32), Bytes: bytes.Repeat([]byte{1}, 255), Us: make([]uint, 15)},
		&planScalars{S: strings.Repeat("s", 256), Bytes: bytes.Repeat([]byte{1}, 256), Us: make([]uint, 16)},
		&planScalars{S: strings.Repeat("s", 1<<16), Bytes: bytes.Repeat([]byte{1}, 1<<16), I8s: make([]int8, 1<<16)},
		&planScalars{S: strings.Repeat("é", 1<<15), U16s: make([]uint16, 1<<16-1)},
		&planTagged{},
		&planTagged{Note: "n", Cart: []planItem{}, F: math.Copysign(0, -1), Flag: true, U: 1, Blobs: [][]byte{nil, {}}},
		&planTagged{Dash: "x", Skip: "x", SkipMsg: "x", private: 1},
		&planForced{A: 1, PlanEmbedded: PlanEmbedded{A: 2, X: "x"}},
		&planNoInline{PlanEmbedded{1, "x"}, 2},
		&planDup{1, 2},
		&planDupInlined{planDup{1, 2}, 3},
		&planTree{1, []planTree{{2, nil}, {3, []planTree{}}}},
	}
	for _, v := range tests {
		checkEncode(t, v)
	}
}

type customEnc struct{ A int }

func (c *customEnc) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeInt(int64(c.A)) }

type textName string

func (n textName) MarshalText() ([]byte, error) { return []byte("t:" + n), nil }

type zeroer struct{ A int }

func (zeroer) IsZero() bool { return true }

type registered struct{ A int }

type hiddenRole string

// TestPlanNone: types the plan leaves to the msgpack package.
func TestPlanNone(t *testing.T) {
	msgpack.RegisterExtEncoder(77, registered{}, func(*msgpack.Encoder, reflect.Value) ([]byte, error) {
		return []byte{1}, nil
	})
	for _, v := range []any{
		new(struct{ T time.Time }),
		new(struct{ M map[string]int }),
		new(struct{ P *int }),
		new(struct{ I any }),
		new(struct{ A [2]int }),
		new(struct{ S [][2]int }),
		new(struct{ U uintptr }),
		new(struct{ C complex128 }),
		new(struct{ E error }),
		new(struct{ C customEnc }),
		new(customEnc),
		new(struct{ N textName }),
		new(struct{ N []textName }),
		new(struct {
			Z zeroer `json:",omitempty"`
		}),
		new(struct {
			A int `msgpack:"a,alias:b"`
		}),
		new(struct {
			S string `msgpack:",intern"`
		}),
		new(struct {
			_msgpack struct{} `msgpack:",as_array"`
			A        int
		}),
		new(struct{ *PlanEmbedded }),
		new(struct{ hiddenRole }),
		new(struct {
			A         int
			planInner `msgpack:",noinline"`
		}),
		new(struct{ R registered }),
		new(int),
		new([]string),
		new(map[string]any),
	} {
		if planFor(reflect.TypeOf(v)) != nil {
			t.Errorf("%T has a plan", v)
		}
	}
}

// TestPlanTakesItsOwn: the plan's decoder reads every encoding the plan's
// encoder writes without giving up, and the benchmark's payload costs one
// allocation for its strings and one per slice.
func TestPlanTakesItsOwn(t *testing.T) {
	for _, v := range planTypes {
		typ := reflect.TypeOf(v)
		s := source{b: bytes.Repeat([]byte{3, 0x81, 7, 0x22, 2, 0, 1}, 20)}
		x := reflect.New(typ.Elem())
		s.fill(x.Elem(), 0)
		b, _ := MsgPack().Append(nil, x.Interface())
		if !planFor(typ).unmarshal(b, reflect.New(typ.Elem()).UnsafePointer()) {
			t.Errorf("%v: the plan gave up on %x", typ, b)
		}
	}
	in := &planBasic{4211, "Ada", []string{"admin", "editor"}, "csrf", []int64{1, 2, 3}, 17}
	b, _ := MsgPack().Append(nil, in)
	var out planBasic
	if n := testing.AllocsPerRun(100, func() {
		out = planBasic{}
		if err := MsgPack().Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
	}); n > 3 {
		t.Errorf("Unmarshal: %v allocations, want 3", n)
	}
	if diff := cmp.Diff(in, &out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := testing.AllocsPerRun(100, func() { b, _ = MsgPack().Append(b[:0], in) }); n != 0 {
		t.Errorf("Append: %v allocations, want none", n)
	}
}

// TestPlanConcurrent: goroutines that meet types for the first time at once
// build and use their plans safely (run with -race), and agree.
func TestPlanConcurrent(t *testing.T) {
	type fresh1 struct {
		A int
		S []string
	}
	type fresh2 struct {
		B  bool
		F1 fresh1
		Fs []fresh1
	}
	type fresh3 struct {
		fresh1
		C string `json:"c,omitempty"`
	}
	values := []any{&fresh1{1, []string{"a"}}, &fresh2{true, fresh1{2, nil}, []fresh1{{3, []string{}}}}, &fresh3{fresh1{4, nil}, "c"}}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(values))
	for g := range 8 {
		for _, v := range values[g%len(values):] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					b, err := MsgPack().Append(nil, v)
					if err != nil {
						errs <- err
						return
					}
					got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
					if err := MsgPack().Unmarshal(b, got); err != nil || !reflect.DeepEqual(got, v) {
						errs <- fmt.Errorf("%T: decoded %+v, %v", v, got, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, v := range values {
		if planFor(reflect.TypeOf(v)) == nil {
			t.Errorf("%T has no plan", v)
		}
	}
}

// delegated is given an encoder with msgpack.Register that itself uses the
// codec, on a type the codec has not met yet.
type delegated struct{ A int }

type delegatedInner struct{ B int }

type delegatedOuter struct{ D delegated }

// TestPlanRegisteredUsesCodec: checking a plan runs the msgpack package,
// and through it any encoder registered with it, which may use the codec:
// that must not wait on the check in progress.
func TestPlanRegisteredUsesCodec(t *testing.T) {
	msgpack.Register(delegated{}, func(e *msgpack.Encoder, v reflect.Value) error {
		b, err := MsgPack().Append(nil, &delegatedInner{B: int(v.Field(0).Int())})
		if err != nil {
			return err
		}
		return e.EncodeBytes(b)
	}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := MsgPack().Append(nil, &delegatedOuter{delegated{1}})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append of a type whose registered encoder uses the codec did not return")
	}
	if planFor(reflect.TypeOf(new(delegatedOuter))) != nil {
		t.Error("a struct holding a registered type has a plan")
	}
}

// lowerName is given a decoder with msgpack.Register that changes some
// values and not others: one that lower-cases.
type lowerName string

type planLower struct{ N lowerName }

// TestPlanRegisteredDecoder: a struct holding a type registered with the
// msgpack package stays with that package even where the registered
// decoder leaves plain samples as they are.
func TestPlanRegisteredDecoder(t *testing.T) {
	msgpack.Register(lowerName(""), nil, func(d *msgpack.Decoder, v reflect.Value) error {
		s, err := d.DecodeString()
		v.SetString(strings.ToLower(s))
		return err
	})
	checkDecode(t, mp(t, &planLower{"ABC"}), reflect.TypeFor[planLower](), nil)
	if planFor(reflect.TypeOf(new(planLower))) != nil {
		t.Error("a struct holding a registered type has a plan")
	}
}
