package campaign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// Uploaded prompts live in PostgreSQL (campaign_prompts), already converted to 8 kHz 16-bit mono WAV, so that
// every dialer process can play them: a process whose prompt directory lacks one writes it there from the row
// (MaterializePrompt) before playing it. Built-in prompts are files in the prompt directory.

// PromptInfo describes an uploaded prompt.
type PromptInfo struct {
	Name         string    `json:"name"`
	DurationMS   int       `json:"duration_ms"`
	SHA256       string    `json:"sha256"`
	SourceFormat string    `json:"source_format"` // wav or mp3
	SourceName   string    `json:"source_name"`
	CreatedBy    *int64    `json:"created_by,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Builtin      bool      `json:"builtin"`
}

// NewPrompt is a converted upload.
type NewPrompt struct {
	Name         string // without .wav; lower-case letters, digits, - and _
	WAV          []byte
	Duration     time.Duration
	SourceFormat string
	SourceName   string
}

var promptNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,59}$`)

// PromptFileName checks a prompt's name as given in an upload ("income_2027") and returns its file name.
func PromptFileName(name string) (string, error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".wav")
	if !promptNameRE.MatchString(name) {
		return "", org.Invalid("name", "1 to 60 of a-z 0-9 - _, starting with a letter or digit")
	}
	return name + ".wav", nil
}

// ValidPromptName reports whether s is a prompt file name a script may use (a plain .wav name, no path).
func ValidPromptName(s string) bool { return promptName(s) == nil }

// SavePrompt stores a converted upload under a new name; a name already used, uploaded or built in (exists in
// builtinDir), is a conflict: a prompt a running campaign plays is never replaced under it.
func (s *Service) SavePrompt(ctx context.Context, actor org.Actor, builtinDir string, p NewPrompt) (*PromptInfo, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	file, err := PromptFileName(p.Name)
	if err != nil {
		return nil, err
	}
	if builtinDir != "" {
		if _, err := os.Stat(filepath.Join(builtinDir, file)); err == nil {
			if _, err := s.promptRow(ctx, file); errors.Is(err, org.ErrNotFound) {
				return nil, fmt.Errorf("prompt %s is built in: %w", file, org.ErrConflict)
			}
		}
	}
	sum := sha256.Sum256(p.WAV)
	src := p.SourceName
	if len([]rune(src)) > 200 {
		src = string([]rune(src)[:200])
	}
	info := PromptInfo{Name: file, DurationMS: int(p.Duration.Milliseconds()), SHA256: hex.EncodeToString(sum[:]),
		SourceFormat: p.SourceFormat, SourceName: src, CreatedBy: actorRef(actor)}
	err = s.db.QueryRow(ctx, `INSERT INTO campaign_prompts (name, wav, sha256, duration_ms, source_format, source_name, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`, file, p.WAV, info.SHA256, max(info.DurationMS, 1),
		p.SourceFormat, src, info.CreatedBy).Scan(&info.CreatedAt)
	if org.SQLState(err) == pgerrcode.UniqueViolation {
		return nil, fmt.Errorf("prompt %s exists: %w", file, org.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("save prompt %s: %w", file, err)
	}
	s.log.Info("campaign prompt uploaded", "name", file, "duration_ms", info.DurationMS, "format", p.SourceFormat, "by", actor.UserID)
	return &info, nil
}

func (s *Service) promptRow(ctx context.Context, file string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRow(ctx, `SELECT wav FROM campaign_prompts WHERE name = $1`, file).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, org.ErrNotFound
	}
	return b, err
}

// ListPrompts lists the uploaded prompts and the built-in ones (files of builtinDir not uploaded), by name.
func (s *Service) ListPrompts(ctx context.Context, actor org.Actor, builtinDir string) ([]PromptInfo, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT name, duration_ms, sha256, source_format, source_name, created_by, created_at
		FROM campaign_prompts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PromptInfo, error) {
		var p PromptInfo
		err := r.Scan(&p.Name, &p.DurationMS, &p.SHA256, &p.SourceFormat, &p.SourceName, &p.CreatedBy, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	uploaded := map[string]bool{}
	for _, p := range out {
		uploaded[p.Name] = true
	}
	if builtinDir != "" {
		files, _ := filepath.Glob(filepath.Join(builtinDir, "*.wav"))
		for _, f := range files {
			name := filepath.Base(f)
			if uploaded[name] || !ValidPromptName(name) {
				continue
			}
			st, err := os.Stat(f)
			if err != nil {
				continue
			}
			out = append(out, PromptInfo{Name: name, Builtin: true, SourceFormat: "wav", DurationMS: int((st.Size() - 44) / 16), CreatedAt: st.ModTime()})
		}
	}
	return out, nil
}

// PromptAudio returns a prompt's WAV for playback in the console: the uploaded one, else the built-in file.
func (s *Service) PromptAudio(ctx context.Context, actor org.Actor, builtinDir, name string) ([]byte, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	if !ValidPromptName(name) {
		return nil, org.Invalid("name", "a .wav file name without a path")
	}
	b, err := s.promptRow(ctx, name)
	if errors.Is(err, org.ErrNotFound) && builtinDir != "" {
		b, err = os.ReadFile(filepath.Join(builtinDir, name))
		if errors.Is(err, os.ErrNotExist) {
			err = org.ErrNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prompt %s: %w", name, err)
	}
	return b, nil
}

// MaterializePrompt makes sure an uploaded prompt is a file in dir, writing it from PostgreSQL if it is missing
// (written to a temporary name and renamed, so a concurrent player never reads half a file). A name that is not
// uploaded is left to the directory: ok is false.
func (s *Service) MaterializePrompt(ctx context.Context, dir, name string) (bool, error) {
	if !ValidPromptName(name) {
		return false, fmt.Errorf("prompt %q: not a prompt file name", name)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return true, nil
	}
	b, err := s.promptRow(ctx, name)
	if errors.Is(err, org.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("prompt %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}
