package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"hotline/telephony"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// ClickDialer places agents' click-to-calls (telephony/dialer); declared here with the one method the API needs.
type ClickDialer interface {
	Dial(ctx context.Context, a org.Actor, r campaign.ClickRequest) (*campaign.ClickCall, error)
}

// Campaigns is what the campaign API is built from.
type Campaigns struct {
	Service *campaign.Service
	Click   ClickDialer // nil: click-to-call is not offered by this process
	// PromptDir is the dialer's prompt directory: the built-in prompts the console lists and plays, and where an
	// uploaded prompt is written for this process ("": uploaded prompts only).
	PromptDir string
}

// campaignRoutes registers the campaign API: build, lifecycle, live progress, results, 回访 manual tasks and
// click-to-call.
func (s *Server) campaignRoutes() {
	if s.deps.Campaigns == nil || s.deps.Campaigns.Service == nil {
		return
	}
	s.mux.HandleFunc("POST /api/v1/campaigns", s.authed(s.createCampaign))
	s.mux.HandleFunc("GET /api/v1/campaigns", s.authed(s.listCampaigns))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}", s.authed(s.getCampaign))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/progress", s.authed(s.campaignProgress))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/results.csv", s.authed(s.campaignResults))
	for _, act := range []string{"launch", "pause", "resume", "cancel"} {
		s.mux.HandleFunc("POST /api/v1/campaigns/{id}/"+act, s.authed(s.campaignAction(act)))
	}
	s.mux.HandleFunc("GET /api/v1/callbacks/manual", s.authed(s.manualCallbacks))
	s.mux.HandleFunc("POST /api/v1/click-to-call", s.authed(s.clickToCall))
	s.mux.HandleFunc("GET /api/v1/click-to-call/{id}", s.authed(s.getClickToCall))
}

func (s *Server) campaigns() *campaign.Service { return s.deps.Campaigns.Service }

// canReadCampaigns: campaign managers, supervisors and admins read campaigns and their results.
func canReadCampaigns(a org.Actor) error {
	switch a.Role {
	case org.RoleCampaignManager, org.RoleSupervisor, org.RoleAdmin:
		return nil
	}
	return fmt.Errorf("campaigns: %w", org.ErrForbidden)
}

func campaignID(r *http.Request) (campaign.ID, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, org.Invalid("id", "not a campaign id")
	}
	return campaign.ID(id), nil
}

// readableCampaign is the campaign named in the path, once the actor may read campaigns.
func readableCampaign(r *http.Request) (campaign.ID, error) {
	id, err := campaignID(r)
	if err != nil {
		return 0, err
	}
	return id, canReadCampaigns(actor(r))
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	var n campaign.NewCampaign
	if err := decode(w, r, &n); err != nil {
		return err
	}
	c, err := s.campaigns().Create(r.Context(), actor(r), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) error {
	if err := canReadCampaigns(actor(r)); err != nil {
		return err
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cs, err := s.campaigns().List(r.Context(), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"campaigns": cs})
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := readableCampaign(r)
	if err != nil {
		return err
	}
	c, err := s.campaigns().Get(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) campaignProgress(w http.ResponseWriter, r *http.Request) error {
	id, err := readableCampaign(r)
	if err != nil {
		return err
	}
	p, err := s.campaigns().Progress(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) campaignResults(w http.ResponseWriter, r *http.Request) error {
	id, err := readableCampaign(r)
	if err == nil {
		_, err = s.campaigns().Get(r.Context(), id) // 404 before any CSV byte is written
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="campaign-%d.csv"`, id))
	w.Write([]byte("\xef\xbb\xbf")) // BOM: Excel opens UTF-8 CSV with Chinese correctly
	if err := s.campaigns().WriteResultsCSV(r.Context(), id, w); err != nil {
		s.log.Error("campaign results", "campaign_id", id, "err", err)
	}
	return nil
}

func (s *Server) campaignAction(act string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := campaignID(r)
		if err != nil {
			return err
		}
		svc := s.campaigns()
		do := map[string]func(context.Context, org.Actor, campaign.ID) (*campaign.Campaign, error){
			"launch": svc.Launch, "pause": svc.Pause, "resume": svc.Resume, "cancel": svc.Cancel}[act]
		c, err := do(r.Context(), actor(r), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, c)
	}
}

// manualCallbacks lists 回访 that the dialer could not complete: tasks for agents.
func (s *Server) manualCallbacks(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	if a.Role != org.RoleAgent && canReadCampaigns(a) != nil {
		return fmt.Errorf("manual callbacks: %w", org.ErrForbidden)
	}
	ts, err := s.campaigns().ManualCallbacks(r.Context(), 100)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"callbacks": ts})
}

// clickToCall rings the agent's phone, then the household, and bridges them; it answers 202 at once with the
// call to follow (GET /api/v1/click-to-call/{id}). The number is never in the request or the answer.
// A callback task (callback_id) is checked first against the callback list's rule, so a refusal (403, 404)
// does not depend on whether this process dials.
func (s *Server) clickToCall(w http.ResponseWriter, r *http.Request) error {
	var req campaign.ClickRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.CallbackID != 0 {
		if err := req.Validate(actor(r)); err != nil {
			return err
		}
		if s.deps.Telephony == nil {
			return &org.StateError{Action: "click_to_call", State: "no_callbacks", Allowed: []string{}, Reason: org.ErrState}
		}
		if _, err := s.deps.Telephony.CallbackNumber(r.Context(), actor(r), telephony.CallbackID(req.CallbackID)); err != nil {
			return err
		}
	}
	if s.deps.Campaigns.Click == nil {
		return &org.StateError{Action: "click_to_call", State: "no_dialer", Allowed: []string{}, Reason: org.ErrState}
	}
	c, err := s.deps.Campaigns.Click.Dial(r.Context(), actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, c)
}

func (s *Server) getClickToCall(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return org.Invalid("id", "not a click-to-call id")
	}
	c, err := s.campaigns().GetClick(r.Context(), actor(r), campaign.ClickID(id))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}
