//go:build linux

package sipua

import (
	"net"
	"os"
	"strconv"
	"syscall"
)

// sipRcvBuf is the receive buffer asked for on each SIP UDP listener. The kernel's default (net.core.rmem_default,
// 208 KiB: about a hundred SIP datagrams as the kernel counts their memory) overflowed at 1,500 calls/s whenever
// the reading goroutine waited a few tens of milliseconds to run: 16,737 INVITEs, ACKs and BYEs dropped in a 10 s
// step, each one retransmitted by the peer after T1 — the retransmission storm of issue 15 was mostly this. The
// kernel caps the request at net.core.rmem_max (4 MiB on Debian's defaults here).
const sipRcvBuf = 8 << 20

// raiseUDPBuffers sets the receive buffer of this process's UDP sockets bound to the listener addresses. sipgo
// opens the listening socket itself and does not hand it out, so the socket is found among the process's file
// descriptors by its local address. Best effort: it reports how many sockets it raised.
func raiseUDPBuffers(addrs []string) int {
	want := map[netipPort]bool{}
	for _, a := range addrs {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil || ua.IP.To4() == nil {
			continue
		}
		want[netipPort{ip: [4]byte(ua.IP.To4()), port: ua.Port}] = true
	}
	if len(want) == 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || t != syscall.SOCK_DGRAM {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		in4, ok := sa.(*syscall.SockaddrInet4)
		if err != nil || !ok || !want[netipPort{ip: in4.Addr, port: in4.Port}] {
			continue
		}
		if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, sipRcvBuf) == nil {
			n++
		}
	}
	return n
}

type netipPort struct {
	ip   [4]byte
	port int
}
