package web

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"hotline/telephony/audioconv"
	"hotline/ticketing/calendar"
	"hotline/ticketing/campaign"
	"hotline/ticketing/org"
)

// The API behind the console's campaign pages (外呼任务): the defaults a new campaign starts from, the live count of
// a target query, uploaded prompts (converted to 8 kHz mono on upload, played back in the page), the answers
// arriving, the filtered results table with its CSV and Excel exports, and the opt-out list kept by hand.
func (s *Server) campaignConsoleRoutes() {
	if s.deps.Campaigns == nil || s.deps.Campaigns.Service == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/campaigns/defaults", s.authed(s.campaignDefaults))
	s.mux.HandleFunc("POST /api/v1/campaigns/target-count", s.authed(s.campaignTargetCount))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/answers", s.authed(s.campaignAnswers))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/results", s.authed(s.campaignResultsPage))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/export.csv", s.authed(s.campaignExport("csv")))
	s.mux.HandleFunc("GET /api/v1/campaigns/{id}/export.xlsx", s.authed(s.campaignExport("xlsx")))
	s.mux.HandleFunc("GET /api/v1/campaign-prompts", s.authed(s.listCampaignPrompts))
	s.mux.HandleFunc("POST /api/v1/campaign-prompts", s.authed(s.uploadCampaignPrompt))
	s.mux.HandleFunc("GET /api/v1/campaign-prompts/{name}", s.authed(s.campaignPromptAudio))
	s.mux.HandleFunc("GET /api/v1/campaign-optouts", s.authed(s.listCampaignOptOuts))
	s.mux.HandleFunc("GET /api/v1/campaign-optouts/history", s.authed(s.campaignOptOutHistory))
	s.mux.HandleFunc("POST /api/v1/campaign-optouts", s.authed(s.addCampaignOptOut))
	s.mux.HandleFunc("POST /api/v1/campaign-optouts/remove", s.authed(s.removeCampaignOptOut))
}

func (s *Server) campaignDefaults(w http.ResponseWriter, r *http.Request) error {
	if err := campaign.CanManage(actor(r)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, campaign.Defaults())
}

func (s *Server) campaignTargetCount(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Purpose campaign.Purpose     `json:"purpose"`
		Query   campaign.TargetQuery `json:"target_query"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	n, err := s.campaigns().CountTargets(r.Context(), actor(r), body.Purpose, body.Query)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

func (s *Server) campaignAnswers(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	p := query(r)
	limit := p.int("limit")
	if err := p.err(); err != nil {
		return err
	}
	as, err := s.campaigns().RecentAnswers(r.Context(), actor(r), id, int(limit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"answers": as})
}

func resultFilter(r *http.Request, paged bool) (campaign.ResultFilter, error) {
	p := query(r)
	f := campaign.ResultFilter{State: campaign.TargetState(p.Get("state")), Outcome: campaign.Outcome(p.Get("outcome")),
		RiskOnly: p.bool("risk"), Region: p.Get("region")}
	if paged {
		f.Limit, f.Offset = int(p.int("limit")), int(p.int("offset"))
		if f.Limit == 0 {
			f.Limit = 50
		}
	}
	return f, p.err()
}

func (s *Server) campaignResultsPage(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	f, err := resultFilter(r, true)
	if err != nil {
		return err
	}
	res, err := s.campaigns().Results(r.Context(), actor(r), id, f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// campaignExport writes the results table under the page's filters as CSV (UTF-8 with a BOM, for Excel) or as an
// Excel workbook; both carry the campaign, the filter and the generation time above the table.
func (s *Server) campaignExport(format string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := campaignID(r)
		if err != nil {
			return err
		}
		f, err := resultFilter(r, false)
		if err != nil {
			return err
		}
		res, err := s.campaigns().Results(r.Context(), actor(r), id, f)
		if err != nil {
			return err
		}
		head, lines := res.Table()
		title := [][]string{{"外呼任务", fmt.Sprintf("#%d %s", res.Campaign.ID, res.Campaign.Name)},
			{"生成时间", s.now().In(calendar.CST).Format("2006-01-02 15:04:05") + "（北京时间）"},
			{"筛选", filterText(f)}, {}}
		name := fmt.Sprintf("campaign-%d-results.%s", id, format)
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
			w.Write([]byte("\xef\xbb\xbf"))
			return writeCSV(w, title, head, lines)
		}
		x, err := resultsWorkbook(title, head, lines)
		if err != nil {
			return err
		}
		defer x.Close()
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		if _, err := x.WriteTo(w); err != nil {
			s.log.Warn("campaign export", "campaign_id", id, "err", err)
		}
		return nil
	}
}

func filterText(f campaign.ResultFilter) string {
	s := ""
	if f.State != "" {
		s += "状态：" + campaign.StateNames[f.State] + " "
	}
	if f.Outcome != "" {
		s += "最后结果：" + campaign.OutcomeNames[f.Outcome] + " "
	}
	if f.RiskOnly {
		s += "仅风险答案 "
	}
	if f.Region != "" {
		s += "区域：" + f.Region + " "
	}
	if s == "" {
		return "全部"
	}
	return strings.TrimSpace(s)
}

func writeCSV(w io.Writer, title [][]string, head []string, lines [][]string) error {
	cw := csv.NewWriter(w)
	for _, l := range title {
		cw.Write(l)
	}
	cw.Write(head)
	for _, l := range lines {
		cw.Write(l)
	}
	cw.Flush()
	return nil // the answer has begun: a failed write is a client that went away
}

func resultsWorkbook(title [][]string, head []string, lines [][]string) (*excelize.File, error) {
	x := excelize.NewFile()
	sheet := "外呼结果"
	if err := x.SetSheetName("Sheet1", sheet); err != nil {
		return nil, fmt.Errorf("results workbook: %w", err)
	}
	row := 1
	put := func(vals []string) error {
		cell, _ := excelize.CoordinatesToCellName(1, row)
		vs := make([]any, len(vals))
		for i, v := range vals {
			vs[i] = v
		}
		row++
		return x.SetSheetRow(sheet, cell, &vs)
	}
	for _, l := range title {
		if err := put(l); err != nil {
			return nil, fmt.Errorf("results workbook: %w", err)
		}
	}
	headRow := row
	if err := put(head); err != nil {
		return nil, fmt.Errorf("results workbook: %w", err)
	}
	for _, l := range lines {
		if err := put(l); err != nil {
			return nil, fmt.Errorf("results workbook: %w", err)
		}
	}
	if bold, err := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err == nil {
		a, _ := excelize.CoordinatesToCellName(1, headRow)
		b, _ := excelize.CoordinatesToCellName(len(head), headRow)
		x.SetCellStyle(sheet, a, b, bold)
	}
	x.SetColWidth(sheet, "A", "G", 14)
	return x, nil
}

// ---- prompts ---------------------------------------------------------------------------------------------------

func (s *Server) listCampaignPrompts(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.campaigns().ListPrompts(r.Context(), actor(r), s.deps.Campaigns.PromptDir)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"prompts": ps})
}

// uploadCampaignPrompt takes the recording as the request body (?name= the prompt's name, ?filename= the
// uploaded file's name), whatever its Content-Type says: the format is sniffed from the bytes, and the file is
// converted to 8 kHz 16-bit mono WAV before it is stored.
func (s *Server) uploadCampaignPrompt(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	if err := campaign.CanManage(a); err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if _, err := campaign.PromptFileName(name); err != nil {
		return err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, audioconv.MaxUpload))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("prompt upload over %d MB: %w", audioconv.MaxUpload>>20, errTooLarge)
	}
	if err != nil {
		return fmt.Errorf("prompt upload: %w", errMalformed)
	}
	if len(b) == 0 {
		return org.Invalid("file", "empty upload")
	}
	p, err := audioconv.Convert(r.Context(), b)
	if errors.Is(err, audioconv.ErrFormat) {
		return org.Invalid("file", err.Error())
	}
	if err != nil {
		return err
	}
	info, err := s.campaigns().SavePrompt(r.Context(), a, s.deps.Campaigns.PromptDir, campaign.NewPrompt{Name: name, WAV: p.WAV,
		Duration: p.Duration, SourceFormat: p.Format, SourceName: r.URL.Query().Get("filename")})
	if err != nil {
		return err
	}
	if dir := s.deps.Campaigns.PromptDir; dir != "" {
		// This process can play it at once; the others write it from PostgreSQL on first use.
		if _, err := s.campaigns().MaterializePrompt(r.Context(), dir, info.Name); err != nil {
			s.log.Warn("uploaded prompt not written to the prompt directory", "name", info.Name, "err", err)
		}
	}
	return writeJSON(w, http.StatusCreated, info)
}

func (s *Server) campaignPromptAudio(w http.ResponseWriter, r *http.Request) error {
	b, err := s.campaigns().PromptAudio(r.Context(), actor(r), s.deps.Campaigns.PromptDir, r.PathValue("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "private, max-age=60")
	// #nosec G705 -- a WAV checked at upload, served as audio/wav under nosniff and the console's CSP, never as HTML.
	w.Write(b)
	return nil
}

// ---- opt-outs --------------------------------------------------------------------------------------------------

func householdParam(r *http.Request) (campaign.HouseholdID, int, error) {
	p := query(r)
	h, limit := p.int("household_id"), p.int("limit")
	return campaign.HouseholdID(h), int(limit), p.err()
}

func (s *Server) listCampaignOptOuts(w http.ResponseWriter, r *http.Request) error {
	h, limit, err := householdParam(r)
	if err != nil {
		return err
	}
	os, err := s.campaigns().OptOuts(r.Context(), actor(r), h, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"optouts": os})
}

func (s *Server) campaignOptOutHistory(w http.ResponseWriter, r *http.Request) error {
	h, limit, err := householdParam(r)
	if err != nil {
		return err
	}
	cs, err := s.campaigns().OptOutHistory(r.Context(), actor(r), h, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"history": cs})
}

func (s *Server) addCampaignOptOut(w http.ResponseWriter, r *http.Request) error {
	var req campaign.OptOutRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	o, err := s.campaigns().AddOptOut(r.Context(), actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, o)
}

func (s *Server) removeCampaignOptOut(w http.ResponseWriter, r *http.Request) error {
	var req campaign.OptOutRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.campaigns().RemoveOptOut(r.Context(), actor(r), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
