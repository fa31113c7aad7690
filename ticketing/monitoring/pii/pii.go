// Package pii protects personal data at rest: values are sealed with AES-256-GCM (a fresh random nonce each
// time, the field name bound as additional data so a ciphertext cannot be moved to another column), and a keyed
// HMAC-SHA-256 "lookup hash" of the normalised value lets the database find a record by an exact value without
// holding the value. Both keys are derived from one 32-byte master key (HKDF-SHA-256) that comes from the
// configuration and is never stored in the database. Rotating it means re-sealing and re-hashing the stored data
// (`hotline pii rotate`) while the previous key is still configured to open and look up.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// KeySize is the size of the master key in bytes.
const KeySize = 32

// Field names a kind of personal data; it separates the lookup hashes and ciphertexts of different fields.
type Field string

const (
	FieldIDNumber Field = "id_number"
	FieldPhone    Field = "phone"
)

// ErrKey is returned for a key that is not base64 of 32 bytes.
var ErrKey = errors.New("personal-data key must be base64 of 32 random bytes")

// Box seals, opens and hashes personal data. It is safe for concurrent use.
//
// A Box holds the current key, which seals and hashes, and optionally the previous key, still accepted to open
// and to look up while `hotline pii rotate` re-seals the stored data under the current key. A ciphertext
// starts with a version byte and the 4-byte id of its key (derived from the key, so no registry of ids is
// needed); a ciphertext without that header was sealed before keys had ids and is tried with every key.
type Box struct {
	cur  *keyBox
	prev *keyBox
}

type keyBox struct {
	id      [4]byte
	aead    cipher.AEAD
	macPool sync.Pool
}

// version marks a ciphertext that carries its key id: version || key id || nonce || ciphertext || tag.
const version = 0x01

// headerSize is the size of version and key id.
const headerSize = 5

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) master key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, ErrKey
}

// NewKey returns a fresh random master key, base64-encoded.
func NewKey() string {
	k := make([]byte, KeySize)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// New returns a Box for a 32-byte master key.
func New(master []byte) (*Box, error) {
	return NewRotating(master, nil)
}

// NewRotating returns a Box that seals under current and also opens and looks up what previous sealed; previous
// may be nil. It is for the time of a key rotation.
func NewRotating(current, previous []byte) (*Box, error) {
	cur, err := newKeyBox(current)
	if err != nil {
		return nil, err
	}
	b := &Box{cur: cur}
	if previous != nil {
		if b.prev, err = newKeyBox(previous); err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		if b.prev.id == cur.id {
			b.prev = nil // the same key twice: nothing to rotate
		}
	}
	return b, nil
}

func newKeyBox(master []byte) (*keyBox, error) {
	if len(master) != KeySize {
		return nil, ErrKey
	}
	encKey, err := hkdf.Key(sha256.New, master, nil, "hotline pii aes-gcm v1", 32)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, master, nil, "hotline pii lookup-hash v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := hkdf.Key(sha256.New, master, nil, "hotline pii key id v1", 4)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &keyBox{aead: aead}
	copy(k.id[:], id)
	k.macPool.New = func() any { return hmac.New(sha256.New, macKey) }
	return k, nil
}

// Header is the start of every ciphertext sealed under the current key: a ciphertext that does not start with
// it still has to be rotated.
func (b *Box) Header() []byte {
	return append([]byte{version}, b.cur.id[:]...)
}

// Rotating tells whether a previous key is configured.
func (b *Box) Rotating() bool { return b.prev != nil }

// Current returns a Box with the current key alone (what remains once rotation is done).
func (b *Box) Current() *Box { return &Box{cur: b.cur} }

// Seal encrypts a value under the current key: version || key id || nonce || ciphertext || tag.
func (b *Box) Seal(f Field, plaintext string) []byte {
	a := b.cur.aead
	ns := a.NonceSize()
	nonce := make([]byte, ns)
	rand.Read(nonce) // crypto/rand: never fails on Linux (Go 1.24+ crashes the process rather than return an error)
	out := make([]byte, 0, headerSize+ns+len(plaintext)+a.Overhead())
	out = append(append(append(out, version), b.cur.id[:]...), nonce...)
	return a.Seal(out, nonce, []byte(plaintext), []byte(f))
}

// Open decrypts what Seal produced for the same field, under the current or the previous key, with or without
// a key id.
func (b *Box) Open(f Field, sealed []byte) (string, error) {
	keys := []*keyBox{b.cur}
	if b.prev != nil {
		keys = append(keys, b.prev)
	}
	if len(sealed) > headerSize && sealed[0] == version {
		for _, k := range keys {
			if [4]byte(sealed[1:headerSize]) == k.id {
				if p, err := k.open(f, sealed[headerSize:]); err == nil {
					return p, nil
				}
			}
		}
	}
	// Sealed before ciphertexts carried a key id (or, with odds of 2^-40, an old nonce that looks like a header).
	for _, k := range keys {
		if p, err := k.open(f, sealed); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("open %s: wrong key or tampered data", f)
}

func (k *keyBox) open(f Field, sealed []byte) (string, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return "", errors.New("ciphertext too short")
	}
	p, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(f))
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// Hash is the lookup hash of a normalised value: equal values of a field hash equal; nothing about the value can
// be learnt without the key (unlike a bare SHA-256 of an 11-digit phone number, which is brute-forced in
// seconds).
func (b *Box) Hash(f Field, normalized string) []byte {
	return b.cur.hash(f, normalized)
}

// Hashes are the lookup hashes of a value under the current key and, during a rotation, the previous one: a
// lookup matches any of them (`= ANY($1)`) so rows not yet rotated are still found.
func (b *Box) Hashes(f Field, normalized string) [][]byte {
	hs := [][]byte{b.cur.hash(f, normalized)}
	if b.prev != nil {
		hs = append(hs, b.prev.hash(f, normalized))
	}
	return hs
}

func (k *keyBox) hash(f Field, normalized string) []byte {
	m := k.macPool.Get().(hash.Hash)
	defer k.macPool.Put(m)
	m.Reset()
	m.Write([]byte(f))
	m.Write([]byte{0})
	m.Write([]byte(normalized))
	return m.Sum(nil)
}

// Digest is a keyed digest of arbitrary bytes (used to tell whether an imported record changed without storing
// its content in clear).
func (b *Box) Digest(data []byte) []byte {
	return b.Hash("digest", string(data))
}
