package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hotline/ticketing/attach"
	"hotline/ticketing/kb"
	"hotline/ticketing/org"
)

// Content is what the attachment, knowledge-base and reply-template API is built from; nil fields: not served.
type Content struct {
	Attachments *attach.Service
	KB          *kb.Service
}

// contentRoutes registers attachments (tickets and households), the knowledge base and reply templates.
func (s *Server) contentRoutes() {
	c := s.deps.Content
	if c == nil {
		return
	}
	if c.Attachments != nil {
		s.mux.HandleFunc("POST /api/v1/tickets/{id}/attachments", s.authed(s.uploadAttachment("ticket")))
		s.mux.HandleFunc("GET /api/v1/tickets/{id}/attachments", s.authed(s.listAttachments("ticket")))
		s.mux.HandleFunc("POST /api/v1/households/{id}/attachments", s.authed(s.uploadAttachment("household")))
		s.mux.HandleFunc("GET /api/v1/households/{id}/attachments", s.authed(s.listAttachments("household")))
		s.mux.HandleFunc("GET /api/v1/attachments/{id}", s.authed(s.getAttachment(false)))
		s.mux.HandleFunc("GET /api/v1/attachments/{id}/thumbnail", s.authed(s.getAttachment(true)))
	}
	if c.KB != nil {
		s.mux.HandleFunc("GET /api/v1/kb/articles", s.authed(s.searchArticles))
		s.mux.HandleFunc("POST /api/v1/kb/articles", s.authed(s.createArticle))
		s.mux.HandleFunc("GET /api/v1/kb/articles/{id}", s.authed(s.getArticle))
		s.mux.HandleFunc("PUT /api/v1/kb/articles/{id}", s.authed(s.updateArticle))
		s.mux.HandleFunc("GET /api/v1/kb/articles/{id}/versions", s.authed(s.articleVersions))
		s.mux.HandleFunc("GET /api/v1/reply-templates", s.authed(s.listTemplates))
		s.mux.HandleFunc("POST /api/v1/reply-templates", s.authed(s.saveTemplate))
		s.mux.HandleFunc("PUT /api/v1/reply-templates/{id}", s.authed(s.saveTemplate))
		s.mux.HandleFunc("POST /api/v1/reply-templates/{id}/render", s.authed(s.renderTemplate))
	}
}

func target(kind string, id int64) attach.Target {
	if kind == "household" {
		return attach.Target{HouseholdID: org.HouseholdID(id)}
	}
	return attach.Target{TicketID: org.TicketID(id)}
}

// uploadAttachment takes multipart/form-data with one part named "file" (the browser's FormData); a household
// photo may name its visit with ?contact_id=. The actor is authorized before the body is read.
func (s *Server) uploadAttachment(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		svc := s.deps.Content.Attachments
		t := target(kind, id)
		if v := r.URL.Query().Get("contact_id"); v != "" && kind == "household" {
			if t.ContactID, err = strconv.ParseInt(v, 10, 64); err != nil || t.ContactID <= 0 {
				return org.Invalid("contact_id", "a contact id")
			}
		}
		if err := svc.Authorize(r.Context(), actor(r), true, t); err != nil {
			return err
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "multipart/form-data" {
			return org.Invalid("file", "send multipart/form-data with a part named file")
		}
		r.Body = http.MaxBytesReader(w, r.Body, svc.MaxBytes()+64<<10)
		mr, err := r.MultipartReader()
		if err != nil {
			return org.Invalid("file", "malformed multipart body")
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return fileError(fmt.Errorf("%w: at most %d bytes", attach.ErrTooLarge, svc.MaxBytes()))
				}
				return org.Invalid("file", "no part named file")
			}
			if part.FormName() != "file" {
				continue
			}
			at, err := svc.Upload(r.Context(), actor(r), t, part.FileName(), part)
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					err = fmt.Errorf("%w: at most %d bytes", attach.ErrTooLarge, svc.MaxBytes())
				}
				return fileError(err)
			}
			w.Header().Set("Location", fmt.Sprintf("/api/v1/attachments/%d", at.ID))
			return writeJSON(w, http.StatusCreated, at)
		}
	}
}

// fileError names the field at fault for the refusals of a file's size or type (413, 415).
func fileError(err error) error {
	if errors.Is(err, attach.ErrTooLarge) || errors.Is(err, attach.ErrFileType) {
		return errors.Join(err, org.Invalid("file", err.Error()))
	}
	return err
}

func (s *Server) listAttachments(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		list, err := s.deps.Content.Attachments.List(r.Context(), actor(r), target(kind, id))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{"attachments": list, "max_bytes": s.deps.Content.Attachments.MaxBytes(),
			"types": attach.Types})
	}
}

// getAttachment serves a file (or its thumbnail) with its sniffed type; photos and PDFs inline, documents as
// downloads; never cached by shared caches, since who may read it can change.
func (s *Server) getAttachment(thumb bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		at, o, err := s.deps.Content.Attachments.Open(r.Context(), actor(r), id, thumb)
		if err != nil {
			return err
		}
		defer o.Close()
		ct, disp := at.ContentType, "attachment"
		if thumb {
			ct = "image/jpeg"
		}
		if thumb || strings.HasPrefix(ct, "image/") || ct == "application/pdf" {
			disp = "inline"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "private, no-store")
		w.Header().Set("Content-Disposition", disp+"; filename*=UTF-8''"+url.PathEscape(at.Filename))
		http.ServeContent(w, r, "", at.CreatedAt.Truncate(time.Second), o)
		return nil
	}
}

func (s *Server) searchArticles(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	retired := q.bool("retired")
	limit := int(q.int("limit"))
	if err := q.bad.Err(); err != nil {
		return err
	}
	list, err := s.deps.Content.KB.Search(r.Context(), actor(r), q.Get("q"), retired, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"articles": list})
}

func (s *Server) createArticle(w http.ResponseWriter, r *http.Request) error {
	var d kb.Draft
	if err := decode(w, r, &d); err != nil {
		return err
	}
	ar, err := s.deps.Content.KB.Create(r.Context(), actor(r), d)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/kb/articles/%d", ar.ID))
	return writeJSON(w, http.StatusCreated, ar)
}

func (s *Server) getArticle(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ar, err := s.deps.Content.KB.Get(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ar)
}

func (s *Server) updateArticle(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var d kb.Draft
	if err := decode(w, r, &d); err != nil {
		return err
	}
	ar, err := s.deps.Content.KB.Update(r.Context(), actor(r), id, d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ar)
}

// articleVersions lists the history, or one version with ?version=N (what a ticket's citation names).
func (s *Server) articleVersions(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := query(r)
	v := q.int("version")
	if err := q.bad.Err(); err != nil {
		return err
	}
	vs, err := s.deps.Content.KB.Versions(r.Context(), actor(r), id, int(v))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.deps.Content.KB.Templates(r.Context(), actor(r), r.URL.Query().Get("category"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"templates": ts, "placeholders": kb.Placeholders})
}

func (s *Server) saveTemplate(w http.ResponseWriter, r *http.Request) error {
	var t kb.Template
	if err := decode(w, r, &t); err != nil {
		return err
	}
	t.ID = 0
	code := http.StatusCreated
	if r.Method == http.MethodPut {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		t.ID, code = id, http.StatusOK
	}
	t, err := s.deps.Content.KB.SaveTemplate(r.Context(), actor(r), t)
	if err != nil {
		return err
	}
	return writeJSON(w, code, t)
}

// renderTemplate fills a template from a ticket: {"ticket_id": N} → {"text": "..."}.
func (s *Server) renderTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var b struct {
		TicketID int64 `json:"ticket_id"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.TicketID <= 0 {
		return org.Invalid("ticket_id", "required")
	}
	if s.deps.Tickets == nil {
		return errNoRoute
	}
	text, err := s.deps.Content.KB.Render(r.Context(), actor(r), s.tickets(), id, org.TicketID(b.TicketID))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"text": text})
}
