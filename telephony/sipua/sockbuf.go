package sipua

import "net"

// sipRcvBuf is the receive buffer asked for on each SIP UDP listener. The kernel's default (net.core.rmem_default,
// 208 KiB: about a hundred SIP datagrams as the kernel counts their memory) overflowed at 1,500 calls/s whenever
// the reading goroutine waited a few tens of milliseconds to run: 16,737 INVITEs, ACKs and BYEs dropped in a 10 s
// step, each one retransmitted by the peer after T1. A large buffer absorbs bursts; it is the door (door.go) that
// keeps datagrams from waiting in it long enough to be retransmitted. The kernel caps the request at
// net.core.rmem_max: 4 MiB on the machines the figures come from, 208 KiB on a stock kernel (hotline warns at start;
// `sysctl -w net.core.rmem_max=4194304`).
const sipRcvBuf = 4 << 20

// listenUDP opens a SIP UDP listener with its receive buffer raised to rcvbuf bytes.
func listenUDP(addr string, rcvbuf int) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadBuffer(rcvbuf); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
