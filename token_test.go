package session

import (
	"encoding/base64"
	"strings"
	"testing"
)

// strictB64 is the decoder that defines a valid token: unpadded base64url,
// zero padding bits. (It skips CR and LF, so callers also check that the
// bytes re-encode to the input.)
var strictB64 = base64.RawURLEncoding.Strict()

// spells32 reports whether s is the one spelling of 32 bytes in unpadded
// base64url, by the standard library's reckoning.
func spells32(s string) bool {
	b, err := strictB64.DecodeString(s)
	return err == nil && len(b) == 32 && base64.RawURLEncoding.EncodeToString(b) == s
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestNewToken(t *testing.T) {
	for range 1000 {
		tok := newToken()
		if len(tok) != 43 {
			t.Fatalf("len(%q) = %d, want 43", tok, len(tok))
		}
		if !validToken(tok) {
			t.Fatalf("validToken(newToken() = %q) = false", tok)
		}
		b, err := strictB64.DecodeString(tok)
		if err != nil || len(b) != 32 {
			t.Fatalf("decode(%q) = (%d bytes, %v), want 32 bytes", tok, len(b), err)
		}
	}
}

// TestTokensUnique checks invariant 1 on a million tokens. Tokens are kept as
// their 32 decoded bytes to keep the map small.
func TestTokensUnique(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 10_000
	}
	seen := make(map[[tokenBytes]byte]struct{}, n)
	for i := range n {
		tok := newToken()
		var k [tokenBytes]byte
		if m, err := strictB64.Decode(k[:], []byte(tok)); err != nil || m != tokenBytes {
			t.Fatalf("token %d %q does not decode to 32 bytes: %d, %v", i, tok, m, err)
		}
		if _, dup := seen[k]; dup {
			t.Fatalf("token %d repeats an earlier one", i)
		}
		seen[k] = struct{}{}
	}
}

func TestValidToken(t *testing.T) {
	good := newToken()
	withLast := func(c byte) string { return good[:42] + string(c) }
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"fresh", good, true},
		{"all A", strings.Repeat("A", 43), true},
		{"last A", withLast('A'), true},
		{"last E", withLast('E'), true},
		{"last w", withLast('w'), true},
		{"last 8", withLast('8'), true},

		{"empty", "", false},
		{"10 chars", good[:10], false},
		{"42 chars", good[:42], false},
		{"44 chars", good + "A", false},
		{"86 chars", good + good, false},
		{"10 kB", strings.Repeat("A", 10<<10), false},
		{"padded", good[:42] + "=", false},
		{"44 with padding", good + "=", false},
		{"plus", "+" + good[1:], false},
		{"slash", good[:20] + "/" + good[21:], false},
		{"dot", good[:20] + "." + good[21:], false},
		{"dotdot slash", "../" + good[3:], false},
		{"dotdot slash inside", good[:10] + "../" + good[13:], false},
		{"backslash", good[:20] + `\` + good[21:], false},
		{"CR", good[:20] + "\r" + good[21:], false},
		{"LF", good[:20] + "\n" + good[21:], false},
		{"CRLF", good[:41] + "\r\n", false},
		{"NUL", good[:20] + "\x00" + good[21:], false},
		{"space", good[:20] + " " + good[21:], false},
		{"tab", good[:20] + "\t" + good[21:], false},
		{"semicolon", good[:20] + ";" + good[21:], false},
		{"percent", good[:20] + "%" + good[21:], false},
		{"high byte", good[:20] + "\xff" + good[21:], false},
		{"non-ASCII letter", good[:20] + "é" + good[22:], false},
		{"last B (padding bits)", withLast('B'), false},
		{"last _", withLast('_'), false},
		{"last -", withLast('-'), false},
		{"last 9", withLast('9'), false},
		{"last =", withLast('='), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validToken(tt.tok); got != tt.want {
				t.Errorf("validToken(%q) = %v, want %v", tt.tok, got, tt.want)
			}
		})
	}
}

// TestValidTokenLastChar checks every byte in the last position against the
// strict decoder: exactly the spellings of 32 bytes are valid.
func TestValidTokenLastChar(t *testing.T) {
	prefix := newToken()[:42]
	valid := 0
	for c := range 256 {
		tok := prefix + string(byte(c))
		want := spells32(tok)
		if got := validToken(tok); got != want {
			t.Errorf("validToken(prefix + %q) = %v, want %v", byte(c), got, want)
		}
		if want {
			valid++
			if !strings.ContainsRune(b64Alphabet, rune(c)) {
				t.Errorf("strict decoder accepted %q", byte(c))
			}
		}
	}
	if valid != 16 {
		t.Errorf("%d valid last characters, want 16 (64 values with two zero bits)", valid)
	}
}

// TestValidTokenEveryPosition puts every byte at every position but the last.
func TestValidTokenEveryPosition(t *testing.T) {
	good := []byte(strings.Repeat("A", 43))
	for i := range 42 {
		for c := range 256 {
			tok := append([]byte(nil), good...)
			tok[i] = byte(c)
			want := strings.IndexByte(b64Alphabet, byte(c)) >= 0
			if got := validToken(string(tok)); got != want {
				t.Fatalf("validToken with %q at %d = %v, want %v", byte(c), i, got, want)
			}
		}
	}
}

func TestStoreKey(t *testing.T) {
	key := func(tok string) string {
		var k [keyLen]byte
		storeKey(&k, tok)
		return string(k[:])
	}
	seen := make(map[string]string)
	for range 1000 {
		tok := newToken()
		k := key(tok)
		if len(k) != 43 {
			t.Fatalf("len(storeKey) = %d, want 43", len(k))
		}
		if k2 := key(tok); k2 != k {
			t.Fatalf("storeKey is not deterministic: %q then %q", k, k2)
		}
		if k == tok {
			t.Fatalf("storeKey(%q) is the token", tok)
		}
		for i := 0; i+8 <= len(tok); i++ {
			if strings.Contains(k, tok[i:i+8]) {
				t.Fatalf("storeKey(%q) = %q contains part of the token %q", tok, k, tok[i:i+8])
			}
		}
		if b, err := strictB64.DecodeString(k); err != nil || len(b) != 32 {
			t.Fatalf("storeKey %q is not 32 bytes in base64url: %v", k, err)
		}
		if other, dup := seen[k]; dup {
			t.Fatalf("tokens %q and %q share store key %q", other, tok, k)
		}
		seen[k] = tok
	}
	// Tokens one character apart have unrelated keys.
	a := strings.Repeat("A", 43)
	b := "B" + a[1:]
	if key(a) == key(b) {
		t.Errorf("storeKey(%q) == storeKey(%q)", a, b)
	}
	// A store key is itself a valid-looking token, so it must not be the
	// key of anything: hashing again gives something else.
	if k := key(a); key(k) == k {
		t.Errorf("storeKey is a fixed point at %q", k)
	}
}

// FuzzValidToken: validToken never panics, and accepts exactly the 43-byte
// strings that are the one spelling of 32 bytes in base64url.
func FuzzValidToken(f *testing.F) {
	f.Add(newToken())
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 42) + "B")
	f.Add(strings.Repeat("_", 43))
	f.Add("../../../../etc/passwd")
	f.Add("")
	f.Add(newToken() + "=")
	f.Add(newToken()[:42] + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		ok := validToken(s)
		if want := spells32(s); ok != want {
			t.Fatalf("validToken(%q) = %v, want %v", s, ok, want)
		}
		if !ok {
			return
		}
		if len(s) != 43 {
			t.Fatalf("validToken accepted %d characters", len(s))
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("validToken(%q) but it decodes to (%d bytes, %v)", s, len(b), err)
		}
		if again := base64.RawURLEncoding.EncodeToString(b); again != s {
			t.Fatalf("validToken(%q) but it re-encodes as %q", s, again)
		}
	})
}
