package session

import (
	"bytes"
	"context"
	"github.com/typedsession/session/internal/teststore"
	"github.com/typedsession/session/store"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/cipher"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/store/memstore"
)

// fuzzSess is the benchmark's payload plus a map and a time.
type fuzzSess struct {
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
	Attrs    map[string]string
	Login    time.Time
}

var (
	fuzzNow   = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	fuzzToken = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuA" // valid: 'A' has zero padding bits
	fuzzValue = fuzzSess{
		UserID: 4211, Name: "Ada", Roles: []string{"admin"}, CSRF: "csrf",
		Cart: []int64{1, 2, 3}, LastSeen: 1764000000000,
		Attrs: map[string]string{"theme": "dark"}, Login: time.UnixMilli(1764000000000).UTC(),
	}
	fuzzTimeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
)

// fuzzStore counts the calls that reach the store.
type fuzzStore struct {
	*memstore.Store
	loads, saves, deletes int
}

func (s *fuzzStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	s.loads++
	return s.Store.Load(ctx, key)
}

func (s *fuzzStore) Write(ctx context.Context, ops []store.Op) error {
	for _, op := range ops {
		if len(op.New) > 0 {
			s.saves++
		} else {
			s.deletes++
		}
	}
	return s.Store.Write(ctx, ops)
}

func (s *fuzzStore) Save(ctx context.Context, key string, rec []byte, exp time.Time) error {
	return teststore.Put(ctx, s.Store, key, rec, exp)
}

func (s *fuzzStore) Delete(ctx context.Context, key string) error {
	return teststore.Delete(ctx, s.Store, key)
}

func (s *fuzzStore) reset() { s.loads, s.saves, s.deletes = 0, 0, 0 }

type fuzzSetup struct {
	name  string
	m     *Manager[fuzzSess]
	st    *fuzzStore
	ring  *cipher.Ring
	codec codec.Codec
}

func fuzzSetups(t testing.TB) []fuzzSetup {
	ring, err := cipher.NewRing(bytes.Repeat([]byte{0x42}, cipher.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return fuzzNow }
	var setups []fuzzSetup
	for _, s := range []struct {
		name  string
		ring  *cipher.Ring
		codec codec.Codec
	}{
		{"cipher/msgpack", ring, codec.MsgPack()},
		{"plain/msgpack", nil, codec.MsgPack()},
		{"plain/json", nil, codec.JSON()},
	} {
		st := &fuzzStore{Store: memstore.New(memstore.Options{SweepInterval: -1, Now: now})}
		m, err := New[fuzzSess](st, Options{
			Cipher: s.ring, Codec: s.codec, IdleTimeout: 30 * time.Minute, Now: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		setups = append(setups, fuzzSetup{s.name, m, st, s.ring, s.codec})
	}
	return setups
}

func fuzzKey(token string) string {
	var k [keyLen]byte
	storeKey(&k, token)
	return string(k[:])
}

// record returns what the setup's manager would store for v under token.
func (s fuzzSetup) record(t testing.TB, token string, md meta, v fuzzSess) []byte {
	b, err := s.codec.Append(make([]byte, envHeader), &v)
	if err != nil {
		t.Fatal(err)
	}
	putEnvelope(b, md)
	if s.ring != nil {
		return s.ring.Seal(nil, b, []byte(fuzzKey(token)))
	}
	return b
}

func fuzzMeta() meta {
	now := fuzzNow.UnixMilli()
	return meta{created: now - 60_000, absolute: now + 3_600_000, idle: now + 600_000}
}

func TestFuzzSetupLoadsGenuineRecord(t *testing.T) {
	if !validToken(fuzzToken) {
		t.Fatalf("fuzzToken %q is not valid", fuzzToken)
	}
	for _, s := range fuzzSetups(t) {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			rec := s.record(t, fuzzToken, fuzzMeta(), fuzzValue)
			if err := s.st.Save(ctx, fuzzKey(fuzzToken), rec, fuzzNow.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			v, err := s.m.Begin(ctx, fuzzToken).Get()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fuzzValue, *v, fuzzTimeEqual); diff != "" {
				t.Errorf("loaded (-want +got):\n%s", diff)
			}
		})
	}
}

// nilLogin is a msgpack payload with nil for the time.Time field Login, as a
// record holds after Login changes from *time.Time to time.Time; msgpack/v5.4.1
// panics decoding it.
var nilLogin = []byte("\x81\xa5Login\xc0")

// TestLoadLeavesUndecodable checks that a plaintext record the codec cannot
// decode (or panics on) is "no session": no error, no panic, and the record
// left alone, since another version of the payload type may read it.
func TestLoadLeavesUndecodable(t *testing.T) {
	ctx := context.Background()
	for _, s := range fuzzSetups(t) {
		if s.ring != nil || s.codec != codec.MsgPack() {
			continue
		}
		for _, payload := range [][]byte{nilLogin, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xc1}} {
			rec := make([]byte, envHeader)
			putEnvelope(rec, fuzzMeta())
			rec = append(rec, payload...)
			key := fuzzKey(fuzzToken)
			if err := s.st.Save(ctx, key, rec, fuzzNow.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			v, err := s.m.Begin(ctx, fuzzToken).Get()
			if err != nil || v == nil {
				t.Fatalf("Get(payload %x) = (%v, %v)", payload, v, err)
			}
			if diff := cmp.Diff(fuzzSess{}, *v, fuzzTimeEqual); diff != "" {
				t.Errorf("Get(payload %x) is not empty:\n%s", payload, diff)
			}
			if _, found, _ := s.st.Load(ctx, key); !found {
				t.Errorf("record with payload %x was deleted", payload)
			}
		}
	}
}

// FuzzLoad drives a manager with arbitrary tokens and arbitrary stored
// records. Neither ever panics or makes Get fail: a malformed token never
// reaches the store, an unknown one is never adopted, and a record that
// cannot be used is left alone unless it opened and had expired.
func FuzzLoad(f *testing.F) {
	setups := fuzzSetups(f)
	// Seals use random nonces, so each fuzzing process seals its seeds
	// afresh; a sealed record counts as genuine when it opens to a plaintext
	// sealed here.
	var genuine [][]byte
	addGenuine := func(s fuzzSetup, token string, md meta, v fuzzSess) {
		rec := s.record(f, fuzzToken, md, v)
		if s.ring != nil {
			p, _, err := s.ring.Open(bytes.Clone(rec), []byte(fuzzKey(fuzzToken)))
			if err != nil {
				f.Fatal(err)
			}
			genuine = append(genuine, p)
		}
		f.Add(token, rec)
	}
	for _, s := range setups {
		addGenuine(s, fuzzToken, fuzzMeta(), fuzzValue)
		expired := fuzzMeta()
		expired.idle = fuzzNow.UnixMilli()
		addGenuine(s, "", expired, fuzzValue)
		addGenuine(s, newToken(), fuzzMeta(), fuzzSess{})
		// The envelope alone (plaintext stores read it as is).
		b := make([]byte, envHeader)
		putEnvelope(b, fuzzMeta())
		f.Add("../../etc/passwd", append(b, `{"UserID":"x"}`...))
		f.Add(fuzzToken, append(b, nilLogin...))
		f.Add(fuzzToken[:42]+"B", append(b, 0xdd, 0xff, 0xff, 0xff, 0xff))
	}
	f.Add(fuzzToken+"\r\n", []byte{})
	f.Add(string(bytes.Repeat([]byte{'A'}, 10<<10)), []byte{1})

	ctx := context.Background()
	key := fuzzKey(fuzzToken)
	f.Fuzz(func(t *testing.T, token string, rec []byte) {
		for _, s := range setups {
			// An arbitrary token against a store that holds nothing for it.
			_ = s.st.Delete(ctx, key)
			s.st.reset()
			txn := s.m.Begin(ctx, token)
			v, err := txn.Get()
			if err != nil || v == nil {
				t.Fatalf("%s: Get(token %q) = (%v, %v)", s.name, token, v, err)
			}
			if diff := cmp.Diff(fuzzSess{}, *v, fuzzTimeEqual); diff != "" {
				t.Fatalf("%s: Get(unknown token) is not empty:\n%s", s.name, diff)
			}
			if !validToken(token) && s.st.loads+s.st.saves+s.st.deletes != 0 {
				t.Fatalf("%s: malformed token %q reached the store", s.name, token)
			}
			v.UserID = 1
			res, err := txn.Commit(ctx)
			if err != nil {
				t.Fatalf("%s: Commit: %v", s.name, err)
			}
			if res.Token == token || !validToken(res.Token) || !res.Send {
				t.Fatalf("%s: client token %q led to result %+v: adopted or invalid", s.name, token, res)
			}
			_ = s.st.Delete(ctx, fuzzKey(res.Token))

			// An arbitrary record under a valid token's key.
			if err := s.st.Save(ctx, key, rec, fuzzNow.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			txn = s.m.Begin(ctx, fuzzToken)
			v, err = txn.Get()
			if err != nil || v == nil {
				t.Fatalf("%s: Get(record %x) = (%v, %v)", s.name, rec, v, err)
			}
			info, err := txn.Info()
			if err != nil {
				t.Fatalf("%s: Info: %v", s.name, err)
			}
			_, kept, err := s.st.Load(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			// A record is deleted only when it opened and had expired.
			if !info.New && !kept {
				t.Fatalf("%s: record %x: adopted but deleted", s.name, rec)
			}
			if !kept && len(rec) > 0 { // an empty record is none
				if md, _, ok := s.m.openMeta(rec, key); !ok || s.m.live(md, fuzzNow.UnixMilli()) {
					t.Fatalf("%s: record %x was deleted though it did not open as an expired session", s.name, rec)
				}
			}
			if info.New {
				if diff := cmp.Diff(fuzzSess{}, *v, fuzzTimeEqual); diff != "" {
					t.Fatalf("%s: a dropped record left data behind:\n%s", s.name, diff)
				}
			}
			if s.ring != nil && !info.New {
				p, _, err := s.ring.Open(bytes.Clone(rec), []byte(key))
				if err != nil || !containsBytes(genuine, p) {
					t.Fatalf("%s: a record nobody sealed opened: %x", s.name, rec)
				}
			}
			if _, err := txn.Commit(ctx); err != nil {
				t.Fatalf("%s: Commit after loading %x: %v", s.name, rec, err)
			}
		}
	})
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// openMeta opens rec as stored under key and returns its metadata.
func (m *Manager[T]) openMeta(rec []byte, key string) (meta, []byte, bool) {
	r, ok := m.open(rec, []byte(key))
	return r.md, r.payload, ok
}
