package web

import (
	"hotline/ticketing/org"
	"net/http"
)

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) error {
	us, err := org.ListUnits(r.Context(), s.deps.DB)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"units": us})
}
