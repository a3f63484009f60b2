// Package codec turns a session's payload, the application's own type, into
// bytes and back.
//
// [MsgPack] is the default: compact and quick. [JSON] is there for records
// that other programs must read. Both encode structs by field name, so a
// record written before a field was added, removed or renamed still decodes
// (unknown fields are skipped, missing ones stay zero); a record whose fields
// changed type fails to decode, and the manager treats it as no session.
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
