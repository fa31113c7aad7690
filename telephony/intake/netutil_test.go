package intake

import (
	"net"
	"strconv"
)

func netListenUDP(port int) (net.PacketConn, error) {
	return net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
}
