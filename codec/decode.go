package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"unsafe"
)

// The plan's decoder takes the encodings the plan's encoder writes, and
// those the msgpack package's decoder (decode_*.go in v5.4.1) reads to the
// same value without conversion: any integer width for an integer that
// fits the field, float32 for a float64, str keys. On anything else (nil
// where a value is expected, an integer that overflows its field, a type
// that does not match, an ext, an array for a struct) it gives up, and
// Unmarshal decodes the whole input with the msgpack package, so that its
// errors and its conversions stay what they were.
//
// It decodes into the value as the msgpack package does: keys absent from
// the input leave their field as it was, unknown keys are skipped, a nil
// []string leaves the slice as it was. One difference, in memory only: a
// slice gets a new array rather than reusing the capacity of the one it
// held, with the same elements (for a struct element, the one it held at
// that index, into which the input's keys are decoded). So a decode that
// gives up has written nothing that the value held before, and the
// msgpack package starts again from the value as it was.

// decoder reads a MessagePack value that wellFormed accepted.
type decoder struct {
	in   []byte // the input
	b    []byte // the input not yet read
	copy string // the input, copied when the first string is decoded
}

// string returns s, a part of the input, as a string. Every string that one
// decode returns shares one copy of the input, which costs one allocation
// rather than one per string, and keeps that copy in memory as long as any
// of them is.
func (d *decoder) string(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if d.copy == "" {
		d.copy = string(d.in)
	}
	i := len(d.in) - len(d.b) - len(s) // s was just taken from the front of b
	return d.copy[i : i+len(s)]
}

// unmarshal decodes data into the struct at p, reporting false, with the
// struct as it was, if it gave up.
func (pl *plan) unmarshal(data []byte, p unsafe.Pointer) bool {
	// Keep what the struct held, to put it back if the decoder gives up.
	// The manager decodes into a zero value: that takes no copy.
	size := pl.typ.Size()
	zero := isZeroMemory(p, size)
	var saved reflect.Value
	if !zero {
		saved = reflect.New(pl.typ)
		saved.Elem().Set(reflect.NewAt(pl.typ, p).Elem())
	}
	d := decoder{in: data, b: data}
	if pl.decode(&d, p) {
		return true
	}
	if zero {
		reflect.NewAt(pl.typ, p).Elem().SetZero()
	} else {
		reflect.NewAt(pl.typ, p).Elem().Set(saved.Elem())
	}
	return false
}

func isZeroMemory(p unsafe.Pointer, size uintptr) bool {
	i := uintptr(0)
	if uintptr(p)%8 == 0 {
		for ; i+8 <= size; i += 8 {
			if *(*uint64)(unsafe.Add(p, i)) != 0 {
				return false
			}
		}
	}
	for ; i < size; i++ {
		if *(*byte)(unsafe.Add(p, i)) != 0 {
			return false
		}
	}
	return true
}

// decode decodes a map into the struct at p.
func (pl *plan) decode(d *decoder, p unsafe.Pointer) bool {
	n, ok := d.mapLen()
	if !ok {
		return false
	}
	next := 0 // the field expected next: keys usually come in plan order
	for range n {
		key, ok := d.str()
		if !ok {
			return false
		}
		var f *field
		if next < len(pl.fields) && pl.fields[next].decodes && string(key) == pl.fields[next].name {
			f = pl.fields[next]
		} else if f = pl.byName[string(key)]; f == nil {
			if !d.skip() {
				return false
			}
			continue
		}
		if f.idx >= 0 {
			next = f.idx + 1
		}
		if !f.op.decode(d, unsafe.Add(p, f.off)) {
			return false
		}
	}
	return true
}

// decode decodes one value into p.
func (o *op) decode(d *decoder, p unsafe.Pointer) bool {
	switch o.kind {
	case opBool:
		c, ok := d.code()
		if !ok || c&^1 != 0xc2 {
			return false
		}
		*(*bool)(p) = c == 0xc3
		return true
	case opInt:
		n, ok := d.int()
		if !ok {
			return false
		}
		switch o.size {
		case 1:
			if n != int64(int8(n)) {
				return false
			}
			*(*int8)(p) = int8(n)
		case 2:
			if n != int64(int16(n)) {
				return false
			}
			*(*int16)(p) = int16(n)
		case 4:
			if n != int64(int32(n)) {
				return false
			}
			*(*int32)(p) = int32(n)
		default:
			*(*int64)(p) = n
		}
		return true
	case opUint:
		n, ok := d.uint()
		if !ok {
			return false
		}
		switch o.size {
		case 1:
			if n > math.MaxUint8 {
				return false
			}
			*(*uint8)(p) = uint8(n)
		case 2:
			if n > math.MaxUint16 {
				return false
			}
			*(*uint16)(p) = uint16(n)
		case 4:
			if n > math.MaxUint32 {
				return false
			}
			*(*uint32)(p) = uint32(n)
		default:
			*(*uint64)(p) = n
		}
		return true
	case opFloat32:
		c, ok := d.code()
		if !ok || c != 0xca {
			return false
		}
		x, ok := d.fixed(4)
		if !ok {
			return false
		}
		// Through float64 and back, as reflect.Value.SetFloat does.
		*(*float32)(p) = float32(float64(math.Float32frombits(uint32(x))))
		return true
	case opFloat64:
		c, ok := d.code()
		if !ok {
			return false
		}
		switch c {
		case 0xca:
			x, ok := d.fixed(4)
			*(*float64)(p) = float64(math.Float32frombits(uint32(x)))
			return ok
		case 0xcb:
			x, ok := d.fixed(8)
			*(*float64)(p) = math.Float64frombits(x)
			return ok
		}
		return false
	case opString:
		s, ok := d.str()
		if !ok {
			return false
		}
		*(*string)(p) = d.string(s)
		return true
	case opBytes:
		return d.bytes((*[]byte)(p))
	case opSlice:
		return o.decodeSlice(d, (*sliceHeader)(p))
	case opStruct:
		return o.st.decode(d, p)
	}
	return false
}

// emptyArray is where a non-nil empty slice points.
var emptyArray [0]uint64

// decodeSlice decodes an array or nil into the slice h.
func (o *op) decodeSlice(d *decoder, h *sliceHeader) bool {
	if len(d.b) > 0 && d.b[0] == 0xc0 {
		d.b = d.b[1:]
		if !o.strings { // the msgpack package leaves a []string alone
			*h = sliceHeader{}
		}
		return true
	}
	n, ok := d.arrayLen()
	if !ok {
		return false
	}
	if n == 0 {
		if h.data == nil {
			h.data = unsafe.Pointer(&emptyArray)
		}
		h.len = 0
		return true
	}
	old := *h
	switch {
	case o.elem.kind == opString:
		s := make([]string, n)
		h.data = unsafe.Pointer(unsafe.SliceData(s))
	case !o.ptrs:
		s := make([]uint64, (uintptr(n)*o.size+7)/8)
		h.data = unsafe.Pointer(unsafe.SliceData(s))
	default:
		*h = sliceHeader{}
		v := reflect.NewAt(o.typ, unsafe.Pointer(h)).Elem()
		v.Grow(n)
	}
	h.len, h.cap = n, n
	if k := o.elem.kind; (k == opStruct || k == opSlice) && old.data != nil {
		o.keep(h, old)
	}
	for i := range n {
		if !o.elem.decode(d, unsafe.Add(h.data, uintptr(i)*o.size)) {
			return false
		}
	}
	return true
}

// keep copies into h the elements that old held up to its capacity: the
// msgpack package decodes into those, and a struct keeps the fields the
// input does not name, a []string the value a nil leaves alone.
func (o *op) keep(h *sliceHeader, old sliceHeader) {
	m := min(h.len, old.cap)
	old.len, old.cap = m, m
	reflect.Copy(reflect.NewAt(o.typ, unsafe.Pointer(h)).Elem(), reflect.NewAt(o.typ, unsafe.Pointer(&old)).Elem())
}

func (d *decoder) code() (byte, bool) {
	if len(d.b) == 0 {
		return 0, false
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, true
}

// fixed reads an n-byte big-endian number.
func (d *decoder) fixed(n int) (uint64, bool) {
	if len(d.b) < n {
		return 0, false
	}
	var x uint64
	switch n {
	case 1:
		x = uint64(d.b[0])
	case 2:
		x = uint64(binary.BigEndian.Uint16(d.b))
	case 4:
		x = uint64(binary.BigEndian.Uint32(d.b))
	default:
		x = binary.BigEndian.Uint64(d.b)
	}
	d.b = d.b[n:]
	return x, true
}

// int reads an integer of any width that fits in an int64.
func (d *decoder) int() (int64, bool) {
	c, ok := d.code()
	if !ok {
		return 0, false
	}
	if c <= 0x7f || c >= 0xe0 {
		return int64(int8(c)), true
	}
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf: // uint8 to uint64
		x, ok := d.fixed(1 << (c - 0xcc))
		return int64(x), ok && x <= math.MaxInt64
	case 0xd0:
		x, ok := d.fixed(1)
		return int64(int8(x)), ok
	case 0xd1:
		x, ok := d.fixed(2)
		return int64(int16(x)), ok
	case 0xd2:
		x, ok := d.fixed(4)
		return int64(int32(x)), ok
	case 0xd3:
		x, ok := d.fixed(8)
		return int64(x), ok
	}
	return 0, false
}

// uint reads an integer of any width that is not negative.
func (d *decoder) uint() (uint64, bool) {
	if len(d.b) > 0 && d.b[0] == 0xcf { // beyond int64
		d.b = d.b[1:]
		return d.fixed(8)
	}
	n, ok := d.int()
	return uint64(n), ok && n >= 0
}

// str reads a string's bytes, which alias the input.
func (d *decoder) str() ([]byte, bool) {
	c, ok := d.code()
	if !ok {
		return nil, false
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb: // str8 to str32
		if n, ok = d.fixed(1 << (c - 0xd9)); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	return d.take(n)
}

// bytes reads bin or nil into *b as the msgpack package does: nil for nil,
// and an empty bin leaves a non-nil slice non-nil.
func (d *decoder) bytes(b *[]byte) bool {
	c, ok := d.code()
	if !ok {
		return false
	}
	if c == 0xc0 {
		*b = nil
		return true
	}
	if c < 0xc4 || c > 0xc6 { // bin8 to bin32
		return false
	}
	n, ok := d.fixed(1 << (c - 0xc4))
	if !ok {
		return false
	}
	s, ok := d.take(n)
	if !ok {
		return false
	}
	switch {
	case n > 0:
		*b = append([]byte(nil), s...)
	case *b == nil:
		*b = []byte{}
	default:
		*b = (*b)[:0]
	}
	return true
}

func (d *decoder) take(n uint64) ([]byte, bool) {
	if n > uint64(len(d.b)) {
		return nil, false
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s, true
}

func (d *decoder) arrayLen() (int, bool) {
	c, ok := d.code()
	if !ok {
		return 0, false
	}
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), true
	case c == 0xdc || c == 0xdd:
		n, ok := d.fixed(2 << (c - 0xdc))
		return int(n), ok && n <= uint64(len(d.b)) // each element takes a byte
	}
	return 0, false
}

func (d *decoder) mapLen() (int, bool) {
	c, ok := d.code()
	if !ok {
		return 0, false
	}
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), true
	case c == 0xde || c == 0xdf:
		n, ok := d.fixed(2 << (c - 0xde))
		return int(n), ok && n <= uint64(len(d.b))
	}
	return 0, false
}

// skip passes over one value.
func (d *decoder) skip() bool {
	n, ok := skipValue(d.b)
	if ok {
		d.b = d.b[n:]
	}
	return ok
}
