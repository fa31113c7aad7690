// Package kb is the knowledge base (知识库): policy answers (雨露计划, 小额信贷, 防返贫监测 criteria …) that the
// provincial divisions maintain and agents search while on a call, each with an owner unit and a version
// history; and the reply templates (答复模板) clerks start a reply from, per category, with placeholders filled
// from the ticket.
//
// Every change of an article is one transaction that bumps its version (optimistic: the editor names the
// version they saw) and appends the new text to kb_article_versions, which the database keeps append-only; a
// ticket that cites an article stores (id, version), so the words the agent read out can always be shown.
package kb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// Status of an article.
type Status string

const (
	StatusPublished Status = "published"
	StatusRetired   Status = "retired" // kept for citations, no longer found by agents
)

// Article is the current version of a knowledge-base article.
type Article struct {
	ID          int64      `json:"id"`
	Title       string     `json:"title"`
	Body        string     `json:"body"`
	Tags        []string   `json:"tags"`
	OwnerUnitID org.UnitID `json:"owner_unit_id"`
	OwnerUnit   string     `json:"owner_unit"`
	Status      Status     `json:"status"`
	Version     int        `json:"version"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	UpdaterName string     `json:"updater_name"`
	Note        string     `json:"note,omitempty"` // versions: what changed
	Snippet     string     `json:"snippet,omitempty"`
}

// Draft is what an editor writes: a new article, or a new version of one.
type Draft struct {
	Version     int        `json:"version"` // update: the version the editor saw
	Title       string     `json:"title"`
	Body        string     `json:"body"`
	Tags        []string   `json:"tags"`
	OwnerUnitID org.UnitID `json:"owner_unit_id"` // create: admins name the owner; others own what they write
	Status      Status     `json:"status"`        // update: "" keeps it
	Note        string     `json:"note"`
}

// Access is what an actor wants to do with articles.
type Access string

const (
	AccessRead  Access = "read"
	AccessWrite Access = "write"
)

// readers: everyone who answers or works a matter reads the knowledge base.
var readers = []org.Role{org.RoleAgent, org.RoleDispatcher, org.RoleStaff, org.RoleHead, org.RoleSupervisor,
	org.RoleCampaignManager, org.RoleAdmin}

// Service is the knowledge base and the reply templates.
type Service struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// New returns a Service; now is the clock (nil: time.Now).
func New(db *pgxpool.Pool, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, now: now}
}

// Authorize answers "may this actor do this to articles of this owner unit" (owner 0: any article, for reads
// and for creating one of the actor's own): everyone who works matters reads; the staff and heads of a
// provincial division write their division's articles; admins write all.
func (s *Service) Authorize(ctx context.Context, a org.Actor, act Access, owner org.UnitID) error {
	return authorize(ctx, s.db, a, act, owner)
}

func authorize(ctx context.Context, db org.DB, a org.Actor, act Access, owner org.UnitID) error {
	if act == AccessRead {
		if slices.Contains(readers, a.Role) {
			return nil
		}
		return fmt.Errorf("knowledge base: %w: role %s", org.ErrForbidden, a.Role)
	}
	if a.Role == org.RoleAdmin {
		return nil
	}
	if a.Role != org.RoleStaff && a.Role != org.RoleHead || a.UnitID == 0 {
		return fmt.Errorf("edit knowledge base: %w: role %s", org.ErrForbidden, a.Role)
	}
	var kind string
	if err := db.QueryRow(ctx, `SELECT kind FROM units WHERE id = $1`, int64(a.UnitID)).Scan(&kind); err != nil {
		return fmt.Errorf("edit knowledge base: unit of actor: %w", err)
	}
	if kind != "division" {
		return fmt.Errorf("edit knowledge base: %w: the provincial divisions maintain it", org.ErrForbidden)
	}
	if owner != 0 && owner != a.UnitID {
		return fmt.Errorf("edit knowledge base: %w: another division's article", org.ErrForbidden)
	}
	return nil
}

func (d *Draft) check(create bool) error {
	v := &org.ValidationError{}
	d.Title, d.Body = strings.TrimSpace(d.Title), strings.TrimSpace(d.Body)
	if d.Title == "" || utf8.RuneCountInString(d.Title) > 200 {
		v.Add("title", "1 to 200 characters")
	}
	if d.Body == "" || utf8.RuneCountInString(d.Body) > 20000 {
		v.Add("body", "1 to 20000 characters")
	}
	tags := []string{}
	for _, t := range d.Tags {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if len(tags) > 20 {
		v.Add("tags", "at most 20")
	}
	d.Tags = tags
	if d.Status != "" && d.Status != StatusPublished && d.Status != StatusRetired {
		v.Add("status", "published or retired")
	}
	if !create && d.Version <= 0 {
		v.Add("version", "required: the version you edited")
	}
	if utf8.RuneCountInString(d.Note) > 500 {
		v.Add("note", "at most 500 characters")
	}
	return v.Err()
}

// Create publishes a new article (version 1).
func (s *Service) Create(ctx context.Context, a org.Actor, d Draft) (Article, error) {
	if d.OwnerUnitID == 0 || a.Role != org.RoleAdmin {
		if d.OwnerUnitID != 0 && d.OwnerUnitID != a.UnitID {
			return Article{}, fmt.Errorf("create article: %w: only admins name another owner", org.ErrForbidden)
		}
		d.OwnerUnitID = a.UnitID
	}
	if err := s.Authorize(ctx, a, AccessWrite, d.OwnerUnitID); err != nil {
		return Article{}, err
	}
	if err := d.check(true); err != nil {
		return Article{}, err
	}
	if d.Status == "" {
		d.Status = StatusPublished
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO kb_articles (title, body, tags, owner_unit_id, status, words, created_at, updated_at,
				updated_by, updater_name)
			VALUES ($1, $2, $3, $4, $5, search_vector($1 || E'\n' || array_to_string($3::text[], ' ') || E'\n' || $2), $6, $6, $7, $8)
			RETURNING id`, d.Title, d.Body, d.Tags, int64(d.OwnerUnitID), string(d.Status), s.now(), nz(a.UserID), a.Name).Scan(&id)
		if err != nil {
			if org.SQLState(err) == "23503" {
				return org.Invalid("owner_unit_id", "no such unit")
			}
			return fmt.Errorf("create article: %w", err)
		}
		return appendVersion(ctx, tx, id, d.Note)
	})
	if err != nil {
		return Article{}, err
	}
	return s.Get(ctx, a, id)
}

// appendVersion copies the article's current row into its history.
func appendVersion(ctx context.Context, tx pgx.Tx, id int64, note string) error {
	_, err := tx.Exec(ctx, `INSERT INTO kb_article_versions (article_id, version, title, body, tags, owner_unit_id, status, note,
			at, updated_by, updater_name)
		SELECT id, version, title, body, tags, owner_unit_id, status, $2, updated_at, updated_by, updater_name
		FROM kb_articles WHERE id = $1`, id, strings.TrimSpace(note))
	if err != nil {
		return fmt.Errorf("article %d history: %w", id, err)
	}
	return nil
}

// Update writes a new version of an article if it is still at the version the editor saw (else ErrConflict).
func (s *Service) Update(ctx context.Context, a org.Actor, id int64, d Draft) (Article, error) {
	if err := s.Authorize(ctx, a, AccessWrite, 0); err != nil { // the role first; the owner in the transaction
		return Article{}, err
	}
	if err := d.check(false); err != nil {
		return Article{}, err
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var owner int64
		var version int
		err := tx.QueryRow(ctx, `SELECT owner_unit_id, version FROM kb_articles WHERE id = $1 FOR UPDATE`, id).Scan(&owner, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("article %d: %w", id, org.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("article %d: %w", id, err)
		}
		if err := authorize(ctx, tx, a, AccessWrite, org.UnitID(owner)); err != nil {
			return err
		}
		if version != d.Version {
			return fmt.Errorf("article %d is at version %d, not %d: %w", id, version, d.Version, org.ErrConflict)
		}
		_, err = tx.Exec(ctx, `UPDATE kb_articles SET title = $2, body = $3, tags = $4, status = coalesce(nullif($5, ''), status),
				words = search_vector($2 || E'\n' || array_to_string($4::text[], ' ') || E'\n' || $3),
				version = version + 1, updated_at = $6, updated_by = $7, updater_name = $8
			WHERE id = $1`, id, d.Title, d.Body, d.Tags, string(d.Status), s.now(), nz(a.UserID), a.Name)
		if err != nil {
			return fmt.Errorf("update article %d: %w", id, err)
		}
		return appendVersion(ctx, tx, id, d.Note)
	})
	if err != nil {
		return Article{}, err
	}
	return s.Get(ctx, a, id)
}

const articleColumns = `a.id, a.title, a.body, a.tags, a.owner_unit_id, u.name, a.status, a.version, a.created_at, a.updated_at,
	a.updater_name`

func scanArticle(row pgx.CollectableRow) (Article, error) {
	var ar Article
	err := row.Scan(&ar.ID, &ar.Title, &ar.Body, &ar.Tags, &ar.OwnerUnitID, &ar.OwnerUnit, &ar.Status, &ar.Version,
		&ar.CreatedAt, &ar.UpdatedAt, &ar.UpdaterName)
	return ar, err
}

// Get returns an article's current version.
func (s *Service) Get(ctx context.Context, a org.Actor, id int64) (Article, error) {
	if err := s.Authorize(ctx, a, AccessRead, 0); err != nil {
		return Article{}, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+articleColumns+` FROM kb_articles a JOIN units u ON u.id = a.owner_unit_id
		WHERE a.id = $1`, id)
	if err != nil {
		return Article{}, fmt.Errorf("article %d: %w", id, err)
	}
	ar, err := pgx.CollectExactlyOneRow(rows, scanArticle)
	if errors.Is(err, pgx.ErrNoRows) {
		return Article{}, fmt.Errorf("article %d: %w", id, org.ErrNotFound)
	}
	if err != nil {
		return Article{}, fmt.Errorf("article %d: %w", id, err)
	}
	return ar, nil
}

// Versions returns an article's history, newest first; version v alone when v > 0.
func (s *Service) Versions(ctx context.Context, a org.Actor, id int64, v int) ([]Article, error) {
	if err := s.Authorize(ctx, a, AccessRead, 0); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT a.article_id, a.title, a.body, a.tags, a.owner_unit_id, u.name, a.status, a.version,
			a.at, a.at, a.updater_name, a.note
		FROM kb_article_versions a JOIN units u ON u.id = a.owner_unit_id
		WHERE a.article_id = $1 AND ($2 = 0 OR a.version = $2) ORDER BY a.version DESC`, id, v)
	if err != nil {
		return nil, fmt.Errorf("versions of article %d: %w", id, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Article, error) {
		var ar Article
		err := row.Scan(&ar.ID, &ar.Title, &ar.Body, &ar.Tags, &ar.OwnerUnitID, &ar.OwnerUnit, &ar.Status, &ar.Version,
			&ar.CreatedAt, &ar.UpdatedAt, &ar.UpdaterName, &ar.Note)
		return ar, err
	})
	if err != nil {
		return nil, fmt.Errorf("versions of article %d: %w", id, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("article %d version %d: %w", id, v, org.ErrNotFound)
	}
	return vs, nil
}

// Search finds published articles by words in title, tags and body (the same CJK grams as the ticket search),
// best match first; an empty query lists the newest. Retired articles are found only with retired=true.
func (s *Service) Search(ctx context.Context, a org.Actor, text string, retired bool, limit int) ([]Article, error) {
	if err := s.Authorize(ctx, a, AccessRead, 0); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := ticketing.SearchQuery(text)
	rows, err := s.db.Query(ctx, `SELECT `+articleColumns+`, left(a.body, 120) FROM kb_articles a JOIN units u ON u.id = a.owner_unit_id
		WHERE ($1 = '' OR a.words @@ $1::tsquery) AND (a.status = 'published' OR $2)
		ORDER BY CASE WHEN $1 = '' THEN 0 ELSE ts_rank(a.words, $1::tsquery) END DESC, a.updated_at DESC LIMIT $3`, q, retired, limit)
	if err != nil {
		return nil, fmt.Errorf("search articles: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Article, error) {
		var ar Article
		err := row.Scan(&ar.ID, &ar.Title, &ar.Body, &ar.Tags, &ar.OwnerUnitID, &ar.OwnerUnit, &ar.Status, &ar.Version,
			&ar.CreatedAt, &ar.UpdatedAt, &ar.UpdaterName, &ar.Snippet)
		ar.Body = "" // a list shows the snippet; the article is one more request
		return ar, err
	})
	if err != nil {
		return nil, fmt.Errorf("search articles: %w", err)
	}
	return out, nil
}

func nz[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}
