package sipua

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotline/deploy/testenv"
)

func selfSigned(t *testing.T) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSListener: with a certificate configured, SIP over TLS is served next to UDP.
func TestTLSListener(t *testing.T) {
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	udp, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	srv, err := New(Config{Listeners: []Listener{{Transport: "udp", Addr: "127.0.0.1:" + strconv.Itoa(udp)},
		{Transport: "tls", Addr: "127.0.0.1:" + strconv.Itoa(tlsPort), TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}}},
		DrainTimeout: time.Second}, Deps{DB: db, Redis: rdb, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx, refuseAll{}) }()
	defer func() { cancel(); wg.Wait() }()
	<-srv.Ready()

	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"), sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "127.0.0.1", Port: tlsPort, UriParams: sip.NewParams()})
	req.SetTransport("TLS")
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	res, err := client.Do(rctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS over TLS: %v %v", res, err)
	}
}
