package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// FileStore keeps fetched attachments. A directory (DirStore) serves one machine; object storage can stand behind
// the same method for clusters.
type FileStore interface {
	// Put stores r under key and returns the bytes written.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
}

// DirStore stores files under a directory, key as a relative path.
type DirStore struct{ Dir string }

// Put writes the file through a temporary name, so a crash never leaves half a file under key.
func (d DirStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	p := filepath.Join(d.Dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	return n, nil
}

// maxAttachment is the largest attachment fetched.
const maxAttachment = 20 << 20

// errAttachmentRefused: fetching again cannot help (too large, not on the platform's host, gone).
var errAttachmentRefused = errors.New("attachment refused")

// addAttachments lists an order's attachments for the fetcher, in the transaction that took the order.
func (s *Service) addAttachments(ctx context.Context, tx pgx.Tx, platform, orderID string, ticket org.TicketID, as []Attachment) error {
	for _, a := range as {
		if _, err := tx.Exec(ctx, `INSERT INTO exchange_attachments (platform, order_id, ticket_id, name, url, next_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, platform, orderID, int64(ticket), a.Name, a.URL, s.now()); err != nil {
			return fmt.Errorf("exchange: attachment of %s: %w", orderID, err)
		}
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._\p{Han}-]+`)

// fetchOne fetches one due attachment into the file store; false when none is due.
func (s *Service) fetchOne(ctx context.Context) (bool, error) {
	if s.cfg.Files == nil {
		return false, nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("exchange: fetch: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var id int64
	var platform, orderID, name, rawURL string
	var attempts int
	err = tx.QueryRow(ctx, `SELECT id, platform, order_id, name, url, attempts FROM exchange_attachments
		WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, s.now()).
		Scan(&id, &platform, &orderID, &name, &rawURL, &attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("exchange: fetch: pick: %w", err)
	}
	// Every part of the key is prefixed, so no order id or name (".." included) can leave the platform's directory.
	key := platform + "/order-" + unsafeName.ReplaceAllString(orderID, "_") + "/" + strconv.FormatInt(id, 10) + "-" + unsafeName.ReplaceAllString(name, "_")
	size, sum, ferr := s.fetch(ctx, platform, rawURL, key)
	attempts++
	switch {
	case ferr == nil:
		_, err = tx.Exec(ctx, `UPDATE exchange_attachments SET state = 'stored', storage_key = $2, size = $3, sha256 = $4,
			attempts = $5, last_error = '' WHERE id = $1`, id, key, size, sum, attempts)
	case errors.Is(ferr, errAttachmentRefused) || attempts >= s.cfg.MaxAttempts:
		_, err = tx.Exec(ctx, `UPDATE exchange_attachments SET state = 'failed', attempts = $2, last_error = $3 WHERE id = $1`,
			id, attempts, truncate(ferr.Error(), 1000))
	default:
		_, err = tx.Exec(ctx, `UPDATE exchange_attachments SET attempts = $2, last_error = $3, next_at = $4 WHERE id = $1`,
			id, attempts, truncate(ferr.Error(), 1000), s.now().Add(s.backoff(id, attempts)))
	}
	if err != nil {
		return false, fmt.Errorf("exchange: attachment %d: %w", id, err)
	}
	return true, tx.Commit(ctx)
}

// fetch downloads an attachment from the platform's own host (an order cannot make us fetch from elsewhere) and
// stores it, returning its size and SHA-256.
func (s *Service) fetch(ctx context.Context, name, rawURL, key string) (int64, string, error) {
	p, ok := s.platforms[name]
	if !ok {
		return 0, "", fmt.Errorf("platform %q is not configured", name)
	}
	u, err := url.Parse(rawURL)
	base, berr := url.Parse(p.URL)
	if err != nil || berr != nil || u.Host != base.Host || u.Scheme != base.Scheme {
		return 0, "", fmt.Errorf("%w: %q is not on the platform's host %s", errAttachmentRefused, rawURL, base.Host)
	}
	resp, err := s.do(ctx, p, http.MethodGet, u.RequestURI(), nil, "")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return 0, "", fmt.Errorf("%w: platform answered %d", errAttachmentRefused, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return 0, "", fmt.Errorf("platform answered %d", resp.StatusCode)
	case resp.ContentLength > maxAttachment:
		return 0, "", fmt.Errorf("%w: %d bytes, more than %d", errAttachmentRefused, resp.ContentLength, maxAttachment)
	}
	h := sha256.New()
	lr := &io.LimitedReader{R: resp.Body, N: maxAttachment + 1}
	n, err := s.cfg.Files.Put(ctx, key, io.TeeReader(lr, h))
	if err != nil {
		return 0, "", fmt.Errorf("store attachment: %w", err)
	}
	if n > maxAttachment {
		return 0, "", fmt.Errorf("%w: larger than %d bytes", errAttachmentRefused, maxAttachment)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// AttachmentInfo is an attachment as the ticket API shows it.
type AttachmentInfo struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"` // pending, stored, failed
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

func (s *Service) attachments(ctx context.Context, id org.TicketID) ([]AttachmentInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, state, size, sha256 FROM exchange_attachments WHERE ticket_id = $1 ORDER BY id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("exchange: attachments of ticket %d: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttachmentInfo, error) {
		var a AttachmentInfo
		return a, r.Scan(&a.ID, &a.Name, &a.State, &a.Size, &a.SHA256)
	})
}
