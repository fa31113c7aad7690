// Package phone normalises and masks Chinese telephone numbers, so that a number written `+86 138 1234 5678`,
// `0086-13812345678` or `13812345678` is stored and searched as one value, and shown as `138****5678`.
package phone

import (
	"errors"
	"strings"
)

// Kind of a number.
type Kind string

const (
	Mobile   Kind = "mobile"   // 11 digits starting 1[3-9]
	Landline Kind = "landline" // 0 + area code (2-3 digits after the 0) + 7-8 digit subscriber number
	Service  Kind = "service"  // short service numbers such as 12345, 12317
)

// ErrInvalid is returned for anything that is not a Chinese phone number.
var ErrInvalid = errors.New("not a valid phone number")

// Normalize returns the canonical form: mobile `13812345678`, landline `07371234567` (trunk prefix 0, area code,
// subscriber number, no separators), service `12345`. It accepts spaces, dashes, dots, parentheses, and the
// country code as `+86`, `0086` or `86` before an 11-digit mobile or 10-12-digit landline number.
func Normalize(s string) (string, Kind, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= '０' && r <= '９': // full-width digits typed with a Chinese IME
			b.WriteRune('0' + (r - '０'))
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '（' || r == '）' || r == '\u00a0':
		default:
			return "", "", ErrInvalid
		}
	}
	d := b.String()
	international := false
	switch {
	case strings.HasPrefix(d, "0086"):
		d, international = d[4:], true
	case strings.HasPrefix(d, "86") && (len(d) == 13 || len(d) >= 11 && d[2] >= '2' && d[2] <= '9'):
		d, international = d[2:], true
	}
	if len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9' {
		return d, Mobile, nil
	}
	// From abroad a landline is written without its trunk 0: +86 737 1234567.
	if international && len(d) >= 9 && len(d) <= 11 && d[0] >= '2' && d[0] <= '9' {
		d = "0" + d
	}
	if len(d) >= 10 && len(d) <= 12 && d[0] == '0' && d[1] != '0' {
		return d, Landline, nil
	}
	if len(d) >= 5 && len(d) <= 6 && (strings.HasPrefix(d, "1") || strings.HasPrefix(d, "9")) {
		return d, Service, nil
	}
	return "", "", ErrInvalid
}

// Mask hides the middle of a number: `138****5678`; short numbers are shown as they are.
func Mask(normalized string) string {
	if len(normalized) < 8 {
		return normalized
	}
	return normalized[:3] + "****" + normalized[len(normalized)-4:]
}
