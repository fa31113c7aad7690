package sipua

import (
	"errors"
	"strings"
)

var errUnsafeHeader = errors.New("header value contains CR, LF or NUL")

// SafeHeaderValue refuses a value that would break out of its SIP header line (B9: sipgo writes header values
// verbatim, and the sip.ValidateRequest its README mentions does not exist). Check anything from callers, the
// database or users before it goes into a header.
func SafeHeaderValue(v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return errUnsafeHeader
	}
	return nil
}
