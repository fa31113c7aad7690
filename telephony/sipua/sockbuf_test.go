//go:build linux

package sipua

import (
	"net"
	"syscall"
	"testing"
)

// TestUDPListenerBufferRaised: the receive buffer of a UDP socket bound to a listener address is raised above
// the system default (a full buffer drops SIP datagrams, which the peer then retransmits), and other sockets are
// left alone.
func TestUDPListenerBufferRaised(t *testing.T) {
	rcvbuf := func(c *net.UDPConn) int {
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		raw.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ours, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before, otherBefore := rcvbuf(ours), rcvbuf(other)
	if n := raiseUDPBuffers([]string{ours.LocalAddr().String()}); n != 1 {
		t.Fatalf("raised %d sockets, want 1", n)
	}
	if after := rcvbuf(ours); after <= before {
		t.Errorf("receive buffer %d after raising, %d before", after, before)
	}
	if rcvbuf(other) != otherBefore {
		t.Error("a socket on another address was changed")
	}
}
