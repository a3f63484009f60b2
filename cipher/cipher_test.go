package cipher_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/cipher"
)

// fixedKey returns a deterministic, non-zero key whose bytes all equal b.
func fixedKey(b byte) []byte { return bytes.Repeat([]byte{b}, cipher.KeySize) }

func mustRing(t testing.TB, keys ...[]byte) *cipher.Ring {
	t.Helper()
	r, err := cipher.NewRing(keys...)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

// clone copies b, because Open decrypts in place.
func clone(b []byte) []byte { return append([]byte(nil), b...) }

// wantErrOpen fails unless err is exactly ErrOpen, by identity and by errors.Is.
func wantErrOpen(t testing.TB, what string, err error) {
	t.Helper()
	if err != cipher.ErrOpen || !errors.Is(err, cipher.ErrOpen) {
		t.Fatalf("%s: err = %v, want exactly cipher.ErrOpen", what, err)
	}
}

var (
	plain = []byte(`{"user":42,"name":"Ada","cart":[1,2,3]}`)
	ad    = []byte("store-key-A")
)

func TestRoundTrip(t *testing.T) {
	r := mustRing(t, cipher.NewKey())
	for _, p := range [][]byte{nil, {}, {0}, plain, bytes.Repeat([]byte("x"), 64<<10)} {
		rec := r.Seal(nil, p, ad)
		if got, want := len(rec), len(p)+cipher.Overhead; got != want {
			t.Errorf("len(Seal(%d bytes)) = %d, want %d", len(p), got, want)
		}
		got, rotate, err := r.Open(clone(rec), ad)
		if err != nil {
			t.Fatalf("Open(%d bytes): %v", len(p), err)
		}
		if rotate {
			t.Errorf("Open with the sealing key reported rotate")
		}
		if !bytes.Equal(got, p) {
			t.Errorf("Open(Seal(p)) = %q, want %q", got, p)
		}
	}
}

func TestOverhead(t *testing.T) {
	// version (1) + key id (4) + XChaCha20 nonce (24) + Poly1305 tag (16).
	if cipher.Overhead != 1+4+24+16 {
		t.Errorf("Overhead = %d, want %d", cipher.Overhead, 1+4+24+16)
	}
	if cipher.KeySize != 32 {
		t.Errorf("KeySize = %d, want 32", cipher.KeySize)
	}
}

func TestBitFlips(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	rec := r.Seal(nil, plain, ad)
	for i := range rec {
		for bit := range 8 {
			bad := clone(rec)
			bad[i] ^= 1 << bit
			p, rotate, err := r.Open(bad, ad)
			if err != cipher.ErrOpen || !errors.Is(err, cipher.ErrOpen) || p != nil || rotate {
				t.Fatalf("flip byte %d bit %d: Open = (%q, %v, %v), want (nil, false, ErrOpen)", i, bit, p, rotate, err)
			}
		}
	}
}

func TestTruncation(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	rec := r.Seal(nil, plain, ad)
	for n := range len(rec) {
		_, _, err := r.Open(clone(rec[:n]), ad)
		wantErrOpen(t, fmt.Sprintf("truncated to %d bytes", n), err)
	}
	// Dropping bytes from the front is truncation too.
	for n := 1; n < len(rec); n++ {
		_, _, err := r.Open(clone(rec[n:]), ad)
		wantErrOpen(t, fmt.Sprintf("first %d bytes dropped", n), err)
	}
}

func TestExtension(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	rec := r.Seal(nil, plain, ad)
	for _, tail := range [][]byte{{0}, {0xff}, []byte("extra"), rec, bytes.Repeat([]byte{0}, 16)} {
		_, _, err := r.Open(append(clone(rec), tail...), ad)
		wantErrOpen(t, fmt.Sprintf("extended by %d bytes", len(tail)), err)
		_, _, err = r.Open(append(clone(tail), rec...), ad)
		wantErrOpen(t, fmt.Sprintf("prefixed by %d bytes", len(tail)), err)
	}
}

func TestAssociatedData(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	adA, adB := []byte("session"), []byte("__Host-session")
	recA := r.Seal(nil, []byte("alice"), adA)
	recB := r.Seal(nil, []byte("bob"), adB)

	// Each record opens where it was sealed...
	for _, c := range []struct {
		rec, ad []byte
		want    string
	}{{recA, adA, "alice"}, {recB, adB, "bob"}} {
		p, _, err := r.Open(clone(c.rec), c.ad)
		if err != nil || string(p) != c.want {
			t.Fatalf("Open under its own AD = (%q, %v), want %q", p, err, c.want)
		}
	}
	// ...and nowhere else: swapped, empty, nil, a prefix or an extension.
	for _, c := range []struct {
		name    string
		rec, ad []byte
	}{
		{"A under B", recA, adB},
		{"B under A", recB, adA},
		{"A under nil", recA, nil},
		{"A under empty", recA, []byte{}},
		{"A under prefix", recA, adA[:len(adA)-1]},
		{"A under extension", recA, append(clone(adA), 0)},
	} {
		_, _, err := r.Open(clone(c.rec), c.ad)
		wantErrOpen(t, c.name, err)
	}
}

// TestOverlappingAD checks Open when ad shares the record's memory, as fuzzing
// inputs may: no panic (the AEAD refuses to decrypt over its ad), and the
// right answer.
func TestOverlappingAD(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	rec := r.Seal(nil, plain, ad)
	for _, c := range []struct{ lo, hi int }{{0, 5}, {0, 40}, {30, 60}, {0, len(rec)}, {len(rec) - 1, len(rec)}} {
		bad := clone(rec)
		_, _, err := r.Open(bad, bad[c.lo:c.hi])
		wantErrOpen(t, fmt.Sprintf("ad = record[%d:%d]", c.lo, c.hi), err)
	}
	// A record whose ad really is its own header (version and key id, known
	// before sealing) opens.
	hdr := clone(rec[:5])
	own := r.Seal(nil, plain, hdr)
	p, _, err := r.Open(own, own[:5])
	if err != nil || !bytes.Equal(p, plain) {
		t.Fatalf("Open(rec, rec[:5]) = (%q, %v), want %q", p, err, plain)
	}
}

func TestWrongKey(t *testing.T) {
	a, b := mustRing(t, fixedKey(1)), mustRing(t, fixedKey(2))
	rec := a.Seal(nil, plain, ad)
	_, _, err := b.Open(clone(rec), ad)
	wantErrOpen(t, "other key", err)

	// A forged key id that names b's key does not help: the tag still fails.
	forged := append(b.Seal(nil, plain, ad)[:5], rec[5:]...) // b's header, a's nonce, ciphertext and tag
	_, _, err = b.Open(forged, ad)
	wantErrOpen(t, "a's record under b's key id", err)

	// Neither does a version byte other than the one Seal writes.
	bad := clone(rec)
	bad[0] = 2
	_, _, err = a.Open(bad, ad)
	wantErrOpen(t, "version 2", err)
}

func TestRotation(t *testing.T) {
	A, B := fixedKey(0xa), fixedKey(0xb)
	old := mustRing(t, A).Seal(nil, plain, ad)

	both := mustRing(t, B, A)
	p, rotate, err := both.Open(clone(old), ad)
	if err != nil || !rotate || !bytes.Equal(p, plain) {
		t.Fatalf("NewRing(B, A).Open(A's record) = (%q, %v, %v), want (plain, true, nil)", p, rotate, err)
	}

	resealed := both.Seal(nil, p, ad)
	p, rotate, err = mustRing(t, B).Open(clone(resealed), ad)
	if err != nil || rotate || !bytes.Equal(p, plain) {
		t.Fatalf("NewRing(B).Open(re-sealed) = (%q, %v, %v), want (plain, false, nil)", p, rotate, err)
	}
	p, rotate, err = both.Open(clone(resealed), ad)
	if err != nil || rotate || !bytes.Equal(p, plain) {
		t.Fatalf("NewRing(B, A).Open(re-sealed) = (%q, %v, %v), want (plain, false, nil)", p, rotate, err)
	}

	_, _, err = mustRing(t, B).Open(clone(old), ad)
	wantErrOpen(t, "A's record after A was retired", err)
}

func TestNewRingErrors(t *testing.T) {
	good := fixedKey(7)
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"no keys", nil},
		{"nil key", [][]byte{nil}},
		{"0 bytes", [][]byte{{}}},
		{"16 bytes", [][]byte{make([]byte, 16)}},
		{"31 bytes", [][]byte{bytes.Repeat([]byte{1}, 31)}},
		{"33 bytes", [][]byte{bytes.Repeat([]byte{1}, 33)}},
		{"all zeros", [][]byte{make([]byte, 32)}},
		{"all zeros second", [][]byte{good, make([]byte, 32)}},
		{"bad size second", [][]byte{good, bytes.Repeat([]byte{1}, 31)}},
		{"duplicate", [][]byte{good, clone(good)}},
		{"duplicate later", [][]byte{good, fixedKey(8), clone(good)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cipher.NewRing(tt.keys...)
			if !errors.Is(err, cipher.ErrKey) || r != nil {
				t.Fatalf("NewRing = (%v, %v), want (nil, error wrapping ErrKey)", r, err)
			}
			for _, k := range tt.keys {
				if len(k) > 0 && strings.Contains(err.Error(), hex.EncodeToString(k)) {
					t.Errorf("error %q contains key material", err)
				}
			}
		})
	}
}

// TestRingWithoutKeys: a Ring not built by NewRing has no key. Opening with
// it is a failure like any other; sealing with it is a programmer error that
// panics saying so, not with an index out of range.
func TestRingWithoutKeys(t *testing.T) {
	rec := mustRing(t, fixedKey(1)).Seal(nil, plain, ad)
	for name, r := range map[string]*cipher.Ring{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			var (
				err error
				msg any
			)
			func() {
				defer func() { msg = recover() }()
				_, _, err = r.Open(clone(rec), ad)
			}()
			if msg != nil {
				t.Fatalf("Open panicked: %v", msg)
			}
			wantErrOpen(t, "Open on a Ring with no keys", err)

			func() {
				defer func() { msg = recover() }()
				r.Seal(nil, plain, ad)
			}()
			const want = "cipher: Seal on a Ring with no keys; build one with NewRing"
			if msg != want {
				t.Fatalf("Seal panicked with %v, want %q", msg, want)
			}
		})
	}
}

func TestNewRingKeepsNoReferenceToKeys(t *testing.T) {
	k := fixedKey(3)
	r := mustRing(t, k)
	rec := r.Seal(nil, plain, ad)
	for i := range k {
		k[i] = 0xee // the caller reuses its buffer
	}
	if p, _, err := r.Open(clone(rec), ad); err != nil || !bytes.Equal(p, plain) {
		t.Fatalf("Open after the caller overwrote its key slice = (%q, %v)", p, err)
	}
}

func TestParseKeys(t *testing.T) {
	A, B := fixedKey(0xa), fixedKey(0xb)
	hA, hB := hex.EncodeToString(A), hex.EncodeToString(B)
	recA := mustRing(t, A).Seal(nil, plain, ad)
	recB := mustRing(t, B).Seal(nil, plain, ad)

	good := []struct {
		name, in string
	}{
		{"two keys", hA + "," + hB},
		{"spaces", "  " + hA + " ,\t" + hB + "\n"},
		{"upper case", strings.ToUpper(hA) + "," + hB},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cipher.ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			// A seals; both open.
			p, rotate, err := mustRing(t, A).Open(r.Seal(nil, plain, ad), ad)
			if err != nil || rotate || !bytes.Equal(p, plain) {
				t.Errorf("first key does not seal: (%q, %v, %v)", p, rotate, err)
			}
			if _, rotate, err := r.Open(clone(recA), ad); err != nil || rotate {
				t.Errorf("Open(A's record) = (%v, %v), want (false, nil)", rotate, err)
			}
			if _, rotate, err := r.Open(clone(recB), ad); err != nil || !rotate {
				t.Errorf("Open(B's record) = (%v, %v), want (true, nil)", rotate, err)
			}
		})
	}

	// Secret-looking material that must never show up in an error.
	secret := "deadbeefcafef00d" + strings.Repeat("5ec2e7", 8)
	bad := []struct {
		name, in string
	}{
		{"empty", ""},
		{"only commas", ",,"},
		{"trailing comma", hA + ","},
		{"not hex", strings.Replace(hA, "a", "g", 1)},
		{"odd length", hA[:63]},
		{"short", hA[:32]},
		{"long", hA + "00"},
		{"zero key", strings.Repeat("0", 64)},
		{"duplicate", hA + "," + hA},
		{"bad second", hA + "," + secret + "zz"},
		{"secret not hex", secret[:60] + "xyzw"},
		{"secret wrong size", secret + "00"},
		{"0x prefix", "0x" + hA},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cipher.ParseKeys(tt.in)
			if !errors.Is(err, cipher.ErrKey) || r != nil {
				t.Fatalf("ParseKeys = (%v, %v), want (nil, error wrapping ErrKey)", r, err)
			}
			msg := err.Error()
			for _, f := range strings.Split(tt.in, ",") {
				f = strings.TrimSpace(f)
				// Any run of 8 characters of the input is too much to leak.
				for i := 0; i+8 <= len(f); i++ {
					if strings.Contains(msg, f[i:i+8]) {
						t.Fatalf("error %q leaks key material %q", msg, f[i:i+8])
					}
				}
			}
		})
	}
}

func TestNonceUnique(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	a, b := r.Seal(nil, plain, ad), r.Seal(nil, plain, ad)
	if bytes.Equal(a[5:29], b[5:29]) {
		t.Errorf("two seals share nonce %x", a[5:29])
	}
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext are identical")
	}
	// The header (version and key id) is the same for both.
	if !bytes.Equal(a[:5], b[:5]) {
		t.Errorf("headers differ: %x vs %x", a[:5], b[:5])
	}
	if a[0] != 1 {
		t.Errorf("version byte = %d, want 1", a[0])
	}
	seen := make(map[string]bool)
	for range 1000 {
		n := string(r.Seal(nil, nil, ad)[5:29])
		if seen[n] {
			t.Fatalf("nonce %x repeated", n)
		}
		seen[n] = true
	}
}

func TestSealAppends(t *testing.T) {
	r := mustRing(t, fixedKey(1))
	prefix := []byte("prefix:")
	tests := []struct {
		name string
		dst  []byte
	}{
		{"no spare capacity", clone(prefix)},
		{"spare capacity", append(make([]byte, 0, 1024), prefix...)},
		{"exact capacity", append(make([]byte, 0, len(prefix)+len(plain)+cipher.Overhead), prefix...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := r.Seal(tt.dst, plain, ad)
			if diff := cmp.Diff(prefix, out[:len(prefix)]); diff != "" {
				t.Fatalf("Seal clobbered dst (-want +got):\n%s", diff)
			}
			if got, want := len(out), len(prefix)+len(plain)+cipher.Overhead; got != want {
				t.Fatalf("len = %d, want %d", got, want)
			}
			p, _, err := r.Open(out[len(prefix):], ad)
			if err != nil {
				t.Fatalf("Open(appended record): %v", err)
			}
			if diff := cmp.Diff(plain, p); diff != "" {
				t.Errorf("plaintext (-want +got):\n%s", diff)
			}
		})
	}
	// Seal leaves its plaintext alone.
	p := clone(plain)
	r.Seal(nil, p, ad)
	if !bytes.Equal(p, plain) {
		t.Errorf("Seal changed its plaintext")
	}
}

func TestConcurrent(t *testing.T) {
	r := mustRing(t, fixedKey(1), fixedKey(2))
	old := mustRing(t, fixedKey(2)).Seal(nil, plain, ad)
	done := make(chan error)
	for range 8 {
		go func() {
			var err error
			for range 200 {
				p, _, e := r.Open(r.Seal(nil, plain, ad), ad)
				if e != nil || !bytes.Equal(p, plain) {
					err = errors.Join(err, e, errors.New("bad round trip"))
				}
				if _, rot, e := r.Open(clone(old), ad); e != nil || !rot {
					err = errors.Join(err, e, errors.New("bad rotation"))
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// golden was sealed once by fixedKey(1) over goldenPlain with goldenAD. It
// must open in every later version: sessions outlive deploys.
const (
	golden      = "01c3e88ce69dbc12629866cbb1e870b940c89371a65a7614f5685963381b316682efbc728e264c7cdcc2326432a742bf4d038b44f501d7943ae9c5ac4e9a52492650a1c3af745121ea61"
	goldenPlain = "typedsession golden record v1"
	goldenAD    = "golden-ad"
)

func TestGoldenRecord(t *testing.T) {
	rec, err := hex.DecodeString(golden)
	if err != nil {
		t.Fatal(err)
	}
	p, rotate, err := mustRing(t, fixedKey(1)).Open(rec, []byte(goldenAD))
	if err != nil || rotate || string(p) != goldenPlain {
		t.Fatalf("Open(golden) = (%q, %v, %v), want (%q, false, nil)", p, rotate, err, goldenPlain)
	}
	rec, _ = hex.DecodeString(golden)
	p, rotate, err = mustRing(t, fixedKey(9), fixedKey(1)).Open(rec, []byte(goldenAD))
	if err != nil || !rotate || string(p) != goldenPlain {
		t.Fatalf("Open(golden) under a newer key = (%q, %v, %v), want (%q, true, nil)", p, rotate, err, goldenPlain)
	}
}

// FuzzOpen feeds arbitrary records and associated data to Open: it never
// panics, and it fails with exactly ErrOpen unless the record is genuine.
// Seals use random nonces, so each fuzzing process seals its seeds afresh;
// a record counts as genuine when it opens to a plaintext sealed here under
// the same associated data (anything else opening would be a forgery).
func FuzzOpen(f *testing.F) {
	r := mustRing(f, fixedKey(1), fixedKey(2))
	sealed := map[[2]string]bool{} // {plaintext, ad}
	add := func(ring *cipher.Ring, plain, ad []byte) {
		sealed[[2]string{string(plain), string(ad)}] = true
		f.Add(ring.Seal(nil, plain, ad), clone(ad))
	}
	add(r, plain, ad)
	add(r, nil, nil)
	add(mustRing(f, fixedKey(2)), []byte("old"), []byte("session"))
	sealed[[2]string{goldenPlain, goldenAD}] = true
	g, _ := hex.DecodeString(golden)
	f.Add(g, []byte(goldenAD))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, ad)
	f.Add(bytes.Repeat([]byte{1}, cipher.Overhead), ad)
	f.Add(bytes.Repeat([]byte{0}, cipher.Overhead+10), []byte(nil))

	f.Fuzz(func(t *testing.T, rec, ad []byte) {
		orig := clone(rec)
		p, rotate, err := r.Open(rec, ad)
		if err == nil {
			if !sealed[[2]string{string(p), string(ad)}] {
				t.Fatalf("Open(%x, %q) = %q: a record nobody sealed opened", orig, ad, p)
			}
			return
		}
		if err != cipher.ErrOpen || p != nil || rotate {
			t.Fatalf("Open(%x, %q) = (%x, %v, %v), want ErrOpen", orig, ad, p, rotate, err)
		}
	})
}
