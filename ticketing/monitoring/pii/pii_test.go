package pii

import (
	"bytes"
	"testing"
)

func box(t *testing.T) *Box {
	t.Helper()
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := box(t)
	s1 := b.Seal(FieldPhone, "13812345678")
	s2 := b.Seal(FieldPhone, "13812345678")
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	if bytes.Contains(s1, []byte("13812345678")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := b.Open(FieldPhone, s1)
	if err != nil || got != "13812345678" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open(FieldIDNumber, s1); err == nil {
		t.Fatal("a phone ciphertext opened as an ID number")
	}
	s1[len(s1)-1] ^= 1
	if _, err := b.Open(FieldPhone, s1); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
	if _, err := box(t).Open(FieldPhone, s2); err == nil {
		t.Fatal("opened with another key")
	}
}

func TestHash(t *testing.T) {
	b := box(t)
	if !bytes.Equal(b.Hash(FieldPhone, "13812345678"), b.Hash(FieldPhone, "13812345678")) {
		t.Fatal("hash not deterministic")
	}
	if bytes.Equal(b.Hash(FieldPhone, "13812345678"), b.Hash(FieldIDNumber, "13812345678")) {
		t.Fatal("fields share hashes")
	}
	if bytes.Equal(b.Hash(FieldPhone, "13812345678"), box(t).Hash(FieldPhone, "13812345678")) {
		t.Fatal("hash does not depend on the key")
	}
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{"", "short", "AAAA", NewKey() + "AAAA"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
