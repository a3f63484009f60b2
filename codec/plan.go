package codec

import (
	"encoding"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"
)

// A plan lets MsgPack encode and decode a struct type without the msgpack
// package's reflection: a list of fields at fixed offsets, each with the
// operation its kind needs. It is built once per type, and only for types
// whose every field the plan encodes byte for byte as the msgpack package
// does and decodes to the same value (see planner.op for the kinds). Any
// other type, and any input the plan's decoder does not handle exactly like
// the msgpack package, goes through that package as before.
type plan struct {
	typ       reflect.Type
	fields    []*field          // in encoding order
	byName    map[string]*field // the keys the decoder accepts
	omitEmpty bool              // some field has omitempty
}

// field is one key of a struct's encoding.
type field struct {
	name      string
	key       []byte // name, encoded
	off       uintptr
	omitEmpty bool
	op        *op
	idx       int  // in the plan's fields; -1 for a key that only decodes
	decodes   bool // the plan decodes the key name into this field
}

type opKind uint8

const (
	opBool opKind = iota + 1
	opInt
	opUint
	opFloat32
	opFloat64
	opString
	opBytes  // a slice of a uint8 kind: bin
	opSlice  // any other supported slice: array
	opStruct // a nested struct: map
)

// op encodes and decodes one value of a supported kind.
type op struct {
	kind opKind
	size uintptr // of the value; for opSlice, of an element
	// For opSlice: the element's op and the slice's type (to allocate
	// elements that hold pointers). strings is true for a slice of string
	// itself (not of a named string type), which the msgpack package
	// decodes by its own rules: a nil leaves the slice as it was.
	elem    *op
	typ     reflect.Type
	strings bool
	ptrs    bool  // an element holds pointers
	st      *plan // for opStruct
}

// plans caches the plan of every type seen, nil for types the plan cannot
// take. Copy on write: reads, one per Append and Unmarshal, take no lock;
// plansMu orders the writes.
var (
	plans   atomic.Pointer[map[reflect.Type]*plan]
	plansMu sync.Mutex
)

// planFor returns the plan for the struct that t, a pointer type, points
// to, or nil.
//
// It builds the plan without holding plansMu: proven runs the msgpack
// package, and through it any encoder registered with that package, which
// may itself use this codec on a type not seen yet. Two goroutines may then
// build one type's plan at once; the first stored is kept.
func planFor(t reflect.Type) *plan {
	if m := plans.Load(); m != nil {
		if p, ok := (*m)[t]; ok {
			return p
		}
	}
	var p *plan
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && !custom(t) {
		pl := planner{plans: map[reflect.Type]*plan{}}
		if p = pl.plan(t.Elem()); p != nil && !proven(p) {
			p = nil
		}
	}
	plansMu.Lock()
	defer plansMu.Unlock()
	old := plans.Load()
	if old != nil {
		if q, ok := (*old)[t]; ok {
			return q
		}
	}
	m := make(map[reflect.Type]*plan, 1)
	if old != nil {
		m = make(map[reflect.Type]*plan, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	}
	m[t] = p
	plans.Store(&m)
	return p
}

var (
	customEncoderType     = reflect.TypeFor[msgpack.CustomEncoder]()
	customDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	marshalerType         = reflect.TypeFor[msgpack.Marshaler]()
	unmarshalerType       = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryMarshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textMarshalerType     = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
	isZeroerType          = reflect.TypeFor[interface{ IsZero() bool }]()
	stringType            = reflect.TypeFor[string]()
)

// custom reports whether the msgpack package encodes or decodes t through
// one of the interfaces it honours, on t or on *t.
func custom(t reflect.Type) bool {
	for _, i := range [...]reflect.Type{
		customEncoderType, customDecoderType, marshalerType, unmarshalerType,
		binaryMarshalerType, binaryUnmarshalerType, textMarshalerType, textUnmarshalerType,
	} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// planner builds the plans of one type and of the struct types it holds.
type planner struct {
	plans map[reflect.Type]*plan // built or being built (a type may hold itself through a slice)
}

// plan mirrors the msgpack package's getFields (types.go, v5.4.1) with the
// struct tag "json" as the fallback: the same fields in the same order under
// the same names, with the same keys accepted on decoding.
func (pl *planner) plan(t reflect.Type) *plan {
	if p, ok := pl.plans[t]; ok {
		return p
	}
	if custom(t) {
		return nil
	}
	p := &plan{typ: t, byName: make(map[string]*field, t.NumField())}
	pl.plans[t] = p
	if !pl.fill(p, t) {
		pl.plans[t] = nil
		return nil
	}
	for _, f := range p.fields {
		f.decodes = p.byName[f.name] == f
	}
	return p
}

// fill adds t's fields to p, reporting false if a field's kind or tag is
// one the plan does not handle.
func (pl *planner) fill(p *plan, t reflect.Type) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Name == "_msgpack" { // array-encoded structs, forced omitempty
			return false
		}
		tag := sf.Tag.Get("msgpack")
		if tag == "" {
			tag = sf.Tag.Get(structTag)
		}
		name, opts, ok := parseTag(tag)
		if !ok {
			return false
		}
		if name == "-" {
			continue
		}
		if !sf.IsExported() && !sf.Anonymous {
			continue
		}
		if opts.has("intern") {
			return false
		}
		if name == "" {
			name = sf.Name
		}
		f := &field{name: name, off: sf.Offset, omitEmpty: opts.has("omitempty"), idx: -1}
		if f.omitEmpty && sf.Type.Implements(isZeroerType) {
			return false
		}
		if sf.Anonymous && !opts.has("noinline") {
			inlined, ok := pl.inline(p, sf, opts.has("inline"))
			if !ok {
				return false
			}
			if inlined {
				// The embedded struct's own name still decodes into it.
				if f.op = pl.op(sf.Type); f.op == nil {
					return false
				}
				p.byName[f.name] = f
				continue
			}
		}
		if !sf.IsExported() {
			// The msgpack package cannot set it, nor ask whether it is
			// empty: leave such types to it.
			return false
		}
		if f.op = pl.op(sf.Type); f.op == nil {
			return false
		}
		p.add(f)
	}
	return true
}

// inline adds the fields of the embedded struct sf to p where the msgpack
// package does (inlineFields and shouldInline): always when tagged inline,
// skipping names p already has, its own included; otherwise only when none
// of its names is taken beforehand, and then all of them, a name the
// embedded struct gives two fields twice.
func (pl *planner) inline(p *plan, sf reflect.StructField, forced bool) (inlined, ok bool) {
	if sf.Type.Kind() != reflect.Struct {
		// A pointer is the msgpack package's to follow; any other kind is
		// a field under its type's name, unless forced (a panic there).
		return false, sf.Type.Kind() != reflect.Pointer && !forced
	}
	sub := pl.plan(sf.Type)
	if sub == nil {
		return false, false
	}
	if !forced {
		for _, f := range sub.fields {
			if _, taken := p.byName[f.name]; taken {
				return false, true
			}
		}
	}
	for _, f := range sub.fields {
		if _, taken := p.byName[f.name]; taken && forced {
			continue
		}
		g := *f
		g.off += sf.Offset
		p.add(&g)
	}
	return true, true
}

// add appends f to the encoding order and to the keys decoded, as the
// msgpack package's fields.Add does: a later field of the same name takes
// the key, and both are encoded.
func (p *plan) add(f *field) {
	f.key = appendString(nil, f.name)
	f.idx = len(p.fields)
	p.omitEmpty = p.omitEmpty || f.omitEmpty
	p.fields = append(p.fields, f)
	p.byName[f.name] = f
}

// op returns the operation for a value of type t, or nil if the plan does
// not handle t: bool, the sized and unsized integers (not uintptr),
// float32 and float64, string, slices of uint8 kinds (bin), slices of
// supported types, and structs whose fields are all supported, with or
// without a name of their own, provided that neither t nor *t implements an
// interface the msgpack package honours. Pointers, maps, interfaces,
// arrays and time.Time stay with the msgpack package.
func (pl *planner) op(t reflect.Type) *op {
	if custom(t) {
		return nil
	}
	o := &op{size: t.Size()}
	switch t.Kind() {
	case reflect.Bool:
		o.kind = opBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		o.kind = opInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		o.kind = opUint
	case reflect.Float32:
		o.kind = opFloat32
	case reflect.Float64:
		o.kind = opFloat64
	case reflect.String:
		o.kind = opString
	case reflect.Slice:
		e := t.Elem()
		if e.Kind() == reflect.Uint8 { // whatever e's methods: so does msgpack
			o.kind = opBytes
			break
		}
		o.kind, o.typ, o.size = opSlice, t, e.Size()
		if o.elem = pl.op(e); o.elem == nil {
			return nil
		}
		o.strings = e == stringType
		o.ptrs = hasPointers(e)
	case reflect.Struct:
		o.kind = opStruct
		if o.st = pl.plan(t); o.st == nil {
			return nil
		}
	default:
		return nil
	}
	return o
}

// hasPointers reports whether a value of t holds pointers.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface,
		reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	}
	return false
}
