//go:build !(linux && (amd64 || arm64))

package sipua

import (
	"errors"
	"net"
	"time"
)

// Elsewhere the door has no kernel arrival times: it still answers refused INVITEs statelessly, on the other
// pressure signals alone.
var oobSize = 0

func enableRxTimestamps(*net.UDPConn) error { return errors.New("no SO_TIMESTAMPNS here") }

func rxTime([]byte) (time.Time, bool) { return time.Time{}, false }
