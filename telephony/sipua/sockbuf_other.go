//go:build !linux

package sipua

// raiseUDPBuffers is Linux-only (sockbuf_linux.go); elsewhere the SIP sockets keep the system's default buffers.
func raiseUDPBuffers([]string) int { return 0 }
