//go:build linux && (amd64 || arm64)

package sipua

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"
)

// oobSize holds one SCM_TIMESTAMPNS control message (a cmsghdr and a timespec on 64-bit Linux).
var oobSize = syscall.CmsgSpace(16)

// enableRxTimestamps asks the kernel to stamp each datagram with its arrival time (SO_TIMESTAMPNS).
func enableRxTimestamps(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// rxTime reads the kernel's arrival time from a datagram's control messages, without allocating
// (syscall.ParseSocketControlMessage would, for every datagram).
func rxTime(oob []byte) (time.Time, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		l := binary.NativeEndian.Uint64(oob[0:8])
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < syscall.SizeofCmsghdr || l > uint64(len(oob)) {
			return time.Time{}, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= syscall.SizeofCmsghdr+16 {
			d := oob[syscall.SizeofCmsghdr:]
			sec := int64(binary.NativeEndian.Uint64(d[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(d[8:16]))
			return time.Unix(sec, nsec), true
		}
		next := syscall.CmsgSpace(int(l) - syscall.SizeofCmsghdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
