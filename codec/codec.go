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
}
