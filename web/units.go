package web

import (
	"hotline/ticketing/org"
	"net/http"
)

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) {
	us, err := org.ListUnits(r.Context(), s.deps.DB)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"units": us})
}
