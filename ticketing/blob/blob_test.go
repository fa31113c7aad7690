package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"hotline/ticketing/blob"
	"hotline/ticketing/blob/blobtest"
)

func stores(t *testing.T) map[string]blob.Store {
	l, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]blob.Store{"local": l, "s3": blobtest.S3(t)}
}

func TestStores(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := blob.NewKey("attachments", time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
			if !strings.HasPrefix(key, "attachments/2026/12/01/") {
				t.Fatalf("key %q", key)
			}
			if _, err := st.Open(ctx, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("open before put: %v, want ErrNotFound", err)
			}
			data := bytes.Repeat([]byte("入户核实照片"), 5000)
			if err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "image/jpeg"); err != nil {
				t.Fatal(err)
			}
			o, err := st.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			// Seeking is what http.ServeContent needs for Range requests.
			if _, err := o.Seek(6, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o)
			o.Close()
			if err != nil || !bytes.Equal(got, data[6:]) {
				t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(data)-6)
			}
			// A short body is refused and leaves no object.
			short := key + "-short"
			if err := st.Put(ctx, short, bytes.NewReader(data[:10]), 20, "text/plain"); err == nil {
				t.Fatal("short body accepted")
			}
			if _, err := st.Open(ctx, short); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("short body left an object: %v", err)
			}
			for _, bad := range []string{"../etc/passwd", "a/../../b", "/abs", ".hidden", "A/B", "a//b", ""} {
				if err := st.Put(ctx, bad, bytes.NewReader(nil), 0, ""); !errors.Is(err, blob.ErrBadKey) {
					t.Errorf("key %q: %v, want ErrBadKey", bad, err)
				}
				if _, err := st.Open(ctx, bad); !errors.Is(err, blob.ErrBadKey) {
					t.Errorf("open %q: %v, want ErrBadKey", bad, err)
				}
			}
			if err := st.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Open(ctx, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("open after delete: %v", err)
			}
			if err := st.Delete(ctx, key); err != nil {
				t.Fatalf("delete twice: %v", err)
			}
		})
	}
}
