package web

import (
	"context"
	"net/http"

	"hotline/notify/deliver"
	"hotline/ticketing/org"
)

// NotifyAdmin is the notification admin surface (notify/deliver): rules, templates with preview, units'
// channels, the delivery log with retry of dead deliveries, and SMS opt-outs. It authorizes every call itself
// (admins; agents may record an opt-out).
type NotifyAdmin interface {
	Rules(ctx context.Context, a org.Actor) ([]deliver.Rule, error)
	SaveRule(ctx context.Context, a org.Actor, id int64, in deliver.RuleInput) (deliver.Rule, error)
	Templates(ctx context.Context, a org.Actor) ([]deliver.Template, error)
	SaveTemplate(ctx context.Context, a org.Actor, t deliver.Template) (deliver.Template, error)
	PreviewTemplate(ctx context.Context, a org.Actor, name string, t *deliver.Template, vars map[string]string) (deliver.Preview, error)
	Deliveries(ctx context.Context, a org.Actor, f deliver.Filter) ([]deliver.Delivery, error)
	GetDelivery(ctx context.Context, a org.Actor, id int64) (deliver.Delivery, error)
	Retry(ctx context.Context, a org.Actor, id int64) (deliver.Delivery, error)
	ListUnitChannels(ctx context.Context, a org.Actor) ([]deliver.UnitChannels, error)
	SetUnitChannels(ctx context.Context, a org.Actor, unit int64, in deliver.UnitChannelsInput) (deliver.UnitChannels, error)
	OptOut(ctx context.Context, a org.Actor, phone string, out bool) error
}

func (s *Server) notifyRoutes() {
	if s.deps.Notify == nil {
		return
	}
	for _, r := range []struct {
		pattern string
		h       handler
	}{
		{"GET /api/v1/notify/rules", s.notifyRules},
		{"POST /api/v1/notify/rules", s.saveNotifyRule},
		{"PUT /api/v1/notify/rules/{id}", s.saveNotifyRule},
		{"GET /api/v1/notify/templates", s.notifyTemplates},
		{"PUT /api/v1/notify/templates/{name}", s.saveNotifyTemplate},
		{"POST /api/v1/notify/templates/{name}/preview", s.previewNotifyTemplate},
		{"GET /api/v1/notify/deliveries", s.notifyDeliveries},
		{"GET /api/v1/notify/deliveries/{id}", s.notifyDelivery},
		{"POST /api/v1/notify/deliveries/{id}/retry", s.retryNotifyDelivery},
		{"GET /api/v1/notify/units", s.notifyUnits},
		{"PUT /api/v1/notify/units/{id}", s.setNotifyUnit},
		{"POST /api/v1/notify/optouts", s.notifyOptOut},
	} {
		s.mux.HandleFunc(r.pattern, s.authed(r.h))
	}
}

func (s *Server) notifyRules(w http.ResponseWriter, r *http.Request) error {
	rules, err := s.deps.Notify.Rules(r.Context(), actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

func (s *Server) saveNotifyRule(w http.ResponseWriter, r *http.Request) error {
	var id int64
	if r.PathValue("id") != "" {
		var err error
		if id, err = pathID(r, "id"); err != nil {
			return err
		}
	}
	var in deliver.RuleInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule, err := s.deps.Notify.SaveRule(r.Context(), actor(r), id, in)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if id == 0 {
		code = http.StatusCreated
	}
	return writeJSON(w, code, rule)
}

func (s *Server) notifyTemplates(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.deps.Notify.Templates(r.Context(), actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"templates": ts})
}

type templateBody struct {
	Description      string   `json:"description"`
	Title            string   `json:"title"`
	Body             string   `json:"body"`
	ProviderTemplate string   `json:"provider_template"`
	ProviderParams   []string `json:"provider_params"`
}

func (b templateBody) template(name string) deliver.Template {
	return deliver.Template{Name: name, Description: b.Description, Title: b.Title, Body: b.Body,
		ProviderTemplate: b.ProviderTemplate, ProviderParams: b.ProviderParams}
}

func (s *Server) saveNotifyTemplate(w http.ResponseWriter, r *http.Request) error {
	var b templateBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	t, err := s.deps.Notify.SaveTemplate(r.Context(), actor(r), b.template(r.PathValue("name")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

// previewNotifyTemplate renders the saved template, or the text in the body (an edit not yet saved), with
// sample values and any "vars" given.
func (s *Server) previewNotifyTemplate(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		templateBody
		Vars map[string]string `json:"vars"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &b); err != nil {
			return err
		}
	}
	var t *deliver.Template
	if b.Body != "" {
		tt := b.template(r.PathValue("name"))
		t = &tt
	}
	p, err := s.deps.Notify.PreviewTemplate(r.Context(), actor(r), r.PathValue("name"), t, b.Vars)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) notifyDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := deliver.Filter{Status: q.Get("status"), TicketID: q.int("ticket_id"), BeforeID: q.int("before_id"), Limit: int(q.int("limit"))}
	if f.Limit > 500 {
		q.bad.Add("limit", "at most 500")
	}
	if err := q.err(); err != nil {
		return err
	}
	ds, err := s.deps.Notify.Deliveries(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *Server) notifyDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.deps.Notify.GetDelivery(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) retryNotifyDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.deps.Notify.Retry(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) notifyUnits(w http.ResponseWriter, r *http.Request) error {
	us, err := s.deps.Notify.ListUnitChannels(r.Context(), actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"units": us})
}

func (s *Server) setNotifyUnit(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in deliver.UnitChannelsInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := s.deps.Notify.SetUnitChannels(r.Context(), actor(r), id, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) notifyOptOut(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Phone  string `json:"phone"`
		OptOut *bool  `json:"opt_out"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	out := b.OptOut == nil || *b.OptOut
	if err := s.deps.Notify.OptOut(r.Context(), actor(r), b.Phone, out); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"opt_out": out})
}
