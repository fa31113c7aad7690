package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
)

//go:embed console
var consoleFiles embed.FS

// console serves the embedded web console (static files; the pages call the JSON API).
func (s *Server) console() http.Handler {
	sub, _ := fs.Sub(consoleFiles, "console")
	files := http.FileServerFS(sub)
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return fmt.Errorf("%s: %w", r.Method, errMethod)
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'")
		files.ServeHTTP(w, r)
		return nil
	})
}
