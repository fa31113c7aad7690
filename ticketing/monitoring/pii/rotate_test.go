package pii

import (
	"bytes"
	"testing"
)

// A rotating Box seals under the current key with its id, opens what the previous key sealed (with or without a
// key id), and looks up under both keys; the current key alone does not open the previous key's values.
func TestRotatingBox(t *testing.T) {
	a, _ := ParseKey(NewKey())
	b, _ := ParseKey(NewKey())
	boxA, _ := New(a)
	boxAB, err := NewRotating(b, a)
	if err != nil || !boxAB.Rotating() {
		t.Fatal(err)
	}
	oldWithID := boxA.Seal(FieldPhone, "13800000000")
	oldNoID := oldWithID[headerSize:] // as sealed before ciphertexts carried a key id
	for _, c := range [][]byte{oldWithID, oldNoID} {
		if p, err := boxAB.Open(FieldPhone, c); err != nil || p != "13800000000" {
			t.Fatalf("open old: %q, %v", p, err)
		}
		if _, err := boxAB.Current().Open(FieldPhone, c); err == nil {
			t.Fatal("the new key alone opened a value of the old key")
		}
	}
	nw := boxAB.Seal(FieldPhone, "13800000000")
	if !bytes.HasPrefix(nw, boxAB.Header()) || bytes.HasPrefix(nw, boxA.Header()) {
		t.Fatal("sealed without the current key id")
	}
	if _, err := boxA.Open(FieldPhone, nw); err == nil {
		t.Fatal("the old key opened a value of the new key")
	}
	hs := boxAB.Hashes(FieldPhone, "13800000000")
	if len(hs) != 2 || !bytes.Equal(hs[0], boxAB.Hash(FieldPhone, "13800000000")) || !bytes.Equal(hs[1], boxA.Hash(FieldPhone, "13800000000")) {
		t.Fatal("Hashes: want the current then the previous key's hash")
	}
	if len(boxAB.Current().Hashes(FieldPhone, "1")) != 1 {
		t.Fatal("no previous key: one hash")
	}
}
