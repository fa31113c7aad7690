package idcard

import (
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"valid", "11010519491231002X", "11010519491231002X", nil},
		{"valid lower-case x", "11010519491231002x", "11010519491231002X", nil},
		{"wrong check digit (digit)", "430903198001011230", "", ErrCheck},
		{"valid with spaces", " 440524188001010014 ", "440524188001010014", nil},
		{"wrong check digit", "110105194912310021", "", ErrCheck},
		{"X where a digit belongs", "11010519491231002X1", "", ErrLength},
		{"X in the middle", "1101051949123100X2", "", ErrChars},
		{"too short", "11010519491231002", "", ErrLength},
		{"too long", "110105194912310020X", "", ErrLength},
		{"15-digit old number", "110105491231002", "", ErrLength},
		{"February 30th", "430903198002301234", "", ErrBirthDate},
		{"month 13", "430903198013011234", "", ErrBirthDate},
		{"born in the future", "430903203001011234", "", ErrBirthDate},
		{"letters", "43090319800101ABCD", "", ErrChars},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Validate(tc.in, now)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Validate(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("Validate(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckCharRoundTrip(t *testing.T) {
	// Every check character, including X (remainder 2), must be produced and accepted.
	seen := map[byte]bool{}
	now := time.Now()
	for seq := 0; seq < 200; seq++ {
		first := "43090319850615" + string(rune('0'+seq/100)) + string(rune('0'+seq/10%10)) + string(rune('0'+seq%10))
		id := first + string(CheckChar(first))
		if _, err := Validate(id, now); err != nil {
			t.Fatalf("Validate(%q): %v", id, err)
		}
		seen[id[17]] = true
	}
	for _, c := range []byte("0123456789X") {
		if !seen[c] {
			t.Errorf("check character %c never produced", c)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("430903198001011234"); got != "430903********1234" {
		t.Fatalf("Mask = %q", got)
	}
	if got := Last4("11010519491231002X"); got != "002X" {
		t.Fatalf("Last4 = %q", got)
	}
}

// FuzzIDNumber: a number Validate accepts has a check character that matches and masks to 18 characters.
func FuzzIDNumber(f *testing.F) {
	f.Add("11010519491231002X")
	f.Add("430903198002301234")
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Validate(s, now)
		if err != nil {
			return
		}
		if len(id) != 18 || CheckChar(id) != id[17] || len(Mask(id)) != 18 {
			t.Fatalf("accepted %q as %q", s, id)
		}
	})
}
