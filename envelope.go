package session

import "encoding/binary"

// A record's plaintext is an envelope: a fixed header with the session's
// times, then the codec's payload. All times live inside the sealed part, so
// a client can neither read nor stretch them.
//
//	version (1) | flags (1) | created (8) | absolute deadline (8) | idle deadline (8) | payload
//
// Times are Unix milliseconds, big-endian. An idle deadline of 0 means none.
const (
	envVersion = 1
	envHeader  = 2 + 3*8
)

// Flags record the session's own choice of cookie persistence (without
// either, the manager's option decides), or mark a retired record: one that
// Regenerate replaced, whose payload is the store key of its successor. Older
// versions of this package read a marker as no session.
const (
	flagRemember byte = 1 << iota
	flagForget
	flagMarker
	flagMask = flagRemember | flagForget | flagMarker
)

type meta struct {
	flags    byte
	created  int64
	absolute int64
	idle     int64
}

func putEnvelope(b []byte, m meta) {
	b[0] = envVersion
	b[1] = m.flags
	binary.BigEndian.PutUint64(b[2:], uint64(m.created))
	binary.BigEndian.PutUint64(b[10:], uint64(m.absolute))
	binary.BigEndian.PutUint64(b[18:], uint64(m.idle))
}

func parseEnvelope(b []byte) (m meta, payload []byte, ok bool) {
	if len(b) < envHeader || b[0] != envVersion || b[1]&^flagMask != 0 {
		return meta{}, nil, false
	}
	m = meta{
		flags:    b[1],
		created:  int64(binary.BigEndian.Uint64(b[2:])),
		absolute: int64(binary.BigEndian.Uint64(b[10:])),
		idle:     int64(binary.BigEndian.Uint64(b[18:])),
	}
	if m.created < 0 || m.absolute < m.created || m.idle < 0 || m.flags&flagMarker != 0 && len(b) != envHeader+keyLen {
		return meta{}, nil, false
	}
	return m, b[envHeader:], true
}

// deadline is when the session ends if nothing happens: the earlier of its
// absolute and idle deadlines.
func (m meta) deadline() int64 {
	if m.idle != 0 && m.idle < m.absolute {
		return m.idle
	}
	return m.absolute
}

// marker reports a record retired by Regenerate.
func (m meta) marker() bool { return m.flags&flagMarker != 0 }
