package sipua

import (
	"net"
	"runtime"
	"syscall"
	"testing"
)

// TestUDPListenerBufferRaised: a SIP UDP listener gets a receive buffer above the system default (a full buffer
// drops SIP datagrams, which the peer then retransmits), and on Linux the kernel stamps its datagrams (the door's
// queue delay).
func TestUDPListenerBufferRaised(t *testing.T) {
	sockopt := func(c *net.UDPConn, opt int) int {
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		raw.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	plain, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ours, err := listenUDP("127.0.0.1:0", sipRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if got, def := sockopt(ours, syscall.SO_RCVBUF), sockopt(plain, syscall.SO_RCVBUF); got <= def {
		t.Errorf("receive buffer %d, the default is %d", got, def)
	}
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		if err := enableRxTimestamps(ours); err != nil {
			t.Fatal(err)
		}
		if sockopt(ours, syscall.SO_TIMESTAMPNS) != 1 {
			t.Error("SO_TIMESTAMPNS not set")
		}
	}
}
