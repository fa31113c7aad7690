package sipua

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
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

// TestGrantedReadBuffer: what the listener reports as granted is what the kernel gave — the request itself while it
// is under net.core.rmem_max, the cap above it — so the start-up warning fires exactly when the buffer is short.
func TestGrantedReadBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the kernel's SO_RCVBUF accounting is Linux's")
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ask := range []int{max / 2, max * 4} {
		c, err := listenUDP("127.0.0.1:0", ask)
		if err != nil {
			t.Fatal(err)
		}
		want := min(ask, max)
		if got := grantedReadBuffer(c); got != want {
			t.Errorf("asked %d with rmem_max %d: granted %d, want %d", ask, max, got, want)
		}
		c.Close()
	}
}
