package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack returns the default codec, which encodes with MessagePack
// (github.com/vmihailenco/msgpack/v5): structs as maps keyed by field name
// (or the name its `msgpack` or `json` tag gives: see Struct tags in the
// package documentation), integers in their smallest form, time.Time to the
// nanosecond. Every call returns the same value.
//
// A struct whose fields are all bools, numbers, strings, []byte, slices of
// these or structs of these (a payload's usual shape) is encoded and
// decoded without that package's reflection, several times faster, to the
// same bytes and the same values; a type that implements one of the
// package's encoding interfaces (or encoding.BinaryMarshaler,
// encoding.TextMarshaler and their decoding twins), and any field of
// another kind (time.Time, maps, pointers, interfaces, arrays), leave the
// whole struct to the package. A type given its own encoder or decoder with
// msgpack.Register or RegisterExtEncoder must be registered before the
// codec first meets a struct holding it, as the package itself requires;
// the codec then recognises it by its encoding or decoding a few sample
// values otherwise than the package's own code, which an encoder or decoder
// that changes only some values may not do: give such a type a method
// (msgpack.CustomEncoder and CustomDecoder) instead.
func MsgPack() Codec { return msgpackCodec{} }

type msgpackCodec struct{}

// structTag is read for a field that has no msgpack tag, so that a struct
// tagged for encoding/json is stored under the same keys, and leaves out the
// same fields, with either codec.
const structTag = "json"

type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(msgpackEncoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	e.enc.SetCustomStructTag(structTag)
	// Equal maps then encode alike (for the common key and value types), so
	// a read-only request rarely needs the manager's slower equality check.
	e.enc.SetSortMapKeys(true)
	return e
}}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// maxPooled keeps a rare huge payload from pinning its buffer in the pool.
const maxPooled = 64 << 10

// Append encodes a pointer to a struct that has a plan (see plan.go)
// without the msgpack package, to the same bytes.
func (msgpackCodec) Append(dst []byte, v any) ([]byte, error) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if pl := planFor(rv.Type()); pl != nil {
			return pl.append(dst, rv.UnsafePointer()), nil
		}
	}
	return slowAppend(dst, v)
}

// slowAppend encodes v with the msgpack package.
func slowAppend(dst []byte, v any) ([]byte, error) {
	e := encoders.Get().(*msgpackEncoder)
	e.buf.Reset()
	err := e.enc.Encode(v)
	if err == nil {
		dst = append(dst, e.buf.Bytes()...)
	}
	if e.buf.Cap() <= maxPooled {
		encoders.Put(e)
	}
	return dst, err
}

// Unmarshal checks that data is well-formed before decoding it: the
// msgpack package allocates what a length prefix declares before reading the
// elements, so five bytes declaring a 2^32-element array would otherwise cost
// gigabytes (or crash the process) when decoded into a slice or []byte.
//
// It also turns a panic of the decoder into an error: msgpack/v5.4.1 panics
// on a nil where the type is a struct, array or other non-nilable type whose
// pointer implements a decoding interface (time.Time among them), which is
// what a record holds after a field changes from *time.Time to time.Time.
//
// Into a pointer to a struct that has a plan, it decodes without the msgpack
// package where it can do so to the same value, and with that package
// otherwise (see decode.go).
func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if !wellFormed(data) {
		return errMalformed
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if pl := planFor(rv.Type()); pl != nil && pl.unmarshal(data, rv.UnsafePointer()) {
			return nil
		}
	}
	return slowUnmarshal(data, v)
}

// slowUnmarshal decodes well-formed data into v with the msgpack package.
func slowUnmarshal(data []byte, v any) (err error) {
	d := decoders.Get().(*msgpackDecoder)
	defer func() {
		if r := recover(); r != nil {
			// d is left in an unknown state: let it go rather than pool it.
			err = fmt.Errorf("codec: msgpack: cannot decode into %T: %v", v, r)
			return
		}
		d.r.Reset(nil)
		decoders.Put(d)
	}()
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	d.dec.SetCustomStructTag(structTag) // Reset forgets it
	return d.dec.Decode(v)
}

var errMalformed = errors.New("codec: malformed msgpack")

// maxDepth bounds how deeply arrays and maps may nest, as encoding/json does,
// so that decoding cannot exhaust the stack.
const maxDepth = 10000

// wellFormed reports whether b is a sequence of complete MessagePack values
// in which every declared length fits in the bytes that follow it and nesting
// stays within maxDepth. Since each element takes at least one byte, what a
// decoder allocates for b is then in proportion to len(b). It allocates
// nothing unless nesting is deeper than 16.
func wellFormed(b []byte) bool {
	var open [16]int
	stack := open[:0] // rem of each enclosing container
	rem := -1         // values left in the innermost container; -1 at top level
	for {
		for rem == 0 { // the innermost container is complete
			rem, stack = stack[len(stack)-1], stack[:len(stack)-1]
		}
		if len(b) == 0 {
			return rem < 0
		}
		c := b[0]
		b = b[1:]
		if rem > 0 {
			rem--
		}
		var skip, elems uint64 // bytes of content; elements of a container
		ok := true             // a length prefix was complete
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
			continue
		case c >= 0xa0 && c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c <= 0x8f: // fixmap
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			elems = uint64(c & 0x0f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
			continue
		case c == 0xc4 || c == 0xd9: // bin8, str8
			skip, b, ok = length(b, 1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			skip, b, ok = length(b, 2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			skip, b, ok = length(b, 4)
		case c >= 0xc7 && c <= 0xc9: // ext8, ext16, ext32: length, type, data
			if skip, b, ok = length(b, 1<<(c-0xc7)); ok {
				skip++
			}
		case c == 0xca || c == 0xce || c == 0xd2: // float32, uint32, int32
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3: // float64, uint64, int64
			skip = 8
		case c == 0xcc || c == 0xd0: // uint8, int8
			skip = 1
		case c == 0xcd || c == 0xd1: // uint16, int16
			skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext1 to fixext16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xdd: // array16, array32
			elems, b, ok = length(b, 2<<(c-0xdc))
		case c == 0xde || c == 0xdf: // map16, map32
			if elems, b, ok = length(b, 2<<(c-0xde)); ok {
				elems *= 2
			}
		default: // 0xc1, never used
			return false
		}
		if !ok || skip > uint64(len(b)) || elems > uint64(len(b)) {
			return false
		}
		b = b[skip:]
		if elems > 0 {
			if len(stack) == maxDepth {
				return false
			}
			stack = append(stack, rem)
			rem = int(elems)
		}
	}
}

// length reads an n-byte big-endian length from the front of b.
func length(b []byte, n int) (uint64, []byte, bool) {
	if len(b) < n {
		return 0, b, false
	}
	var l uint64
	for _, x := range b[:n] {
		l = l<<8 | uint64(x)
	}
	return l, b[n:], true
}

func (msgpackCodec) Fields(dst []Field, data []byte) ([]Field, bool) { return msgpackFields(dst, data) }

func (msgpackCodec) AppendFields(dst []byte, fields []Field) []byte {
	return appendMsgpackFields(dst, fields)
}
