package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

const (
	tokenBytes = 32
	// tokenLen is the length of a token: 32 bytes in unpadded base64url.
	tokenLen = 43
	keyLen   = 43
)

// newToken returns 256 random bits in unpadded base64url.
func newToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether s has the shape of a token this package issues:
// 43 characters of the base64url alphabet encoding exactly 32 bytes. It is
// checked before any I/O so that hostile input never reaches a store.
func validToken(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// 43 characters carry 258 bits; the last character's low two bits are
	// padding and must be zero, so each token has one spelling only.
	return lastCharOK(s[len(s)-1])
}

func lastCharOK(c byte) bool {
	var v byte
	switch {
	case 'A' <= c && c <= 'Z':
		v = c - 'A'
	case 'a' <= c && c <= 'z':
		v = c - 'a' + 26
	case '0' <= c && c <= '9':
		v = c - '0' + 52
	case c == '-':
		v = 62
	default:
		v = 63
	}
	return v&3 == 0
}

// storeKey derives the key a record is kept under: a hash of the token, so a
// dump of the store holds no usable token.
// The token is copied to the stack first: hashing the string's bytes through
// a conversion would allocate on every request.
func storeKey(dst *[keyLen]byte, token string) {
	var b [tokenLen]byte
	sum := sha256.Sum256(b[:copy(b[:], token)])
	base64.RawURLEncoding.Encode(dst[:], sum[:])
}
