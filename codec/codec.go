// Package codec turns a session's payload, the application's own type, into
// bytes and back.
//
// [MsgPack] returns the default codec: compact and quick. [JSON] returns one
// for records that other programs must read. They are functions rather than
// variables so that no package can swap a codec under every other one.
//
// Both encode structs by field name, so a record written before a field was
// added, removed or renamed still decodes (unknown fields are skipped,
// missing ones stay zero); a record whose fields changed type fails to
// decode, and the manager treats it as no session.
//
// # Struct tags
//
// [JSON] reads `json` tags as encoding/json does. [MsgPack] reads a field's
// `msgpack` tag and, where a field has none, its `json` tag, so a struct
// tagged for JSON is stored under the same names, and leaves out the same
// fields (`json:"-"`, and empty ones marked omitempty), with either codec.
//
// A `msgpack` tag is read alone: where a field has one, its json tag is
// ignored, options included. `msgpack:"-"` keeps a field out of MsgPack
// records only, and `msgpack:"UserID"` keeps the name a field was stored
// under before it gained `json:"user_id"`: without it, records written
// earlier lose that field (it decodes as zero).
//
// Two differences remain. MsgPack inlines an embedded struct even when its
// json tag names it, where JSON nests it under that name (tag it
// `msgpack:"name,noinline"` to nest it in both); and MsgPack takes
// `json:"-,"`, a field named "-" to encoding/json, for a field left out.
//
// # Merging
//
// The session manager merges concurrent changes to one session key by key,
// splitting records with [Codec.Fields]. A payload that is not encoded as a
// map with string keys is merged as one unit, so that any two concurrent
// changes to it conflict: a type other than a struct or map, or one that
// encodes itself into something else (with msgpack.CustomEncoder,
// encoding.BinaryMarshaler, json.Marshaler and the like).
package codec

// Codec encodes and decodes session payloads. Implementations must be safe
// for concurrent use, must not panic on any input to Unmarshal, and should
// bound what they allocate by the size of the input.
type Codec interface {
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v any) ([]byte, error)

	// Unmarshal decodes data into v, which is a non-nil pointer.
	Unmarshal(data []byte, v any) error

	// Fields appends to dst the top-level fields of data, an encoded map or
	// struct, in the order they appear; each Value aliases data. ok is false
	// when data is not a map with string keys (a scalar or a list), which
	// the session manager then merges as one unit.
	Fields(dst []Field, data []byte) (fields []Field, ok bool)

	// AppendFields appends to dst the encoding of a map holding fields, in
	// order, such that Fields gives them back and Unmarshal reads the map as
	// it would the struct or map the fields came from.
	AppendFields(dst []byte, fields []Field) []byte
}
