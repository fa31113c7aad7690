package web

import (
	"errors"
	"io"
	"net/http"

	"hotline/ticketing/exchange"
	"hotline/ticketing/org"
)

// maxPush is the largest work order a platform may push (attachments come by URL, not in the body).
const maxPush = 1 << 20

// exchangeRoutes registers the 12345 platform exchange: the push endpoint, which is a machine's and is
// authenticated by the platform's HMAC signature (exchange.Service.Receive), not by a session or token; and the
// administration (mappings, the unmapped report, the dead letter, reconciliations), admins only.
func (s *Server) exchangeRoutes() {
	if s.deps.Exchange == nil {
		return
	}
	s.mux.HandleFunc("POST /api/v1/exchange/{platform}/orders", s.api(s.exchangePush))
	for _, r := range []struct {
		pattern string
		h       handler
	}{
		{"GET /api/v1/exchange/platforms", s.exchangePlatforms},
		{"GET /api/v1/exchange/platforms/{platform}/mappings", s.exchangeMappings},
		{"PUT /api/v1/exchange/platforms/{platform}/mappings/{kind}/{code}", s.exchangeSaveMapping},
		{"DELETE /api/v1/exchange/platforms/{platform}/mappings/{kind}/{code}", s.exchangeDeleteMapping},
		{"GET /api/v1/exchange/platforms/{platform}/unmapped", s.exchangeUnmapped},
		{"GET /api/v1/exchange/outbound", s.exchangeOutbound},
		{"POST /api/v1/exchange/outbound/{id}/retry", s.exchangeRetry},
		{"GET /api/v1/exchange/reconciliations", s.exchangeReconciliations},
		{"POST /api/v1/exchange/platforms/{platform}/reconciliations", s.exchangeReconcile},
	} {
		s.mux.HandleFunc(r.pattern, s.authed(r.h))
	}
}

// exchangePush takes a work order or an update pushed by a platform: 201 for a new ticket, 200 for an update or
// for an order or update already taken (the answer names the same ticket).
func (s *Server) exchangePush(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPush))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return errors.Join(errMalformed, err)
	}
	res, err := s.deps.Exchange.Receive(r.Context(), r.PathValue("platform"), r.Method, r.URL.RequestURI(), r.Header, body)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	return writeJSON(w, code, res.Ack)
}

// exchangePlatforms lists the configured platforms' names (admins), for the console's 12345对接 page.
func (s *Server) exchangePlatforms(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.deps.Exchange.ListPlatforms(actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"platforms": ps})
}

func (s *Server) exchangeMappings(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.deps.Exchange.Mappings(r.Context(), actor(r), r.PathValue("platform"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"mappings": ms})
}

// mappingKinds are the path words of the two mapping tables.
var mappingKinds = map[string]string{"categories": "category", "regions": "region"}

func (s *Server) exchangeSaveMapping(w http.ResponseWriter, r *http.Request) error {
	if err := exchange.AuthorizeAdmin(actor(r)); err != nil {
		return err
	}
	var b struct {
		Ours string `json:"ours"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	kind, ok := mappingKinds[r.PathValue("kind")]
	if !ok {
		return errNoRoute
	}
	m, err := s.deps.Exchange.SaveMapping(r.Context(), actor(r), r.PathValue("platform"), kind, r.PathValue("code"), b.Ours)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) exchangeDeleteMapping(w http.ResponseWriter, r *http.Request) error {
	if err := exchange.AuthorizeAdmin(actor(r)); err != nil {
		return err
	}
	kind, ok := mappingKinds[r.PathValue("kind")]
	if !ok {
		return errNoRoute
	}
	if err := s.deps.Exchange.DeleteMapping(r.Context(), actor(r), r.PathValue("platform"), kind, r.PathValue("code")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) exchangeUnmapped(w http.ResponseWriter, r *http.Request) error {
	us, err := s.deps.Exchange.UnmappedCodes(r.Context(), actor(r), r.PathValue("platform"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"unmapped": us})
}

func (s *Server) exchangeOutbound(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	limit := int(q.int("limit"))
	if err := q.err(); err != nil {
		return err
	}
	os, err := s.deps.Exchange.ListOutbound(r.Context(), actor(r), q.Get("state"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"outbound": os})
}

func (s *Server) exchangeRetry(w http.ResponseWriter, r *http.Request) error {
	if err := exchange.AuthorizeAdmin(actor(r)); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	o, err := s.deps.Exchange.Retry(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) exchangeReconciliations(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	limit := int(q.int("limit"))
	if err := q.err(); err != nil {
		return err
	}
	rs, err := s.deps.Exchange.Reconciliations(r.Context(), actor(r), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"reconciliations": rs})
}

func (s *Server) exchangeReconcile(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.deps.Exchange.Reconcile(r.Context(), actor(r), r.PathValue("platform"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

// exchangeView is the platform side of a ticket for the ticket API (nil: no platform sent it).
func (s *Server) exchangeView(r *http.Request, id org.TicketID) (*exchange.TicketSync, error) {
	if s.deps.Exchange == nil {
		return nil, nil
	}
	return s.deps.Exchange.ForTicket(r.Context(), id)
}
