package session

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/typedsession/session/codec"
)

// merge folds the changes this request made (mine and mmd, against base)
// into theirs, the record another request saved after base was loaded, and
// returns the payload and metadata to save instead.
//
// Payloads merge by top-level field, as the codec writes them (so the
// fields of an embedded struct count one by one): a field only this request
// changed takes its value, a field only the other changed keeps theirs, and
// a field both changed is a conflict even when the values are equal (two
// increments from 1 to 2 are two increments), which the payload's Merge
// method may resolve. Fields that this program's T does not know (a newer
// deploy wrote them) are carried through as they are. Metadata merges by
// the same rule; the idle deadline takes the later value.
func (m *Manager[T]) merge(base record, mine []byte, mmd meta, theirs record) ([]byte, meta, error) {
	md := theirs.md
	if mmd.flags != base.md.flags {
		if theirs.md.flags != base.md.flags && theirs.md.flags != mmd.flags {
			return nil, meta{}, fmt.Errorf("%w: both requests changed the cookie's persistence", ErrConflict)
		}
		md.flags = mmd.flags
	}
	if mmd.absolute != base.md.absolute {
		if theirs.md.absolute != base.md.absolute && theirs.md.absolute != mmd.absolute {
			return nil, meta{}, fmt.Errorf("%w: both requests changed the session's lifetime", ErrConflict)
		}
		md.absolute = mmd.absolute
	}
	if b := mmd.binding(); b != base.md.binding() {
		if t := theirs.md.binding(); t != base.md.binding() && t != b {
			return nil, meta{}, fmt.Errorf("%w: both requests changed the session's owner", ErrConflict)
		}
		md.bind(b)
	}
	if m.idle > 0 {
		md.idle = min(max(mmd.idle, theirs.md.idle), md.absolute)
	}
	md.seen = max(mmd.seen, theirs.md.seen)
	canon, err := m.canonical(base.payload)
	if err != nil {
		return nil, meta{}, err
	}
	theirsChanged := !bytes.Equal(theirs.payload, base.payload)
	if m.strict && theirsChanged {
		return nil, meta{}, fmt.Errorf("%w: another request changed the session (strict mode)", ErrConflict)
	}
	cdc := m.codec
	bf, ok1 := cdc.Fields(nil, base.payload)
	cf, ok2 := cdc.Fields(nil, canon)
	mf, ok3 := cdc.Fields(nil, mine)
	tf, ok4 := cdc.Fields(nil, theirs.payload)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		// Not a map: the payload is one unit.
		mineChanged := !bytes.Equal(mine, canon)
		switch {
		case mineChanged && theirsChanged:
			p, err := m.resolve(base.payload, mine, theirs.payload)
			return p, md, err
		case mineChanged:
			return mine, md, nil
		}
		return theirs.payload, md, nil
	}

	// ref is what mine is compared with: the base as this program encodes
	// it, plus the fields it does not know, which mine carries unchanged.
	ref := index(cf)
	mi := index(mf)
	for _, f := range bf {
		if !known(cf, f.Key) {
			ref[f.Key] = f.Value
			if _, ok := mi[f.Key]; !ok {
				mi[f.Key] = f.Value
			}
		}
	}
	bi, ti := index(bf), index(tf)
	changed := func(a, b map[string][]byte, k string) bool {
		x, okx := a[k]
		y, oky := b[k]
		return okx != oky || !bytes.Equal(x, y)
	}
	type slot struct {
		codec.Field
		keep, conflict bool
	}
	var out []slot
	seen := make(map[string]bool, len(tf)+len(mf))
	var conflicts []string
	add := func(k string) {
		if seen[k] {
			return
		}
		seen[k] = true
		mc, tc := changed(mi, ref, k), changed(ti, bi, k)
		switch {
		case mc && tc:
			conflicts = append(conflicts, k)
			out = append(out, slot{Field: codec.Field{Key: k}, conflict: true})
		case mc:
			v, ok := mi[k]
			out = append(out, slot{Field: codec.Field{Key: k, Value: v}, keep: ok})
		default:
			v, ok := ti[k]
			out = append(out, slot{Field: codec.Field{Key: k, Value: v}, keep: ok})
		}
	}
	for _, f := range tf {
		add(f.Key)
	}
	for _, f := range mf {
		add(f.Key)
	}
	for _, f := range bf {
		add(f.Key)
	}
	if len(conflicts) > 0 {
		if m.merger == nil {
			return nil, meta{}, fmt.Errorf("%w: both requests changed %s", ErrConflict, strings.Join(conflicts, ", "))
		}
		p, err := m.resolve(base.payload, mine, theirs.payload)
		if err != nil {
			return nil, meta{}, err
		}
		rf, ok := cdc.Fields(nil, p)
		if !ok {
			return nil, meta{}, fmt.Errorf("%w: the merged payload is not a map", ErrConflict)
		}
		ri := index(rf)
		for i := range out {
			if out[i].conflict {
				out[i].Value, out[i].keep = ri[out[i].Key]
			}
		}
	}
	fields := make([]codec.Field, 0, len(out))
	for _, s := range out {
		if s.keep {
			fields = append(fields, s.Field)
		}
	}
	return cdc.AppendFields(nil, fields), md, nil
}

// resolve lets the payload's Merge method settle the fields both requests
// changed, and returns the encoding of its result.
func (m *Manager[T]) resolve(base, mine, theirs []byte) ([]byte, error) {
	if m.merger == nil {
		return nil, fmt.Errorf("%w: both requests changed the session", ErrConflict)
	}
	var b, x, t T
	for _, d := range []struct {
		data []byte
		v    *T
	}{{base, &b}, {mine, &x}, {theirs, &t}} {
		if err := m.codec.Unmarshal(d.data, d.v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	if err := m.merger(&x, &b, &t); err != nil {
		return nil, fmt.Errorf("%w: Merge: %w", ErrConflict, err)
	}
	p, err := m.codec.Append(nil, &x)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	return p, nil
}

// canonical returns payload as this program encodes it: decoded into a T and
// encoded again. Fields T does not know are gone from it.
func (m *Manager[T]) canonical(payload []byte) ([]byte, error) {
	var v T
	if err := m.codec.Unmarshal(payload, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	p, err := m.codec.Append(nil, &v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	return p, nil
}

// carryUnknown returns payload with the fields of base that T does not know
// added, so that a program older than the one that wrote base does not erase
// what it cannot read. It returns payload itself when there are none, which
// is the common case and costs two scans.
func (m *Manager[T]) carryUnknown(base, payload []byte) []byte {
	if len(base) == 0 {
		return payload
	}
	bp, pp := getFields(), getFields()
	defer putFields(bp)
	defer putFields(pp)
	bf, ok := m.codec.Fields((*bp)[:0], base)
	*bp = bf
	if !ok {
		return payload
	}
	pf, ok := m.codec.Fields((*pp)[:0], payload)
	*pp = pf
	if !ok {
		return payload
	}
	missing := false
	for _, f := range bf {
		if !known(pf, f.Key) {
			missing = true
			break
		}
	}
	if !missing {
		return payload
	}
	canon, err := m.canonical(base)
	if err != nil {
		return payload
	}
	cf, _ := m.codec.Fields(nil, canon)
	n := len(pf)
	for _, f := range bf {
		if !known(pf[:n], f.Key) && !known(cf, f.Key) {
			pf = append(pf, f)
		}
	}
	*pp = pf
	if len(pf) == n {
		return payload
	}
	return m.codec.AppendFields(nil, pf)
}

// fieldPool holds scratch slices for splitting payloads on every write.
var fieldPool = sync.Pool{New: func() any { s := make([]codec.Field, 0, 16); return &s }}

func getFields() *[]codec.Field { return fieldPool.Get().(*[]codec.Field) }

func putFields(p *[]codec.Field) {
	if cap(*p) > 256 {
		return
	}
	clear((*p)[:cap(*p)]) // drop references to the payloads split
	*p = (*p)[:0]
	fieldPool.Put(p)
}

// known reports whether fields has key. Case is ignored, as encoding/json
// ignores it when decoding: a key that differs only in case from one the
// program writes is read by it, not unknown to it.
func known(fields []codec.Field, key string) bool {
	for _, f := range fields {
		if f.Key == key || strings.EqualFold(f.Key, key) {
			return true
		}
	}
	return false
}

func index(fields []codec.Field) map[string][]byte {
	m := make(map[string][]byte, len(fields))
	for _, f := range fields {
		m[f.Key] = f.Value
	}
	return m
}
