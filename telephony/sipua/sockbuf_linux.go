package sipua

import (
	"net"
	"syscall"
)

// grantedReadBuffer is the receive buffer the kernel gave c, in the bytes asked for: Linux reports twice the
// request (it counts its bookkeeping too) and silently caps the request at net.core.rmem_max.
func grantedReadBuffer(c *net.UDPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	v := -1
	if cerr := raw.Control(func(fd uintptr) {
		if n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
			v = n / 2
		}
	}); cerr != nil {
		return -1
	}
	return v
}
