// Package idcard validates and masks resident identity numbers (公民身份号码) of GB 11643-1999: 18 characters,
// six digits of the issuing region, the birth date as YYYYMMDD, a three-digit sequence (odd for men) and a
// check character computed by ISO 7064 MOD 11-2, which is 0-9 or X.
package idcard

import (
	"errors"
	"strings"
	"time"
)

// Errors say what is wrong, so an import report can give a reason people can act on.
var (
	ErrLength    = errors.New("must be 18 characters")
	ErrChars     = errors.New("must be 17 digits followed by a digit or X")
	ErrBirthDate = errors.New("birth date is not a real date")
	ErrCheck     = errors.New("check digit does not match")
)

// weights of positions 1-17 (2^(18-i) mod 11) and the check character for each remainder, from GB 11643.
var (
	weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	checks  = "10X98765432"
)

// Normalize trims spaces and upper-cases a trailing x, so `43090319800101123x` and `...123X` are one number.
func Normalize(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// CheckChar returns the check character of the first 17 digits.
func CheckChar(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * weights[i]
	}
	return checks[sum%11]
}

// Validate returns the normalised number, or why it is not a valid number. now bounds the birth date: nobody is
// born in the future.
func Validate(s string, now time.Time) (string, error) {
	id := Normalize(s)
	if len(id) != 18 {
		return "", ErrLength
	}
	for i := 0; i < 17; i++ {
		if id[i] < '0' || id[i] > '9' {
			return "", ErrChars
		}
	}
	if c := id[17]; (c < '0' || c > '9') && c != 'X' {
		return "", ErrChars
	}
	birth, err := time.Parse("20060102", id[6:14])
	if err != nil || birth.Year() < 1880 || birth.After(now) {
		return "", ErrBirthDate
	}
	if CheckChar(id) != id[17] {
		return "", ErrCheck
	}
	return id, nil
}

// BirthDate returns the birth date of a valid number.
func BirthDate(id string) time.Time {
	t, _ := time.Parse("20060102", id[6:14])
	return t
}

// Mask shows the region and the last four characters only: 430903********1234.
func Mask(id string) string {
	if len(id) != 18 {
		return strings.Repeat("*", len(id))
	}
	return id[:6] + "********" + id[14:]
}

// Last4 is what search by "last four digits" compares.
func Last4(id string) string {
	if len(id) < 4 {
		return id
	}
	return id[len(id)-4:]
}
