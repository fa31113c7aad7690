package web

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/calendar"
	"hotline/ticketing/open311"
	"hotline/ticketing/org"
)

// Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): service_code is our category, the request a
// ticket of source api, opened by the system actor and routed like any other. Posting needs an API key per
// client (admins make them under /api/v1/open311/clients); the listing is public, shows no personal data
// (ticketing.PublicRequests decides what it may show) and is rate-limited like the other public endpoints.
// Errors use the spec's shape, [{"code": 400, "description": "…"}], with the HTTP status from errors.go.

// open311Routes registers the GeoReport v2 endpoints and the admins' key management.
func (s *Server) open311Routes() {
	if s.deps.Tickets == nil || s.deps.Tickets.Service == nil {
		return
	}
	s.mux.HandleFunc("GET /open311/v2/services.json", s.open311(s.o311Services(false)))
	s.mux.HandleFunc("GET /open311/v2/services.xml", s.open311(s.o311Services(true)))
	s.mux.HandleFunc("GET /open311/v2/services/{file}", s.open311(s.o311Service))
	s.mux.HandleFunc("POST /open311/v2/requests.json", s.open311(s.o311Post))
	s.mux.HandleFunc("GET /open311/v2/requests.json", s.open311(s.o311List))
	s.mux.HandleFunc("GET /open311/v2/requests/{file}", s.open311(s.o311Get))
	s.mux.HandleFunc("POST /api/v1/open311/clients", s.authed(s.createOpen311Client))
	s.mux.HandleFunc("GET /api/v1/open311/clients", s.authed(s.listOpen311Clients))
	s.mux.HandleFunc("DELETE /api/v1/open311/clients/{id}", s.authed(s.revokeOpen311Client))
}

// open311Error is the spec's error element.
type open311Error struct {
	XMLName     xml.Name `json:"-" xml:"error"`
	Code        int      `json:"code" xml:"code"`
	Description string   `json:"description" xml:"description"`
}

type xmlKey struct{}

// open311 adapts a handler: a returned error is written in the spec's format (XML for .xml paths).
func (s *Server) open311(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		code, name := status(err)
		desc := err.Error()
		var ve *org.ValidationError
		if errors.As(err, &ve) {
			var parts []string
			for f, why := range ve.Fields {
				parts = append(parts, f+": "+why)
			}
			slices.Sort(parts)
			desc = strings.Join(parts, "; ")
		}
		switch {
		case code == http.StatusInternalServerError:
			s.log.Error("open311 request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			desc = "internal error"
		case code == http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "1")
			desc = "temporarily unavailable; retry shortly"
		case name == "rate_limited":
			w.Header().Set("Retry-After", "60")
			desc = "rate limited: too many requests, retry after a minute"
		}
		body := []open311Error{{Code: code, Description: desc}}
		if strings.HasSuffix(r.URL.Path, ".xml") {
			writeXML(w, code, struct {
				XMLName xml.Name       `xml:"errors"`
				Errors  []open311Error `xml:"error"`
			}{Errors: body})
			return
		}
		writeJSON(w, code, body)
	}
}

func writeXML(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

// publicGate counts one public request of this client (per minute, limit perClient) and of everyone (the
// global ceiling). A client over its own limit is refused without using up the ceiling.
func (s *Server) publicGate(r *http.Request, name string, perClient int) error {
	lim := s.deps.Public.withDefaults()
	if err := s.rateLimit(r.Context(), name, clientKey(r, lim.TrustedHops), perClient); err != nil {
		return err
	}
	return s.rateLimit(r.Context(), "public", "all", lim.Global)
}

type o311Service struct {
	XMLName     xml.Name `json:"-" xml:"service"`
	Code        string   `json:"service_code" xml:"service_code"`
	Name        string   `json:"service_name" xml:"service_name"`
	Description string   `json:"description" xml:"description"`
	Metadata    bool     `json:"metadata" xml:"metadata"`
	Type        string   `json:"type" xml:"type"`
	Keywords    string   `json:"keywords" xml:"keywords"`
	Group       string   `json:"group" xml:"group"`
}

// publicCategories are the categories offered to the public, in the directory's order.
func (s *Server) publicCategories(r *http.Request) ([]ticketing.Category, error) {
	cs, err := s.tickets().Categories(r.Context())
	if err != nil {
		return nil, err
	}
	out := cs[:0]
	for _, c := range cs {
		if c.Active && ticketing.PublicCategory(c.Code) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Server) o311Services(asXML bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.publicGate(r, "o311-read", s.publicLimit()); err != nil {
			return err
		}
		cs, err := s.publicCategories(r)
		if err != nil {
			return err
		}
		out := make([]o311Service, len(cs))
		for i, c := range cs {
			// metadata: every service takes the attributes kind and region_code (GET services/{code}.json).
			out[i] = o311Service{Code: c.Code, Name: c.Name, Description: c.Name, Metadata: true, Type: "realtime", Group: "乡村振兴"}
		}
		if asXML {
			writeXML(w, http.StatusOK, struct {
				XMLName  xml.Name      `xml:"services"`
				Services []o311Service `xml:"service"`
			}{Services: out})
			return nil
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

type o311Value struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type o311Attribute struct {
	Variable            bool        `json:"variable"`
	Code                string      `json:"code"`
	Datatype            string      `json:"datatype"`
	Required            bool        `json:"required"`
	DatatypeDescription *string     `json:"datatype_description"`
	Order               int         `json:"order"`
	Description         string      `json:"description"`
	Values              []o311Value `json:"values,omitempty"`
}

var kindNames = map[ticketing.Kind]string{ticketing.KindConsultation: "咨询", ticketing.KindHelp: "求助",
	ticketing.KindComplaint: "投诉", ticketing.KindReport: "举报", ticketing.KindSuggestion: "建议"}

// o311Attributes are the same for every service: the kind of matter (default help) and the region.
func o311Attributes() []o311Attribute {
	kinds := []o311Value{}
	for _, k := range ticketing.Kinds {
		kinds = append(kinds, o311Value{Key: string(k), Name: kindNames[k]})
	}
	regionDesc := "GB/T 2260 code of the township (9 digits) or county (6 digits) in Hunan, such as 430903001"
	return []o311Attribute{
		{Variable: true, Code: "kind", Datatype: "singlevaluelist", Order: 1, Description: "诉求类型 (default help 求助)", Values: kinds},
		{Variable: true, Code: "region_code", Datatype: "string", Order: 2, DatatypeDescription: &regionDesc,
			Description: "所在乡镇 (routes the request to its county bureau)"},
	}
}

func (s *Server) o311Service(w http.ResponseWriter, r *http.Request) error {
	code, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		return fmt.Errorf("open311 %s: only .json: %w", r.URL.Path, errNoRoute)
	}
	if err := s.publicGate(r, "o311-read", s.publicLimit()); err != nil {
		return err
	}
	cs, err := s.publicCategories(r)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(cs, func(c ticketing.Category) bool { return c.Code == code }) {
		return fmt.Errorf("service_code %q: %w", code, org.ErrNotFound)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"service_code": code, "attributes": o311Attributes()})
}

// o311Post opens a ticket from a form-encoded GeoReport v2 request.
func (s *Server) o311Post(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return org.Invalid("body", "a form-encoded body (application/x-www-form-urlencoded) of at most 64 KiB")
	}
	f := r.PostForm
	if err := s.publicGate(r, "o311-post-ip", s.deps.Public.withDefaults().Open311); err != nil {
		return err
	}
	client, err := open311.Authenticate(r.Context(), s.deps.DB, f.Get("api_key"))
	if err != nil {
		return err
	}
	if err := s.rateLimit(r.Context(), "o311-key", fmt.Sprint(client.ID), s.deps.Public.withDefaults().Open311); err != nil {
		return err
	}
	v := &org.ValidationError{}
	cs, err := s.publicCategories(r)
	if err != nil {
		return err
	}
	code := f.Get("service_code")
	if !slices.ContainsFunc(cs, func(c ticketing.Category) bool { return c.Code == code }) {
		v.Add("service_code", "not a service of GET services.json")
	}
	kind := ticketing.Kind(f.Get("attribute[kind]"))
	if kind == "" {
		kind = ticketing.KindHelp
	}
	regionCode := strings.TrimSpace(f.Get("attribute[region_code]"))
	addr := strings.TrimSpace(f.Get("address_string"))
	hasLatLong := f.Get("lat") != "" && f.Get("long") != ""
	if regionCode == "" && addr == "" && f.Get("address_id") == "" && !hasLatLong {
		v.Add("location", "one of lat & long, address_string, address_id or attribute[region_code] is required")
	}
	if strings.TrimSpace(f.Get("description")) == "" {
		v.Add("description", "required")
	}
	if err := v.Err(); err != nil {
		return err
	}
	// The content carries what the clerk needs and the directory has no field for; the e-mail address and
	// device id are not kept (the phone is the contact).
	var content strings.Builder
	content.WriteString(strings.TrimSpace(f.Get("description")))
	if addr != "" {
		fmt.Fprintf(&content, "\n地址：%s", addr)
	}
	if hasLatLong {
		fmt.Fprintf(&content, "\n位置：%s,%s", f.Get("lat"), f.Get("long"))
	}
	if m := strings.TrimSpace(f.Get("media_url")); m != "" {
		fmt.Fprintf(&content, "\n图片：%s", m)
	}
	fmt.Fprintf(&content, "\n（Open311 接入：%s）", client.Name)
	name := strings.TrimSpace(f.Get("last_name") + f.Get("first_name"))
	t, err := s.tickets().Create(r.Context(), org.System, ticketing.NewTicket{Source: ticketing.SourceAPI, CallerName: name,
		CallerPhone: f.Get("phone"), RegionCode: regionCode, Kind: kind, Category: code, Content: content.String(), Dispatch: true})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, []map[string]any{{"service_request_id": t.Number,
		"service_notice": fmt.Sprintf("已受理，工单号 %s，查询码 %s（凭工单号和查询码查询办理进度）", t.Number, t.QueryCode),
		"account_id":     nil}})
}

// o311Request is one element of GET requests.json. Fields the spec has and we keep private are null or empty.
type o311Request struct {
	ID                string  `json:"service_request_id"`
	Status            string  `json:"status"`
	StatusNotes       string  `json:"status_notes"`
	ServiceName       string  `json:"service_name"`
	ServiceCode       string  `json:"service_code"`
	Description       string  `json:"description"`
	AgencyResponsible string  `json:"agency_responsible"`
	ServiceNotice     string  `json:"service_notice"`
	Requested         string  `json:"requested_datetime"`
	Updated           string  `json:"updated_datetime"`
	Expected          *string `json:"expected_datetime"`
	Address           string  `json:"address"`
	AddressID         *string `json:"address_id"`
	Zipcode           *string `json:"zipcode"`
	Lat               *string `json:"lat"`
	Long              *string `json:"long"`
	MediaURL          string  `json:"media_url"`
}

var o311StatusNotes = map[ticketing.Status]string{
	ticketing.StatusNew: "已受理", ticketing.StatusDispatched: "已派单至承办单位", ticketing.StatusSigned: "承办单位办理中",
	ticketing.StatusReplied: "承办单位已答复", ticketing.StatusCallback: "回访中", ticketing.StatusClosed: "已办结",
	ticketing.StatusReturned: "重新派单中",
}

func w3c(t time.Time) string { return t.In(calendar.CST).Format(time.RFC3339) }

func o311View(p ticketing.PublicRequest) o311Request {
	st := "open"
	if p.Status == ticketing.StatusClosed {
		st = "closed"
	}
	out := o311Request{ID: p.Number, Status: st, StatusNotes: o311StatusNotes[p.Status], ServiceName: p.CategoryName,
		ServiceCode: p.Category, AgencyResponsible: p.UnitName, Requested: w3c(p.CreatedAt), Updated: w3c(p.UpdatedAt),
		Address: p.CountyName}
	if p.DueAt != nil && st == "open" {
		e := w3c(*p.DueAt)
		out.Expected = &e
	}
	return out
}

func (s *Server) o311List(w http.ResponseWriter, r *http.Request) error {
	if err := s.publicGate(r, "o311-read", s.publicLimit()); err != nil {
		return err
	}
	q := query(r)
	f := ticketing.PublicFilter{Category: q.Get("service_code"), From: q.time("start_date", time.Time{}), To: q.time("end_date", time.Time{})}
	if ids := q.Get("service_request_id"); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id != "" {
				f.Numbers = append(f.Numbers, id)
			}
		}
	}
	switch st := q.Get("status"); st {
	case "", "open,closed", "closed,open":
	case "open", "closed":
		open := st == "open"
		f.Open = &open
	default:
		q.bad.Add("status", "open or closed")
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Sub(f.From) > 90*24*time.Hour {
		q.bad.Add("end_date", "at most 90 days after start_date")
	}
	if f.From.IsZero() && !f.To.IsZero() {
		f.From = f.To.AddDate(0, 0, -90)
	}
	if err := q.err(); err != nil {
		return err
	}
	ps, err := s.tickets().PublicRequests(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]o311Request, len(ps))
	for i, p := range ps {
		out[i] = o311View(p)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) o311Get(w http.ResponseWriter, r *http.Request) error {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		return fmt.Errorf("open311 %s: only .json: %w", r.URL.Path, errNoRoute)
	}
	if err := s.publicGate(r, "o311-read", s.publicLimit()); err != nil {
		return err
	}
	ps, err := s.tickets().PublicRequests(r.Context(), ticketing.PublicFilter{Numbers: []string{id}})
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("service_request_id %q: %w", id, org.ErrNotFound)
	}
	return writeJSON(w, http.StatusOK, []o311Request{o311View(ps[0])})
}

func (s *Server) createOpen311Client(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &b); err != nil {
		return err
	}
	c, err := open311.Create(r.Context(), s.deps.DB, actor(r), b.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listOpen311Clients(w http.ResponseWriter, r *http.Request) error {
	cs, err := open311.List(r.Context(), s.deps.DB, actor(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"clients": cs})
}

func (s *Server) revokeOpen311Client(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := open311.Revoke(r.Context(), s.deps.DB, actor(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
