package codec

import (
	"bytes"
	"encoding/json"
	"math"
	"unsafe"
)

// Field is one top-level entry of an encoded map or struct: its key and the
// encoding of its value, as the codec wrote it. The session manager merges
// concurrent changes to one session field by field (see the session package),
// and carries fields that the program's type does not know through untouched.
//
// The Key and Value that Codec.Fields returns may share the memory of the
// data they were split from, so that data must not change while they are in
// use.
type Field struct {
	Key   string
	Value []byte
}

// msgpackFields splits a MessagePack map with string keys.
func msgpackFields(dst []Field, data []byte) ([]Field, bool) {
	if !wellFormed(data) || len(data) == 0 {
		return dst, false
	}
	n, b, ok := mapHeader(data)
	if !ok {
		return dst, false
	}
	for range n {
		k, rest, ok := msgpackString(b)
		if !ok {
			return dst, false
		}
		size, ok := skipValue(rest)
		if !ok {
			return dst, false
		}
		dst = append(dst, Field{Key: k, Value: rest[:size:size]})
		b = rest[size:]
	}
	return dst, len(b) == 0
}

// mapHeader reads the element count of the map that starts b.
func mapHeader(b []byte) (n int, rest []byte, ok bool) {
	switch c := b[0]; {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), b[1:], true
	case c == 0xde || c == 0xdf:
		l, rest, ok := length(b[1:], 2<<(c-0xde))
		if !ok || l > math.MaxInt32 {
			return 0, nil, false
		}
		return int(l), rest, true
	}
	return 0, nil, false
}

// msgpackString reads the string that starts b.
func msgpackString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 {
		return "", nil, false
	}
	var l uint64
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		l, rest, ok = uint64(c&0x1f), b[1:], true
	case c == 0xd9:
		l, rest, ok = length(b[1:], 1)
	case c == 0xda:
		l, rest, ok = length(b[1:], 2)
	case c == 0xdb:
		l, rest, ok = length(b[1:], 4)
	}
	if !ok || l > uint64(len(rest)) {
		return "", nil, false
	}
	// The key aliases data, as Field documents: splitting then costs no
	// allocation, which matters since the session manager splits on every
	// write.
	return unsafe.String(unsafe.SliceData(rest), int(l)), rest[l:], true
}

// skipValue returns the size of the one well-formed value that starts b.
func skipValue(b []byte) (int, bool) {
	start := len(b)
	pending := 1 // values still to skip
	for pending > 0 {
		if len(b) == 0 {
			return 0, false
		}
		c := b[0]
		b = b[1:]
		pending--
		var skip, elems uint64
		ok := true
		switch {
		case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c <= 0x8f:
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			elems = uint64(c & 0x0f)
		case c == 0xc4 || c == 0xd9:
			skip, b, ok = length(b, 1)
		case c == 0xc5 || c == 0xda:
			skip, b, ok = length(b, 2)
		case c == 0xc6 || c == 0xdb:
			skip, b, ok = length(b, 4)
		case c >= 0xc7 && c <= 0xc9:
			if skip, b, ok = length(b, 1<<(c-0xc7)); ok {
				skip++
			}
		case c == 0xca || c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			skip = 8
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xdd:
			elems, b, ok = length(b, 2<<(c-0xdc))
		case c == 0xde || c == 0xdf:
			if elems, b, ok = length(b, 2<<(c-0xde)); ok {
				elems *= 2
			}
		default:
			return 0, false
		}
		if !ok || skip > uint64(len(b)) || elems > uint64(len(b)) {
			return 0, false
		}
		b = b[skip:]
		pending += int(elems)
	}
	return start - len(b), true
}

// appendMsgpackFields encodes fields as a MessagePack map.
func appendMsgpackFields(dst []byte, fields []Field) []byte {
	dst = appendMapLen(dst, len(fields))
	for _, f := range fields {
		dst = appendString(dst, f.Key)
		dst = append(dst, f.Value...)
	}
	return dst
}

// jsonFields splits a JSON object.
func jsonFields(dst []Field, data []byte) ([]Field, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return dst, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return dst, false
		}
		k, ok := t.(string)
		if !ok {
			return dst, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return dst, false
		}
		dst = append(dst, Field{Key: k, Value: v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return dst, false
	}
	if _, err := dec.Token(); err == nil {
		return dst, false // a second value
	}
	return dst, true
}

// appendJSONFields encodes fields as a JSON object.
func appendJSONFields(dst []byte, fields []Field) []byte {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		k, _ := json.Marshal(f.Key) // a string always marshals
		dst = append(dst, k...)
		dst = append(dst, ':')
		dst = append(dst, f.Value...)
	}
	return append(dst, '}')
}
