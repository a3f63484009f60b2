package codec

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// The plan's encoder writes what the msgpack package's Encoder writes with
// UseCompactInts(true), SetSortMapKeys(true) (no map reaches a plan) and the
// json struct tag (encode_*.go in v5.4.1): integers in their smallest form,
// floats at their own width, nil for a nil slice, bin for []byte.

// append appends the encoding of the struct at p.
func (pl *plan) append(b []byte, p unsafe.Pointer) []byte {
	n := len(pl.fields)
	if pl.omitEmpty {
		n = 0
		for _, f := range pl.fields {
			if !f.omitEmpty || !f.op.empty(unsafe.Add(p, f.off)) {
				n++
			}
		}
	}
	b = appendMapLen(b, n)
	for _, f := range pl.fields {
		fp := unsafe.Add(p, f.off)
		if f.omitEmpty && f.op.empty(fp) {
			continue
		}
		b = append(b, f.key...)
		b = f.op.append(b, fp)
	}
	return b
}

// append appends the encoding of the value at p.
func (o *op) append(b []byte, p unsafe.Pointer) []byte {
	switch o.kind {
	case opBool:
		if *(*bool)(p) {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case opInt:
		return appendInt(b, loadInt(p, o.size))
	case opUint:
		return appendUint(b, loadUint(p, o.size))
	case opFloat32:
		// Through float64 and back, as the msgpack package's reflection
		// does: that quiets a signalling NaN.
		f := float32(float64(*(*float32)(p)))
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f))
	case opFloat64:
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(*(*float64)(p)))
	case opString:
		s := *(*string)(p)
		return append(appendStringLen(b, len(s)), s...)
	case opBytes:
		s := *(*[]byte)(p)
		if s == nil {
			return append(b, 0xc0)
		}
		return append(appendBinLen(b, len(s)), s...)
	case opSlice:
		h := (*sliceHeader)(p)
		if h.data == nil {
			return append(b, 0xc0)
		}
		b = appendArrayLen(b, h.len)
		for i := range h.len {
			b = o.elem.append(b, unsafe.Add(h.data, uintptr(i)*o.size))
		}
		return b
	case opStruct:
		return o.st.append(b, p)
	}
	panic("codec: unknown op")
}

// empty reports whether omitempty leaves out the value at p, as the msgpack
// package's isEmptyValue decides (a plan has no type with an IsZero
// method): false, zero, an empty string or slice, a struct that would
// encode no field.
func (o *op) empty(p unsafe.Pointer) bool {
	switch o.kind {
	case opBool:
		return !*(*bool)(p)
	case opInt:
		return loadInt(p, o.size) == 0
	case opUint:
		return loadUint(p, o.size) == 0
	case opFloat32:
		return *(*float32)(p) == 0
	case opFloat64:
		return *(*float64)(p) == 0
	case opString:
		return len(*(*string)(p)) == 0
	case opBytes, opSlice:
		return (*sliceHeader)(p).len == 0
	case opStruct:
		for _, f := range o.st.fields {
			if !f.omitEmpty || !f.op.empty(unsafe.Add(p, f.off)) {
				return false
			}
		}
		return true
	}
	panic("codec: unknown op")
}

// sliceHeader is the layout of a slice.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

func loadInt(p unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(p))
	case 2:
		return int64(*(*int16)(p))
	case 4:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func loadUint(p unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}

// appendInt writes n as EncodeInt does.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// appendUint writes n as EncodeUint does.
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

func appendStringLen(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n < 256:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

func appendString(b []byte, s string) []byte {
	return append(appendStringLen(b, len(s)), s...)
}

func appendBinLen(b []byte, n int) []byte {
	switch {
	case n < 256:
		return append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}
