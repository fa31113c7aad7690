package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The consoles are a handful of pages built with Vue 3 and Element Plus from prebuilt browser bundles vendored
// under console/vendor (console/vendor.sh, versions and hashes in console/vendor/VERSIONS). Every page is the same
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
var pagePaths = []string{"/", "/login", "/agent", "/division", "/search", "/tickets/{id}"}

// console serves the embedded console: the shell for page paths, the assets under /assets/.
func (s *Server) console() http.Handler {
	sub, _ := fs.Sub(consoleFiles, "console")
	files := http.FileServerFS(sub)
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
	mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		// The vendored files never change under a version; the app's own files are revalidated.
		if strings.HasPrefix(r.URL.Path, "/assets/vendor/") {
			w.Header().Set("Cache-Control", "public, max-age=86400")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.StripPrefix("/assets", files).ServeHTTP(w, r)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Code: "method_not_allowed", Message: r.Method + " not allowed here"})
			return
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "no such page"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
