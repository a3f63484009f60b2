package codec

import "encoding/json"

// JSON returns the codec that encodes with encoding/json: readable by any
// other program, larger and slower than MsgPack. Every call returns the same
// value.
func JSON() Codec { return jsonCodec{} }

type jsonCodec struct{}

func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// Unmarshal rejects anything after the one value a record holds.
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func (jsonCodec) Fields(dst []Field, data []byte) ([]Field, bool) { return jsonFields(dst, data) }

func (jsonCodec) AppendFields(dst []byte, fields []Field) []byte {
	return appendJSONFields(dst, fields)
}
