package session

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var envAllowMeta = cmp.AllowUnexported(meta{})

// envRecord returns the envelope of m followed by payload.
func envRecord(m meta, payload []byte) []byte {
	b := make([]byte, envHeader, envHeader+len(payload))
	putEnvelope(b, m)
	return append(b, payload...)
}

func TestEnvelopeLayout(t *testing.T) {
	if envHeader != 26 {
		t.Fatalf("envHeader = %d, want 26", envHeader)
	}
	b := envRecord(meta{flags: flagRemember, created: 1, absolute: 0x0102030405060708, idle: 3}, nil)
	want := []byte{
		1, 1,
		0, 0, 0, 0, 0, 0, 0, 1,
		1, 2, 3, 4, 5, 6, 7, 8,
		0, 0, 0, 0, 0, 0, 0, 3,
	}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("envelope bytes (-want +got):\n%s", diff)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	const ms = int64(1764000000000)
	tests := []struct {
		name    string
		m       meta
		payload []byte
	}{
		{"plain", meta{created: ms, absolute: ms + 86400000, idle: ms + 1800000}, []byte("payload")},
		{"no idle", meta{created: ms, absolute: ms + 1}, nil},
		{"remember", meta{flags: flagRemember, created: ms, absolute: ms + 5, idle: ms + 2}, []byte{0}},
		{"forget", meta{flags: flagForget, created: ms, absolute: ms}, []byte{}},
		{"zero", meta{}, nil},
		{"extremes", meta{created: 0, absolute: math.MaxInt64, idle: math.MaxInt64}, bytes.Repeat([]byte{0xff}, 1000)},
		{"idle past absolute", meta{created: ms, absolute: ms + 1, idle: ms + 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := envRecord(tt.m, tt.payload)
			m, payload, ok := parseEnvelope(b)
			if !ok {
				t.Fatalf("parseEnvelope(%x) rejected its own envelope", b)
			}
			if diff := cmp.Diff(tt.m, m, envAllowMeta); diff != "" {
				t.Errorf("meta (-want +got):\n%s", diff)
			}
			if !bytes.Equal(payload, tt.payload) {
				t.Errorf("payload = %x, want %x", payload, tt.payload)
			}
			if len(payload) > 0 && &payload[0] != &b[envHeader] {
				t.Errorf("payload does not share the record's memory")
			}
		})
	}
}

func TestEnvelopeRejects(t *testing.T) {
	const ms = int64(1764000000000)
	good := envRecord(meta{created: ms, absolute: ms + 1000, idle: ms + 10}, []byte("x"))
	with := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	set := func(off int, v int64) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint64(b[off:], uint64(v)) }
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version only", []byte{envVersion}},
		{"short by one", good[:envHeader-1]},
		{"version 0", with(func(b []byte) { b[0] = 0 })},
		{"version 2", with(func(b []byte) { b[0] = 2 })},
		{"version 255", with(func(b []byte) { b[0] = 255 })},
		{"flag 4", with(func(b []byte) { b[1] = 4 })},
		{"flag 0x80", with(func(b []byte) { b[1] = 0x80 })},
		{"flags 0xff", with(func(b []byte) { b[1] = 0xff })},
		{"known and unknown flags", with(func(b []byte) { b[1] = flagRemember | 8 })},
		{"negative created", with(set(2, -1))},
		{"min created", with(set(2, math.MinInt64))},
		{"negative absolute", with(set(10, -1))},
		{"absolute before created", with(set(10, ms-1))},
		{"negative idle", with(set(18, -1))},
		{"min idle", with(set(18, math.MinInt64))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, payload, ok := parseEnvelope(tt.in)
			if ok || payload != nil || m != (meta{}) {
				t.Errorf("parseEnvelope(%x) = (%+v, %x, %v), want rejection", tt.in, m, payload, ok)
			}
		})
	}
	// Every length short of the header is rejected.
	for n := range envHeader {
		if _, _, ok := parseEnvelope(good[:n]); ok {
			t.Errorf("parseEnvelope accepted %d bytes", n)
		}
	}
	// The header alone, with no payload, is a valid (empty) envelope.
	if _, payload, ok := parseEnvelope(good[:envHeader]); !ok || len(payload) != 0 {
		t.Errorf("parseEnvelope(header only) = (%x, %v), want an empty payload", payload, ok)
	}
}

func TestMetaDeadline(t *testing.T) {
	tests := []struct {
		name string
		m    meta
		want int64
	}{
		{"idle earlier", meta{created: 0, absolute: 100, idle: 40}, 40},
		{"absolute earlier", meta{created: 0, absolute: 100, idle: 140}, 100},
		{"equal", meta{created: 0, absolute: 100, idle: 100}, 100},
		{"idle off", meta{created: 0, absolute: 100, idle: 0}, 100},
		{"idle just before", meta{created: 5, absolute: 100, idle: 99}, 99},
		{"huge absolute", meta{absolute: math.MaxInt64, idle: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.deadline(); got != tt.want {
				t.Errorf("%+v.deadline() = %d, want %d", tt.m, got, tt.want)
			}
		})
	}
}

// FuzzParseEnvelope: parseEnvelope never panics, and what it accepts obeys
// the envelope's rules and re-encodes to the same bytes.
func FuzzParseEnvelope(f *testing.F) {
	const ms = int64(1764000000000)
	f.Add(envRecord(meta{created: ms, absolute: ms + 86400000, idle: ms + 1800000}, []byte("payload")))
	f.Add(envRecord(meta{flags: flagForget, created: ms, absolute: ms}, nil))
	f.Add(envRecord(meta{flags: flagRemember, absolute: math.MaxInt64}, []byte{0x80}))
	f.Add([]byte{})
	f.Add([]byte{envVersion, 0})
	f.Add(bytes.Repeat([]byte{0xff}, envHeader+3))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		m, payload, ok := parseEnvelope(b)
		if !bytes.Equal(b, orig) {
			t.Fatalf("parseEnvelope changed its input")
		}
		if !ok {
			if payload != nil || m != (meta{}) {
				t.Fatalf("rejection returned (%+v, %x)", m, payload)
			}
			return
		}
		if len(b) < envHeader || b[0] != envVersion {
			t.Fatalf("accepted %x", b)
		}
		if m.flags&^flagMask != 0 || m.created < 0 || m.absolute < m.created || m.idle < 0 {
			t.Fatalf("accepted invalid meta %+v", m)
		}
		if d := m.deadline(); d > m.absolute || (m.idle != 0 && d > m.idle) {
			t.Fatalf("%+v.deadline() = %d", m, d)
		}
		if again := envRecord(m, payload); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding gives %x, want %x", again, b)
		}
	})
}

// TestEnvelopeBound: a session bound to an owner round-trips in the second
// layout with its binding and last-seen time; truncated, extended or
// inconsistent bindings are refused, and an unbound one keeps the first.
func TestEnvelopeBound(t *testing.T) {
	md := meta{flags: flagRemember, created: 10, absolute: 20, idle: 15, seen: 12,
		owner: "user-42", epoch: "0123456789abcdef", ua: "Browser/1", ip: "203.0.113.0/24"}
	payload := []byte("payload")
	env := envelope(append(make([]byte, envHeader), payload...), md)
	if env[0] != envVersion2 {
		t.Fatalf("a bound session has version %d", env[0])
	}
	got, p, ok := parseEnvelope(env)
	if !ok || got != md || string(p) != "payload" {
		t.Fatalf("parse = %+v, %q, %v; want %+v", got, p, ok, md)
	}
	for n := envHeader; n < len(env)-len(payload); n++ {
		if _, _, ok := parseEnvelope(env[:n]); ok {
			t.Errorf("a bound envelope cut to %d bytes parsed", n)
		}
	}
	// A binding length that disagrees with its fields.
	bad := bytes.Clone(env)
	bad[35]++
	if m, _, ok := parseEnvelope(bad); ok && m == md {
		t.Error("a wrong binding length parsed to the same session")
	}
	// No owner in the second layout is not a binding.
	unowned := envelope(append(make([]byte, envHeader), payload...), meta{created: 1, absolute: 2, owner: "x"})
	unowned[envHeader2] = 0 // owner length 0
	if _, _, ok := parseEnvelope(unowned[:len(unowned)-1]); ok {
		t.Error("a bound envelope without an owner parsed")
	}
	plain := envelope(append(make([]byte, envHeader), payload...), meta{created: 1, absolute: 2})
	if plain[0] != envVersion || len(plain) != envHeader+len(payload) {
		t.Fatalf("an unbound session took the second layout: %x", plain)
	}
}
