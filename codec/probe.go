package codec

import (
	"bytes"
	"math"
	"reflect"
	"unsafe"
)

// proven reports whether p encodes the zero value of its type and two
// sample values to the bytes the msgpack package writes, and decodes them
// to what that package decodes. A type given its own encoder or decoder
// with msgpack.Register or RegisterExtEncoder (which no method of the type
// reveals) fails here and stays with the msgpack package, provided it was
// registered before the codec first saw it and treats one of the samples
// otherwise than the package's own code: the second sample's values sit at
// the edges of their types (mixed case and spaces in strings, the extreme
// integers, a negative fraction), where a registered decoder that
// normalises or checks its values would differ.
func proven(p *plan) bool {
	for _, sample := range []reflect.Value{reflect.New(p.typ), sampleOf(p.typ, false), sampleOf(p.typ, true)} {
		want, err := slowAppend(nil, sample.Interface())
		if err != nil {
			return false
		}
		if got := p.append(nil, sample.UnsafePointer()); !bytes.Equal(got, want) {
			return false
		}
		slow, fast := reflect.New(p.typ), reflect.New(p.typ)
		if slowUnmarshal(want, slow.Interface()) != nil || !p.unmarshal(want, fast.UnsafePointer()) ||
			!reflect.DeepEqual(slow.Interface(), fast.Interface()) {
			return false
		}
	}
	return true
}

// sampleOf returns a pointer to a value of t in which every field is set,
// and every slice holds an element, down to a few levels of nesting: plain
// values, or values at the edges of their types.
func sampleOf(t reflect.Type, edges bool) reflect.Value {
	v := reflect.New(t)
	fillSample(v.Elem(), 0, edges)
	return v
}

func fillSample(v reflect.Value, depth int, edges bool) {
	if !v.CanSet() { // a field of an unexported embedded struct
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	bits := 0
	if k := v.Kind(); k >= reflect.Int && k <= reflect.Float64 {
		bits = v.Type().Bits()
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if edges {
			v.SetInt(-1 << (bits - 1))
		} else {
			v.SetInt(-100)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if edges {
			v.SetUint(math.MaxUint64 >> (64 - bits))
		} else {
			v.SetUint(200)
		}
	case reflect.Float32, reflect.Float64:
		if edges {
			v.SetFloat(-0.1)
		} else {
			v.SetFloat(1.5)
		}
	case reflect.String:
		if edges {
			v.SetString(" Sé X ")
		} else {
			v.SetString("s")
		}
	case reflect.Slice:
		if depth > 3 {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillSample(v.Index(0), depth+1, edges)
	case reflect.Struct:
		if depth > 3 {
			return
		}
		for i := range v.NumField() {
			fillSample(v.Field(i), depth+1, edges)
		}
	}
}
