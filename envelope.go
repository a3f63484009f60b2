package session

import "encoding/binary"

// A record's plaintext is an envelope: a header with the session's times,
// then the codec's payload. All times live inside the sealed part, so a
// client can neither read nor stretch them. A session that is not bound to
// an owner keeps the first, fixed layout:
//
//	1 | flags (1) | created (8) | absolute deadline (8) | idle deadline (8) | payload
//
// A session bound to an owner (Login) uses the second, which adds when it
// was last written and the binding:
//
//	2 | flags (1) | created (8) | absolute (8) | idle (8) | seen (8) | binding length (2) | binding | payload
//	binding: owner length (1) | owner | epoch length (1) | epoch | user agent length (2) | user agent | IP length (1) | IP
//
// Times are Unix milliseconds, big-endian. An idle deadline of 0 means none.
const (
	envVersion  = 1
	envVersion2 = 2
	envHeader   = 2 + 3*8
	envHeader2  = envHeader + 8 + 2

	maxOwner     = 255
	maxUserAgent = 256
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
	seen     int64 // last written; 0 in the first layout

	// The binding to an owner; all empty for an unbound session.
	owner string // the application's user id
	epoch string // the owner's epoch when the session was bound
	ua    string // device hints recorded at Login
	ip    string
}

// bound reports a session bound to an owner, which the second layout keeps.
func (m meta) bound() bool { return m.owner != "" }

// binding is the part of md that Login sets, merged as one unit.
type binding struct{ owner, epoch, ua, ip string }

func (m meta) binding() binding { return binding{m.owner, m.epoch, m.ua, m.ip} }

func (m *meta) bind(b binding) { m.owner, m.epoch, m.ua, m.ip = b.owner, b.epoch, b.ua, b.ip }

func putEnvelope(b []byte, m meta) {
	b[0] = envVersion
	b[1] = m.flags
	binary.BigEndian.PutUint64(b[2:], uint64(m.created))
	binary.BigEndian.PutUint64(b[10:], uint64(m.absolute))
	binary.BigEndian.PutUint64(b[18:], uint64(m.idle))
}

// envelope returns the envelope of md around the payload that follows
// env's first envHeader bytes: env itself, filled in, for an unbound
// session; a new slice in the second layout for a bound one.
func envelope(env []byte, m meta) []byte {
	if !m.bound() {
		putEnvelope(env, m)
		return env
	}
	payload := env[envHeader:]
	n := 1 + len(m.owner) + 1 + len(m.epoch) + 2 + len(m.ua) + 1 + len(m.ip)
	b := make([]byte, envHeader2, envHeader2+n+len(payload))
	putEnvelope(b, m)
	b[0] = envVersion2
	binary.BigEndian.PutUint64(b[26:], uint64(m.seen))
	binary.BigEndian.PutUint16(b[34:], uint16(n))
	b = append(b, byte(len(m.owner)))
	b = append(b, m.owner...)
	b = append(b, byte(len(m.epoch)))
	b = append(b, m.epoch...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.ua)))
	b = append(b, m.ua...)
	b = append(b, byte(len(m.ip)))
	b = append(b, m.ip...)
	return append(b, payload...)
}

func parseEnvelope(b []byte) (m meta, payload []byte, ok bool) {
	if len(b) < envHeader || b[0] != envVersion && b[0] != envVersion2 || b[1]&^flagMask != 0 {
		return meta{}, nil, false
	}
	m = meta{
		flags:    b[1],
		created:  int64(binary.BigEndian.Uint64(b[2:])),
		absolute: int64(binary.BigEndian.Uint64(b[10:])),
		idle:     int64(binary.BigEndian.Uint64(b[18:])),
	}
	payload = b[envHeader:]
	if b[0] == envVersion2 {
		if len(b) < envHeader2 {
			return meta{}, nil, false
		}
		m.seen = int64(binary.BigEndian.Uint64(b[26:]))
		n := int(binary.BigEndian.Uint16(b[34:]))
		if len(b) < envHeader2+n {
			return meta{}, nil, false
		}
		var ok bool
		if m, ok = parseBinding(m, b[envHeader2:envHeader2+n]); !ok || m.owner == "" {
			return meta{}, nil, false
		}
		payload = b[envHeader2+n:]
	}
	if m.created < 0 || m.absolute < m.created || m.idle < 0 || m.seen < 0 ||
		m.flags&flagMarker != 0 && (b[0] != envVersion || len(payload) != keyLen) {
		return meta{}, nil, false
	}
	return m, payload, true
}

// parseBinding reads the binding of the second layout, which must fill b
// exactly.
func parseBinding(m meta, b []byte) (meta, bool) {
	field := func(size int) (string, bool) {
		if len(b) < size {
			return "", false
		}
		var n int
		if size == 1 {
			n = int(b[0])
		} else {
			n = int(binary.BigEndian.Uint16(b))
		}
		b = b[size:]
		if len(b) < n {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	var ok1, ok2, ok3, ok4 bool
	m.owner, ok1 = field(1)
	m.epoch, ok2 = field(1)
	m.ua, ok3 = field(2)
	m.ip, ok4 = field(1)
	return m, ok1 && ok2 && ok3 && ok4 && len(b) == 0
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
