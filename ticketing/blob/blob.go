// Package blob stores files (attachments, their thumbnails, call recordings) behind one small interface with two
// implementations: a local directory (the default of `hotline up`, one machine) and S3-compatible object storage
// (MinIO, Ceph RGW, a cloud's OSS) through minio-go, so that in a cluster any process can serve any file.
//
// Keys are never taken from input: the packages that store files generate them (NewKey) and keep them in
// PostgreSQL next to the row that says who may read the file. Both stores still refuse a key that is not of
// the generated shape, so a key cannot name anything outside the store.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// ErrNotFound: no object under the key.
var ErrNotFound = errors.New("blob: not found")

// ErrBadKey: the key is not of the shape the stores accept (see validKey).
var ErrBadKey = errors.New("blob: invalid key")

// Store is where files go. Objects are written once and read many times; Put of an existing key replaces it.
type Store interface {
	// Put stores size bytes read from r under key. size -1: unknown (the S3 store then buffers in parts).
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object for reading and seeking (http.ServeContent answers Range requests from it).
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Kind names the store for logs and readiness ("local", "s3").
	Kind() string
}

// Object is an open stored file.
type Object interface {
	io.ReadSeekCloser
}

// validKey: lower-case segments of letters, digits, '-', '_' and '.', separated by '/', no segment starting
// with a dot (so no "..", no hidden files), at most 200 bytes.
var validKey = regexp.MustCompile(`^[a-z0-9_-][a-z0-9_.-]*(/[a-z0-9_-][a-z0-9_.-]*)*$`)

func checkKey(key string) error {
	if len(key) > 200 || !validKey.MatchString(key) {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	return nil
}

// NewKey returns a fresh key under prefix ("attachments", "recordings"): prefix/yyyy/mm/dd/<128 random bits>,
// dated so that an operator can find and expire old objects by listing a prefix.
func NewKey(prefix string, now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%s/%s/%s", prefix, now.UTC().Format("2006/01/02"), hex.EncodeToString(b[:]))
}
