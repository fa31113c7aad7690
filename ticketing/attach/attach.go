// Package attach keeps the attachments (附件) of tickets and households (入户核实照片): photos and documents in the
// blob store, their rows in PostgreSQL. An upload's type is decided by sniffing its bytes against an allow-list,
// never by its name or the client's Content-Type; an image gets a JPEG thumbnail; who may read a file is decided
// by who may read its ticket (ticketing.Service.MayRead) or household (monitoring's scope), and every upload to a
// ticket is an event of the ticket, written in the transaction that stores its row.
//
// The bytes go to the store before the row is written: a failed transaction deletes them again, and a process
// that dies in between leaves an object no row names (never served: keys are not guessable and files are only
// found through their row).
package attach

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders of the image types the allow-list accepts
	"image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/disintegration/imaging"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "golang.org/x/image/webp"

	"hotline/ticketing/blob"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/org"
)

// ErrTooLarge: the file is over the size limit.
var ErrTooLarge = errors.New("file too large")

// ErrFileType: the file's content is not of an accepted type.
var ErrFileType = errors.New("file type not accepted")

// Types are the accepted content types as sniffed: photos, PDF and Office Open XML documents.
var Types = []string{"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", typeDocx, typeXlsx}

const (
	typeDocx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	typeXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// DefaultMaxBytes is the default size limit of one file (a phone's photo is 3–8 MB).
const DefaultMaxBytes = 10 << 20

// maxPixels refuses images whose decoding would take more memory than a photo needs (a small file can declare a
// huge canvas): 50 megapixels is above any phone camera.
const maxPixels = 50_000_000

// thumbSize bounds a thumbnail's longer side.
const thumbSize = 320

// Tickets is what attach asks the ticket service: may the actor see this ticket (errors are ErrForbidden or
// ErrNotFound), and record an event on it in the caller's transaction.
type Tickets interface {
	MayRead(ctx context.Context, a org.Actor, id org.TicketID) error
}

// Households is monitoring's authorization, as attach asks it.
type Households interface {
	AuthorizeID(ctx context.Context, db org.DB, a org.Actor, act monitoring.Access, id org.HouseholdID) error
}

// Options builds a Service.
type Options struct {
	DB         *pgxpool.Pool
	Store      blob.Store
	Tickets    Tickets    // nil: ticket attachments refused
	Households Households // nil: household attachments refused
	MaxBytes   int64      // default DefaultMaxBytes
	Log        *slog.Logger
	Now        func() time.Time
}

// Service stores and serves attachments.
type Service struct {
	o Options
}

// New returns a Service.
func New(o Options) *Service {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

// MaxBytes is the size limit of one file.
func (s *Service) MaxBytes() int64 { return s.o.MaxBytes }

// Attachment is one stored file.
type Attachment struct {
	ID          int64            `json:"id"`
	TicketID    *org.TicketID    `json:"ticket_id,omitempty"`
	HouseholdID *org.HouseholdID `json:"household_id,omitempty"`
	ContactID   *int64           `json:"contact_id,omitempty"`
	Filename    string           `json:"filename"`
	ContentType string           `json:"content_type"`
	Bytes       int64            `json:"bytes"`
	SHA256      string           `json:"sha256"`
	Width       *int             `json:"width,omitempty"`
	Height      *int             `json:"height,omitempty"`
	HasThumb    bool             `json:"has_thumbnail"`
	Uploader    string           `json:"uploader"`
	CreatedAt   time.Time        `json:"created_at"`
	key, thumb  string
}

// Target is what a file is attached to: a ticket, or a household (optionally one of its visits).
type Target struct {
	TicketID    org.TicketID
	HouseholdID org.HouseholdID
	ContactID   int64 // a household contact (入户走访) of that household; 0: none
}

// uploaders may attach files to a ticket they can read: everyone who works tickets; campaign managers only read.
var uploaders = []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleStaff, org.RoleHead, org.RoleSupervisor, org.RoleAdmin}

// Authorize answers "may this actor upload to / read from this target": the one question every way in asks.
func (s *Service) Authorize(ctx context.Context, a org.Actor, upload bool, t Target) error {
	switch {
	case t.TicketID != 0 && t.HouseholdID == 0:
		if s.o.Tickets == nil {
			return fmt.Errorf("ticket attachments: %w", org.ErrForbidden)
		}
		if err := s.o.Tickets.MayRead(ctx, a, t.TicketID); err != nil {
			return err
		}
		if upload && !slices.Contains(uploaders, a.Role) {
			return fmt.Errorf("attach to ticket %d: %w: role %s", t.TicketID, org.ErrForbidden, a.Role)
		}
		return nil
	case t.HouseholdID != 0 && t.TicketID == 0:
		if s.o.Households == nil {
			return fmt.Errorf("household attachments: %w", org.ErrForbidden)
		}
		act := monitoring.AccessRead
		if upload {
			act = monitoring.AccessContact // a photo of a visit is part of the household's contacts
		}
		return s.o.Households.AuthorizeID(ctx, s.o.DB, a, act, t.HouseholdID)
	}
	return org.Invalid("target", "a ticket or a household")
}

// Upload stores a file read from r for the target. The name is kept for display and download only.
func (s *Service) Upload(ctx context.Context, a org.Actor, t Target, filename string, r io.Reader) (Attachment, error) {
	if err := s.Authorize(ctx, a, true, t); err != nil {
		return Attachment{}, err
	}
	st, err := s.Stage(ctx, filename, r, false)
	if err != nil {
		return Attachment{}, err
	}
	at := st.at
	at.TicketID, at.HouseholdID, at.ContactID, at.Uploader = nz(t.TicketID), nz(t.HouseholdID), nz(t.ContactID), a.Name
	err = pgx.BeginFunc(ctx, s.o.DB, func(tx pgx.Tx) error { return s.insertTx(ctx, tx, a, &at) })
	if err != nil {
		s.remove(st.keys)
		return Attachment{}, err
	}
	return at, nil
}

// Staged is a file whose bytes (and thumbnail) are in the store but whose row is not written yet: what a caller
// that creates the ticket itself holds until its transaction (NewTicketTx) commits, or Discard.
type Staged struct {
	at   Attachment
	keys []string
}

// ContentType is the staged file's sniffed type.
func (st Staged) ContentType() string { return st.at.ContentType }

// Stage checks a file (size, sniffed type; imagesOnly: photos only) and puts its bytes and thumbnail in the
// store. Nothing names it until a row is written; the caller must Discard it if that does not happen.
func (s *Service) Stage(ctx context.Context, filename string, r io.Reader, imagesOnly bool) (Staged, error) {
	name, err := cleanName(filename)
	if err != nil {
		return Staged{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, s.o.MaxBytes+1))
	if err != nil {
		return Staged{}, fmt.Errorf("read upload: %w", err)
	}
	if int64(len(data)) > s.o.MaxBytes {
		return Staged{}, fmt.Errorf("%w: at most %d bytes", ErrTooLarge, s.o.MaxBytes)
	}
	if len(data) == 0 {
		return Staged{}, org.Invalid("file", "empty")
	}
	ctype, err := Sniff(data)
	if err != nil {
		return Staged{}, err
	}
	if imagesOnly && !strings.HasPrefix(ctype, "image/") {
		return Staged{}, fmt.Errorf("%w: the content is %s; accepted: JPEG, PNG, GIF, WebP photos", ErrFileType, ctype)
	}
	at := Attachment{Filename: name, ContentType: ctype, Bytes: int64(len(data))}
	sum := sha256.Sum256(data)
	at.SHA256 = hex.EncodeToString(sum[:])
	var thumb []byte
	if strings.HasPrefix(ctype, "image/") {
		var w, h int
		if thumb, w, h, err = thumbnail(data); err != nil {
			return Staged{}, err
		}
		at.Width, at.Height = &w, &h
	}

	at.key = blob.NewKey("attachments", s.o.Now())
	if err := s.o.Store.Put(ctx, at.key, bytes.NewReader(data), int64(len(data)), ctype); err != nil {
		return Staged{}, fmt.Errorf("store attachment: %w", err)
	}
	st := Staged{at: at, keys: []string{at.key}}
	if thumb != nil {
		st.at.thumb = at.key + ".thumb.jpg"
		if err := s.o.Store.Put(ctx, st.at.thumb, bytes.NewReader(thumb), int64(len(thumb)), "image/jpeg"); err != nil {
			s.remove(st.keys)
			return Staged{}, fmt.Errorf("store thumbnail: %w", err)
		}
		st.keys = append(st.keys, st.at.thumb)
		st.at.HasThumb = true
	}
	return st, nil
}

// Discard deletes the bytes of staged files whose rows were not written.
func (s *Service) Discard(staged []Staged) {
	for _, st := range staged {
		s.remove(st.keys)
	}
}

// NewTicketTx runs create (which creates a ticket in tx, e.g. ticketing.Service.CreateTx) and writes the staged
// files' rows and attach events on that ticket in the same transaction, so the ticket and its photos commit
// together or not at all; on failure the staged bytes are deleted. No separate upload authorization: files
// attached to a ticket while it is being created are part of the creation, which create authorizes (the public
// form's photos, sent by nobody who could read the ticket afterwards).
func (s *Service) NewTicketTx(ctx context.Context, a org.Actor, staged []Staged,
	create func(tx pgx.Tx) (org.TicketID, error)) ([]Attachment, error) {
	var out []Attachment
	err := pgx.BeginFunc(ctx, s.o.DB, func(tx pgx.Tx) error {
		id, err := create(tx)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, st := range staged {
			at := st.at
			at.TicketID, at.Uploader = &id, a.Name
			if err := s.insertTx(ctx, tx, a, &at); err != nil {
				return err
			}
			out = append(out, at)
		}
		return nil
	})
	if err != nil {
		s.Discard(staged)
		return nil, err
	}
	return out, nil
}

// remove deletes objects whose row was not written; a failure only leaves an unreachable object behind.
func (s *Service) remove(keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range keys {
		if err := s.o.Store.Delete(ctx, k); err != nil {
			s.o.Log.Warn("attachment object left behind", "key", k, "err", err)
		}
	}
}

func (s *Service) insertTx(ctx context.Context, tx pgx.Tx, a org.Actor, at *Attachment) error {
	if at.ContactID != nil {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM household_contacts WHERE id = $1 AND household_id = $2)`,
			*at.ContactID, at.HouseholdID).Scan(&ok); err != nil {
			return fmt.Errorf("attachment contact: %w", err)
		}
		if !ok {
			return org.Invalid("contact_id", "not a contact of this household")
		}
	}
	var status string
	if at.TicketID != nil {
		// FOR SHARE: the event is written against the ticket as it is; actions wait for the upload, not the
		// other way round for long (the bytes are already stored).
		err := tx.QueryRow(ctx, `SELECT status FROM tickets WHERE id = $1 FOR SHARE`, int64(*at.TicketID)).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("ticket %d: %w", *at.TicketID, org.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("attach to ticket %d: %w", *at.TicketID, err)
		}
	}
	var thumb *string
	if at.thumb != "" {
		thumb = &at.thumb
	}
	err := tx.QueryRow(ctx, `INSERT INTO attachments (ticket_id, household_id, contact_id, storage_key, thumb_key, filename,
			content_type, bytes, sha256, width, height, uploaded_by, uploader_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id, created_at`,
		at.TicketID, at.HouseholdID, at.ContactID, at.key, thumb, at.Filename, at.ContentType, at.Bytes, at.SHA256,
		at.Width, at.Height, nz(a.UserID), a.Name).Scan(&at.ID, &at.CreatedAt)
	if err != nil {
		return fmt.Errorf("store attachment row: %w", err)
	}
	if at.TicketID != nil {
		data := map[string]any{"attachment_id": at.ID, "filename": at.Filename, "content_type": at.ContentType, "bytes": at.Bytes}
		if _, err := tx.Exec(ctx, `INSERT INTO ticket_events (ticket_id, actor_id, actor_name, actor_role, action, from_status,
				to_status, note, data) VALUES ($1, $2, $3, $4, 'attach', $5, $5, '', $6)`,
			int64(*at.TicketID), nz(a.UserID), a.Name, string(a.Role), status, data); err != nil {
			return fmt.Errorf("attach event of ticket %d: %w", *at.TicketID, err)
		}
	}
	return nil
}

const columns = `id, ticket_id, household_id, contact_id, storage_key, coalesce(thumb_key, ''), filename, content_type, bytes,
	sha256, width, height, uploader_name, created_at`

func scan(row pgx.CollectableRow) (Attachment, error) {
	var at Attachment
	err := row.Scan(&at.ID, &at.TicketID, &at.HouseholdID, &at.ContactID, &at.key, &at.thumb, &at.Filename, &at.ContentType,
		&at.Bytes, &at.SHA256, &at.Width, &at.Height, &at.Uploader, &at.CreatedAt)
	at.HasThumb = at.thumb != ""
	return at, err
}

// List returns the target's attachments, oldest first, if the actor may read the target.
func (s *Service) List(ctx context.Context, a org.Actor, t Target) ([]Attachment, error) {
	if err := s.Authorize(ctx, a, false, t); err != nil {
		return nil, err
	}
	q := `SELECT ` + columns + ` FROM attachments WHERE ticket_id = $1 ORDER BY id`
	id := int64(t.TicketID)
	if t.HouseholdID != 0 {
		q, id = `SELECT `+columns+` FROM attachments WHERE household_id = $1 ORDER BY id`, int64(t.HouseholdID)
	}
	rows, err := s.o.DB.Query(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	ats, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	return ats, nil
}

// Open returns an attachment (or its thumbnail) and its bytes, if the actor may read what it is attached to. An
// attachment outside the actor's reach is ErrForbidden, whatever exists.
func (s *Service) Open(ctx context.Context, a org.Actor, id int64, thumb bool) (Attachment, blob.Object, error) {
	rows, err := s.o.DB.Query(ctx, `SELECT `+columns+` FROM attachments WHERE id = $1`, id)
	if err != nil {
		return Attachment{}, nil, fmt.Errorf("attachment %d: %w", id, err)
	}
	at, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Attachment{}, nil, fmt.Errorf("attachment %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Attachment{}, nil, fmt.Errorf("attachment %d: %w", id, err)
	}
	var t Target
	if at.TicketID != nil {
		t.TicketID = *at.TicketID
	} else if at.HouseholdID != nil {
		t.HouseholdID = *at.HouseholdID
	}
	if err := s.Authorize(ctx, a, false, t); err != nil {
		return Attachment{}, nil, fmt.Errorf("attachment %d: %w", id, err)
	}
	key := at.key
	if thumb {
		if at.thumb == "" {
			return Attachment{}, nil, fmt.Errorf("thumbnail of attachment %d: %w", id, org.ErrNotFound)
		}
		key = at.thumb
	}
	o, err := s.o.Store.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return Attachment{}, nil, fmt.Errorf("attachment %d: object missing: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Attachment{}, nil, fmt.Errorf("attachment %d: %w", id, err)
	}
	return at, o, nil
}

// Sniff decides a file's type from its first bytes (http.DetectContentType, the WHATWG algorithm) and accepts
// only the allow-list; a ZIP is an Office document only if its parts say so.
func Sniff(data []byte) (string, error) {
	ct, _, _ := strings.Cut(http.DetectContentType(data), ";")
	if ct == "application/zip" {
		if t := officeType(data); t != "" {
			return t, nil
		}
	}
	if !slices.Contains(Types, ct) {
		return "", fmt.Errorf("%w: the content is %s; accepted: JPEG, PNG, GIF, WebP photos, PDF, Word (.docx) and Excel (.xlsx)", ErrFileType, ct)
	}
	return ct, nil
}

// officeType recognises a .docx or .xlsx by its parts ([Content_Types].xml and the main part).
func officeType(data []byte) string {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return ""
	}
	var types, word, xl bool
	for _, f := range zr.File {
		switch {
		case f.Name == "[Content_Types].xml":
			types = true
		case f.Name == "word/document.xml":
			word = true
		case f.Name == "xl/workbook.xml":
			xl = true
		}
	}
	switch {
	case types && word:
		return typeDocx
	case types && xl:
		return typeXlsx
	}
	return ""
}

// thumbnail decodes an image (after checking its declared size) and returns a JPEG of at most thumbSize pixels
// on its longer side, with the image's width and height.
func thumbnail(data []byte) ([]byte, int, int, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: not a readable image: %v", ErrFileType, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return nil, 0, 0, fmt.Errorf("%w: %d×%d pixels", ErrTooLarge, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: not a readable image: %v", ErrFileType, err)
	}
	th := imaging.Fit(img, thumbSize, thumbSize, imaging.Lanczos)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, th, &jpeg.Options{Quality: 80}); err != nil {
		return nil, 0, 0, fmt.Errorf("thumbnail: %w", err)
	}
	return buf.Bytes(), cfg.Width, cfg.Height, nil
}

// cleanName keeps the last element of a client's file name, for display and the download name only.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if name == "." || name == "/" || name == "" {
		return "", org.Invalid("filename", "required")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", org.Invalid("filename", "control characters or invalid UTF-8")
	}
	if utf8.RuneCountInString(name) > 200 {
		return "", org.Invalid("filename", "at most 200 characters")
	}
	return name, nil
}

func nz[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}
