// Package pii protects personal data at rest: values are sealed with AES-256-GCM (a fresh random nonce each
// time, the field name bound as additional data so a ciphertext cannot be moved to another column), and a keyed
// HMAC-SHA-256 "lookup hash" of the normalised value lets the database find a record by an exact value without
// holding the value. Both keys are derived from one 32-byte master key (HKDF-SHA-256) that comes from the
// configuration, so rotating it means re-encrypting; it is never stored in the database.
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
type Box struct {
	aead    cipher.AEAD
	macPool sync.Pool
}

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
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead}
	b.macPool.New = func() any { return hmac.New(sha256.New, macKey) }
	return b, nil
}

// Seal encrypts a value: nonce || ciphertext || tag.
func (b *Box) Seal(f Field, plaintext string) []byte {
	ns := b.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+b.aead.Overhead())
	rand.Read(out[:ns])
	return b.aead.Seal(out, out[:ns], []byte(plaintext), []byte(f))
}

// Open decrypts what Seal produced for the same field.
func (b *Box) Open(f Field, sealed []byte) (string, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < ns+b.aead.Overhead() {
		return "", fmt.Errorf("open %s: ciphertext too short", f)
	}
	p, err := b.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(f))
	if err != nil {
		return "", fmt.Errorf("open %s: wrong key or tampered data", f)
	}
	return string(p), nil
}

// Hash is the lookup hash of a normalised value: equal values of a field hash equal; nothing about the value can
// be learnt without the key (unlike a bare SHA-256 of an 11-digit phone number, which is brute-forced in
// seconds).
func (b *Box) Hash(f Field, normalized string) []byte {
	m := b.macPool.Get().(hash.Hash)
	defer b.macPool.Put(m)
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
