// Package blobtest gives tests a real S3 server: gofakes3 (an S3 implementation in Go) served over a loopback
// HTTP listener, spoken to by minio-go exactly as a MinIO or OSS endpoint would be. The MinIO server itself is
// not installable on the build machines (no package in the registries they reach), so the server runs in the
// test's process; the client, the wire protocol and the signatures are the real ones.
package blobtest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"hotline/ticketing/blob"
)

// S3 starts the server and returns a store on a fresh bucket; server and client connections close with the test.
func S3(t testing.TB) *blob.S3 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gofakes3.New(s3mem.New()).Server(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(func() { tr.CloseIdleConnections(); _ = srv.Close(); <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := blob.NewS3(ctx, blob.S3Config{Endpoint: ln.Addr().String(), Bucket: "hotline-test", AccessKey: "test",
		SecretKey: "test-secret", Region: "us-east-1", PathStyle: true, CreateBucket: true, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
