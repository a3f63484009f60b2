package codec

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
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

// planTypes are the types the differential tests run on, each given as a
// pointer to its zero value.
var planTypes = []any{
	new(planBasic), new(planScalars), new(planTagged), new(planShadowed),
	new(planForced), new(planNoInline), new(planDup), new(planTree),
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
