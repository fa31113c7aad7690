package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"hotline/ticketing/org"
)

// The consoles are a handful of pages built with Vue 3 and Element Plus from prebuilt browser bundles vendored
// under console/vendor by web/vendor.sh (versions and hashes in console/vendor/VERSIONS). Every page is the same
// shell (console/index.html) that loads the vendored files and the app's own scripts; the scripts pick the page
// from the path. The pages use render functions, never runtime-compiled templates, so the policy below needs
// neither 'unsafe-eval' nor 'unsafe-inline' for scripts.

//go:embed console
var consoleFiles embed.FS

// csp: scripts only from this origin; Element Plus positions popups with inline style attributes, so styles may
// be inline (CSP3 lets 'self' in connect-src cover the same-origin websocket).
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every page and every API answer carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// pagePaths are the console's pages; each is served the shell, and the scripts render the page.
var pagePaths = []string{"/", "/login", "/agent", "/division", "/search", "/notify", "/wallboard", "/stats", "/tickets/{id}",
	"/campaigns", "/campaigns/new", "/campaigns/{id}", "/admin", "/households", "/households/{id}", "/kb", "/exchange"}

// console serves the embedded console: the shell for page paths, the assets under /assets/.
func (s *Server) console() http.Handler {
	sub, _ := fs.Sub(consoleFiles, "console")
	shell, _ := fs.ReadFile(sub, "index.html")
	mux := http.NewServeMux()
	for _, p := range pagePaths {
		pattern := "GET " + p
		if p == "/" {
			pattern = "GET /{$}"
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(shell)
		})
	}
	mux.Handle("GET /assets/", newAssets(sub))
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return fmt.Errorf("%s: %w", r.Method, errMethod)
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			return fmt.Errorf("page %s: %w", r.URL.Path, org.ErrNotFound)
		}
		h.ServeHTTP(w, r)
		return nil
	})
}

// asset is one embedded file, ready to serve: its bytes, gzipped when that pays, and a content hash as ETag.
type asset struct {
	raw, gz     []byte
	etag, ctype string
}

// assets serves the console's files from memory, gzipped for browsers that take it (the vendored bundles shrink
// from 1.6 MB to 0.4 MB, which matters on a slow intranet link) and revalidated by ETag. Vendored files, which only
// change with their version, may be cached for a day; the app's own files are revalidated on every load.
type assets struct {
	fsys  fs.FS
	once  sync.Once
	files map[string]*asset
}

func newAssets(fsys fs.FS) *assets { return &assets{fsys: fsys} }

func (a *assets) load() {
	a.files = map[string]*asset{}
	fs.WalkDir(a.fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(a.fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := &asset{raw: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: mime.TypeByExtension(path.Ext(name))}
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		if len(b) > 1024 && (strings.HasPrefix(f.ctype, "text/") || strings.Contains(f.ctype, "javascript")) {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			f.gz = buf.Bytes()
		}
		a.files[name] = f
		return nil
	})
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.once.Do(a.load)
	name := strings.TrimPrefix(r.URL.Path, "/assets/")
	f, ok := a.files[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "no such file"})
		return
	}
	h := w.Header()
	if strings.HasPrefix(name, "vendor/") {
		h.Set("Cache-Control", "public, max-age=86400")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", f.etag)
	h.Set("Vary", "Accept-Encoding")
	h.Set("Content-Type", f.ctype)
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.raw
	if f.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
