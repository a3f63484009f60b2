package codec

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack encodes with MessagePack (github.com/vmihailenco/msgpack/v5): structs
// as maps keyed by field name (or the `msgpack` tag), integers in their
// smallest form, time.Time to the nanosecond.
var MsgPack Codec = msgpackCodec{}

type msgpackCodec struct{}

type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(msgpackEncoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
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

func (msgpackCodec) Append(dst []byte, v any) ([]byte, error) {
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

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	d := decoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	decoders.Put(d)
	return err
}
