// Package cipher seals and opens session records with XChaCha20-Poly1305
// under a ring of keys, so that keys can be rotated without logging anyone
// out.
//
// A sealed record is
//
//	version (1 byte) | key id (4 bytes) | nonce (24 bytes) | ciphertext | tag (16 bytes)
//
// The key id names the key that sealed the record, so opening needs no trial
// decryption. The first key of a [Ring] seals; every key opens. Associated
// data passed by the caller binds a record to where it lives (a store key or
// a cookie name), so records cannot be moved between places.
//
// Every failure to open, whatever its cause, is the single error [ErrOpen].
//
// # Rotating keys
//
// Across several instances, rotate in three deploys: add the new key last
// (every instance can then open what it will seal), move it first (it seals
// from then on; records are re-sealed with it when next written), and remove
// the old key once the longest session lifetime has passed.
package cipher

import (
	stdcipher "crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// KeySize is the size of a key in bytes.
	KeySize = chacha20poly1305.KeySize

	// Overhead is how many bytes sealing adds to a plaintext.
	Overhead = headerSize + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

	version    = 1
	idSize     = 4
	headerSize = 1 + idSize
	nonceStart = headerSize
	dataStart  = headerSize + chacha20poly1305.NonceSizeX
)

var (
	// ErrOpen is the one error every failed Open returns: wrong key, wrong
	// associated data, a flipped bit, truncation or garbage alike.
	ErrOpen = errors.New("cipher: cannot open record")

	// ErrKey reports a key that is not KeySize bytes, is all zeros, or
	// repeats another key of the ring.
	ErrKey = errors.New("cipher: invalid key")
)

type key struct {
	id   uint32
	aead stdcipher.AEAD
}

// Ring seals with its first key and opens with any of its keys. It is safe
// for concurrent use. Build one with NewRing or ParseKeys: the zero Ring
// holds no key.
type Ring struct {
	keys []key
}

// NewRing returns a ring of the given keys, each KeySize bytes; the first
// seals. It fails with an error wrapping ErrKey for a key of the wrong size,
// an all-zero key, or a repeated key.
func NewRing(keys ...[]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKey)
	}
	r := &Ring{keys: make([]key, 0, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want %d", ErrKey, i, len(k), KeySize)
		}
		if subtle.ConstantTimeCompare(k, make([]byte, KeySize)) == 1 {
			return nil, fmt.Errorf("%w: key %d is all zeros", ErrKey, i)
		}
		id := keyID(k)
		for j, o := range r.keys {
			if o.id == id {
				return nil, fmt.Errorf("%w: key %d repeats key %d", ErrKey, i, j)
			}
		}
		aead, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		r.keys = append(r.keys, key{id: id, aead: aead})
	}
	return r, nil
}

// ParseKeys builds a ring from a comma-separated list of hex-encoded keys,
// the form of an environment variable such as SESSION_KEYS. The first key
// seals. Errors never include key material.
func ParseKeys(s string) (*Ring, error) {
	var keys [][]byte
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		k, err := hex.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d is not hex", ErrKey, i)
		}
		keys = append(keys, k)
	}
	return NewRing(keys...)
}

// NewKey returns a fresh random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // crypto/rand.Read never fails (Go 1.24+).
	return k
}

// keyID names a key without revealing it: a truncated hash under a label of
// this package's own, so the id is useless for anything but lookup.
func keyID(k []byte) uint32 {
	h := sha256.New()
	h.Write([]byte("typedsession cipher key id v1\x00"))
	h.Write(k)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Seal appends to dst the sealed form of plaintext under the ring's first key,
// bound to ad, and returns the extended slice. Neither plaintext nor ad may
// overlap the bytes Seal appends to dst. It panics on a Ring that was not
// built by NewRing or ParseKeys (a nil or zero Ring), which has no key.
func (r *Ring) Seal(dst, plaintext, ad []byte) []byte {
	if r == nil || len(r.keys) == 0 {
		// A programmer error, not a condition to handle: there is nothing
		// sensible to seal with, and sealing nothing would store plaintext.
		panic("cipher: Seal on a Ring with no keys; build one with NewRing")
	}
	k := r.keys[0]
	n := len(dst)
	dst = grow(dst, Overhead+len(plaintext))
	rec := dst[n:]
	rec[0] = version
	binary.BigEndian.PutUint32(rec[1:headerSize], k.id)
	nonce := rec[nonceStart:dataStart]
	rand.Read(nonce)
	k.aead.Seal(rec[:dataStart], nonce, plaintext, ad)
	return dst
}

// Open returns the plaintext of record, which must have been sealed with ad
// by a key of the ring. It decrypts in place: the returned slice shares
// record's memory, and record's contents are changed (an ad that shares
// record's memory is copied first). rotate reports a record sealed with a key
// other than the first, which the caller should re-seal. Any failure is
// ErrOpen, and so is every Open with a nil or zero Ring, which holds no key.
func (r *Ring) Open(record, ad []byte) (plaintext []byte, rotate bool, err error) {
	if r == nil || len(record) < Overhead || record[0] != version {
		return nil, false, ErrOpen
	}
	id := binary.BigEndian.Uint32(record[1:headerSize])
	for i, k := range r.keys {
		if k.id != id {
			continue
		}
		ct := record[dataStart:]
		if overlap(ad, ct) {
			// Decrypting in place would overwrite ad before it is
			// authenticated (and the AEAD panics rather than allow it).
			ad = append([]byte(nil), ad...)
		}
		p, err := k.aead.Open(ct[:0], record[nonceStart:dataStart], ct, ad)
		if err != nil {
			return nil, false, ErrOpen
		}
		return p, i != 0, nil
	}
	return nil, false, ErrOpen
}

// overlap reports whether a and b share any memory.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// grow extends b by n bytes, reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
