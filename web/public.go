package web

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"hotline/ticketing"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"hotline/ticketing/region"
)

// The public web channel (网上留言): plain pages for a phone's browser (WeChat's included) that submit a
// request and query its progress, no account. What stands between the form and a flood of tickets: a
// proof-of-work challenge (the page spends a second or two of a phone's CPU per submission; a script sending
// thousands pays thousands of times that), a per-client limit per hour and the public ceiling per minute
// (publicGate). Photos are not offered: hotline has no attachment store yet.

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
	return writeJSON(w, http.StatusOK, map[string]any{"kinds": kinds, "categories": cats, "photos": false,
		"pow_bits": s.deps.Public.withDefaults().PowBits})
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

// publicSubmit opens a web-source ticket, routed like any other, and answers its number and query code.
func (s *Server) publicSubmit(w http.ResponseWriter, r *http.Request) error {
	var b publicTicketBody
	if err := decode(w, r, &b); err != nil {
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
	t, err := s.tickets().Create(r.Context(), org.System, ticketing.NewTicket{Source: ticketing.SourceWeb, CallerName: strings.TrimSpace(b.Name),
		CallerPhone: b.Phone, RegionCode: b.RegionCode, Kind: b.Kind, Category: b.Category, Content: b.Content, Dispatch: true})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"number": t.Number, "query_code": t.QueryCode, "status": t.Status})
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
