//go:build !linux

package sipua

import "net"

// grantedReadBuffer is unknown (-1) where the kernel's accounting of SO_RCVBUF is not Linux's.
func grantedReadBuffer(*net.UDPConn) int { return -1 }
