package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Local keeps objects as files under one directory. Every access goes through os.Root, so even a key that got
// past checkKey could not leave the directory (no "..", no symlink out).
type Local struct {
	dir string
}

// NewLocal returns a store in dir, creating it (0750) if needed.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("storage directory %s: %w", dir, err)
	}
	return &Local{dir: dir}, nil
}

// Dir is the store's directory.
func (l *Local) Dir() string { return l.dir }

// Kind implements Store.
func (l *Local) Kind() string { return "local" }

// Put writes to a temporary file beside the target and renames it into place, so a reader never sees half an
// object and a failed write leaves nothing behind.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer root.Close()
	if err := mkdirAllIn(root, path.Dir(key)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := key + ".part"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, key)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// mkdirAllIn creates dir and its parents inside root.
func mkdirAllIn(root *os.Root, dir string) error {
	if dir == "." || dir == "/" {
		return nil
	}
	if err := root.Mkdir(dir, 0o750); err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirAllIn(root, path.Dir(dir)); err != nil {
		return err
	}
	if err := root.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return f, nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	defer root.Close()
	if err := root.Remove(filepath.FromSlash(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// ctxReader stops a copy when ctx ends (a client that went away mid-upload).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
