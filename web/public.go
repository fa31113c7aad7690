package web

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"hotline/ticketing/region"
)

// The public web channel (网上留言): plain pages for a phone's browser (WeChat's included) that submit a
// request and query its progress, no account. What stands between the form and a flood of tickets: a
// proof-of-work challenge (the page spends a second or two of a phone's CPU per submission; a script sending
// thousands pays thousands of times that), a per-client limit per hour and the public ceiling per minute
// (publicGate). Up to three photos may come with a submission (multipart, after the solved challenge; see
// publicSubmit).

//go:embed public
var publicFiles embed.FS

func (s *Server) publicRoutes() {
	if s.deps.Tickets == nil || s.deps.Tickets.Service == nil {
		return
	}
	sub, _ := fs.Sub(publicFiles, "public")
	page := func(name string) http.HandlerFunc {
		body, _ := fs.ReadFile(sub, name)
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		}
	}
	s.mux.HandleFunc("GET /liuyan", page("index.html"))
	s.mux.HandleFunc("GET /liuyan/progress", page("progress.html"))
	s.mux.HandleFunc("GET /liuyan/assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".css") {
			http.NotFound(w, r) // the pages are served at their own paths, the directory is not listed
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, name)
	})
	s.mux.HandleFunc("GET /api/v1/public/form", s.api(s.publicForm))
	s.mux.HandleFunc("GET /api/v1/public/regions", s.api(s.publicRegions))
	s.mux.HandleFunc("POST /api/v1/public/challenges", s.api(s.publicChallenge))
	s.mux.HandleFunc("POST /api/v1/public/tickets", s.api(s.publicSubmit))
}

// publicForm tells the page what it may offer.
func (s *Server) publicForm(w http.ResponseWriter, r *http.Request) error {
	if err := s.publicGate(r, "public-read", s.publicLimit()); err != nil {
		return err
	}
	cs, err := s.publicCategories(r)
	if err != nil {
		return err
	}
	type item struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	kinds := []item{}
	for _, k := range ticketing.Kinds {
		kinds = append(kinds, item{string(k), kindNames[k]})
	}
	cats := []item{}
	for _, c := range cs {
		cats = append(cats, item{c.Code, c.Name})
	}
	form := map[string]any{"kinds": kinds, "categories": cats, "photos": false, "pow_bits": s.deps.Public.withDefaults().PowBits}
	if att := s.publicAttachments(); att != nil {
		form["photos"], form["max_photos"], form["photo_max_bytes"] = true, maxPublicPhotos, att.MaxBytes()
	}
	return writeJSON(w, http.StatusOK, form)
}

// publicRegions is the region picker of the public form (the console's GET /api/v1/regions, without sign-in).
func (s *Server) publicRegions(w http.ResponseWriter, r *http.Request) error {
	if err := s.publicGate(r, "public-read", s.publicLimit()); err != nil {
		return err
	}
	return s.listRegions(w, r)
}

// Redis: <prefix>pow:<challenge> exists while a challenge may be answered (10 minutes); answering deletes it,
// so each is used once.
const powTTL = 10 * time.Minute

func (s *Server) powKey(c string) string { return s.deps.Tickets.RedisPrefix + "pow:" + c }

// publicChallenge hands out a proof-of-work challenge: find a nonce such that SHA-256(challenge ":" nonce) starts
// with bits zero bits.
func (s *Server) publicChallenge(w http.ResponseWriter, r *http.Request) error {
	if err := s.publicGate(r, "challenge", s.publicLimit()); err != nil {
		return err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	c := hex.EncodeToString(b)
	bits := s.deps.Public.withDefaults().PowBits
	if err := s.deps.Redis.Set(r.Context(), s.powKey(c), bits, powTTL).Err(); err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"challenge": c, "bits": bits, "expires_in": int(powTTL / time.Second)})
}

// powSolved reports whether SHA-256(challenge ":" nonce) starts with bits zero bits.
func powSolved(challenge, nonce string, bits int) bool {
	sum := sha256.Sum256([]byte(challenge + ":" + nonce))
	for i := 0; i < bits; i++ {
		if sum[i/8]&(0x80>>(i%8)) != 0 {
			return false
		}
	}
	return true
}

type publicTicketBody struct {
	Kind       ticketing.Kind `json:"kind"`
	Category   string         `json:"category"`
	RegionCode string         `json:"region_code"`
	Content    string         `json:"content"`
	Phone      string         `json:"phone"`
	Name       string         `json:"name"`
	Challenge  string         `json:"challenge"`
	Nonce      string         `json:"nonce"`
}

// maxPublicPhotos is how many photos one public submission may carry.
const maxPublicPhotos = 3

// publicAttachments is the attachment store the public form's photos go to; nil: photos not offered.
func (s *Server) publicAttachments() *attach.Service {
	if s.deps.Content == nil {
		return nil
	}
	return s.deps.Content.Attachments
}

// publicSubmit opens a web-source ticket, routed like any other, and answers its number and query code.
//
// With photos the body is multipart/form-data: first a part named "ticket" holding the JSON body, then up to
// three parts named "photo". The ticket part is validated, its challenge spent and the limits counted before a
// photo's byte is read, so no photo is stored without a solved challenge. The photos' bytes go to the blob store
// first (the store is not transactional); then the ticket, its photos' rows and their events are written in one
// transaction, and a refusal or failure deletes the stored bytes again.
func (s *Server) publicSubmit(w http.ResponseWriter, r *http.Request) error {
	var b publicTicketBody
	var mr *multipart.Reader
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		att := s.publicAttachments()
		if att == nil {
			return org.Invalid("photo", "photos are not accepted: send the ticket as application/json")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody+maxPublicPhotos*(att.MaxBytes()+64<<10))
		var err error
		if mr, err = r.MultipartReader(); err != nil {
			return org.Invalid("ticket", "malformed multipart body")
		}
		part, err := mr.NextPart()
		if err != nil || part.FormName() != "ticket" {
			return org.Invalid("ticket", "the first part must be named ticket and hold the JSON body")
		}
		if err := decode(w, &http.Request{Body: io.NopCloser(part)}, &b); err != nil {
			return err
		}
	} else if err := decode(w, r, &b); err != nil {
		return err
	}
	lim := s.deps.Public.withDefaults()
	v := &org.ValidationError{}
	if b.Challenge == "" || len(b.Challenge) > 64 || len(b.Nonce) > 64 {
		v.Add("challenge", "required: POST /api/v1/public/challenges, then solve it")
	}
	if b.Kind == "" {
		v.Add("kind", "required")
	}
	cs, err := s.publicCategories(r)
	if err != nil {
		return err
	}
	found := false
	for _, c := range cs {
		found = found || c.Code == b.Category
	}
	if !found {
		v.Add("category", "one of GET /api/v1/public/form")
	}
	if rg, ok := region.Lookup(b.RegionCode); !ok || rg.Level != region.LevelTownship || !strings.HasPrefix(b.RegionCode, "43") {
		v.Add("region_code", "a township (乡镇/街道) of Hunan")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(b.Content)); n < 5 || n > 2000 {
		v.Add("content", "5 to 2000 characters")
	}
	if _, kind, err := phone.Normalize(b.Phone); err != nil || kind != phone.Mobile {
		v.Add("phone", "a mobile number (11 digits)")
	}
	if err := v.Err(); err != nil {
		return err
	}
	// The challenge is spent before the limits are counted, so a wrong or replayed answer costs the sender a
	// new challenge, and a right one is used once whatever follows.
	bits, err := s.deps.Redis.GetDel(r.Context(), s.powKey(b.Challenge)).Int()
	if errors.Is(err, redis.Nil) {
		return org.Invalid("challenge", "unknown, used or expired: ask for a new one")
	}
	if err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	if !powSolved(b.Challenge, b.Nonce, bits) {
		return org.Invalid("nonce", "does not solve the challenge")
	}
	if err := s.rateLimitWindow(r, "submit", clientKey(r, lim.TrustedHops), lim.Submit, time.Hour); err != nil {
		w.Header().Set("Retry-After", "3600")
		return err
	}
	if err := s.rateLimit(r.Context(), "public", "all", lim.Global); err != nil {
		w.Header().Set("Retry-After", "60")
		return err
	}
	nt := ticketing.NewTicket{Source: ticketing.SourceWeb, CallerName: strings.TrimSpace(b.Name),
		CallerPhone: b.Phone, RegionCode: b.RegionCode, Kind: b.Kind, Category: b.Category, Content: b.Content, Dispatch: true}
	if mr == nil {
		t, err := s.tickets().Create(r.Context(), org.System, nt)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, map[string]any{"number": t.Number, "query_code": t.QueryCode, "status": t.Status, "photos": 0})
	}
	att := s.publicAttachments()
	staged, err := s.stagePublicPhotos(r, mr, att)
	if err != nil {
		return err
	}
	var t ticketing.Ticket
	ats, err := att.NewTicketTx(r.Context(), org.System, staged, func(tx pgx.Tx) (org.TicketID, error) {
		var err error
		t, err = s.tickets().CreateTx(r.Context(), tx, org.System, nt)
		return t.ID, err
	})
	if err != nil {
		return err
	}
	s.tickets().Kick()
	return writeJSON(w, http.StatusCreated, map[string]any{"number": t.Number, "query_code": t.QueryCode, "status": t.Status, "photos": len(ats)})
}

// stagePublicPhotos stores the photo parts' bytes (photos only, sniffed; at most maxPublicPhotos); on a refusal
// the ones already stored are deleted.
func (s *Server) stagePublicPhotos(r *http.Request, mr *multipart.Reader, att *attach.Service) (staged []attach.Staged, err error) {
	defer func() {
		if err != nil {
			att.Discard(staged)
			staged = nil
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return staged, nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return staged, photoError(err, att.MaxBytes())
		}
		if err != nil {
			return staged, org.Invalid("photo", "malformed multipart body")
		}
		if part.FormName() != "photo" {
			return staged, org.Invalid(part.FormName(), "unknown part: send ticket, then up to 3 photo parts")
		}
		if len(staged) == maxPublicPhotos {
			return staged, org.Invalid("photo", fmt.Sprintf("at most %d photos", maxPublicPhotos))
		}
		name := part.FileName()
		if name == "" {
			name = fmt.Sprintf("photo%d", len(staged)+1)
		}
		st, err := att.Stage(r.Context(), name, part, true)
		if err != nil {
			return staged, photoError(err, att.MaxBytes())
		}
		staged = append(staged, st)
	}
}

// photoError names the photo field for the refusals of a photo (size 413, type 415, others 400).
func photoError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: at most %d bytes a photo", attach.ErrTooLarge, max)
	}
	var ve *org.ValidationError
	switch {
	case errors.Is(err, attach.ErrTooLarge) || errors.Is(err, attach.ErrFileType):
		return errors.Join(err, org.Invalid("photo", err.Error()))
	case errors.As(err, &ve):
		return org.Invalid("photo", err.Error())
	}
	return err
}

// rateLimitWindow counts requests per key in fixed windows of the given length in Redis (rateLimit's, longer).
func (s *Server) rateLimitWindow(r *http.Request, name, key string, limit int, window time.Duration) error {
	sec := int64(window / time.Second)
	k := fmt.Sprintf("%srl:%s:%s:%d", s.deps.Tickets.RedisPrefix, name, key, s.deps.Now().Unix()/sec)
	pipe := s.deps.Redis.TxPipeline()
	incr := pipe.Incr(r.Context(), k)
	pipe.Expire(r.Context(), k, 2*window)
	if _, err := pipe.Exec(r.Context()); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if incr.Val() > int64(limit) {
		return errRateLimit
	}
	return nil
}
