package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/xuri/excelize/v2"

	"hotline/deploy/testenv"
	"hotline/telephony/audioconv"
	"hotline/telephony/media"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

type campaignEnv struct {
	*hhEnv
	db        *pgxpool.Pool
	svc       *campaign.Service
	promptDir string
	cm, agent string
	sup       string
	cmID      org.UserID
	hh        []org.HouseholdID
}

func newCampaignEnv(t *testing.T, households int) *campaignEnv {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, _ := pii.New(key)
	mon := monitoring.New(monitoring.Config{DB: db, Box: box})
	e := &campaignEnv{db: db, promptDir: t.TempDir()}
	for i := 1; i <= households; i++ {
		h, err := mon.Create(ctx, org.System, monitoring.DemoHousehold(i))
		if err != nil {
			t.Fatal(err)
		}
		e.hh = append(e.hh, h.ID)
	}
	// A built-in prompt, as the dialer writes them into its directory.
	if err := os.WriteFile(filepath.Join(e.promptDir, "income_question.wav"), media.ToneWAV(440, 300e6), 0o644); err != nil {
		t.Fatal(err)
	}
	e.svc = campaign.NewService(db, campaign.Options{Directory: campaign.MonitoringDirectory{Households: mon}})
	srv := httptest.NewServer(New(Deps{DB: db, Redis: rdb, Campaigns: &Campaigns{Service: e.svc, PromptDir: e.promptDir}}))
	t.Cleanup(srv.Close)
	e.hhEnv = &hhEnv{srv: srv}
	token := func(name string, role org.Role) (string, org.UserID) {
		u, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name + "姓名", Role: role, Password: "secret-password"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := org.CreateToken(ctx, db, u.ID, "test", 0)
		return tok, u.ID
	}
	e.cm, e.cmID = token("campaign1", org.RoleCampaignManager)
	e.agent, _ = token("agent1", org.RoleAgent)
	e.sup, _ = token("super1", org.RoleSupervisor)
	return e
}

// raw sends a body as it is (an upload) and returns the status and the decoded JSON answer.
func (e *campaignEnv) raw(t *testing.T, token, method, path string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (e *campaignEnv) get(t *testing.T, token, path string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// soxMake makes a test recording with sox.
func soxMake(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("sox", append(append([]string{"-n"}, args...), path, "synth", "1.5", "sine", "440")...).CombinedOutput()
	if err != nil {
		t.Fatalf("sox %s: %v %s", name, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCampaignPromptUpload: a campaign manager uploads an MP3 and a 44.1 kHz stereo WAV; both are converted to
// 8 kHz 16-bit mono, stored, listed and played back; a file that is neither, one too large, a taken name and a
// built-in name are refused with the field at fault; agents may not upload; another process's prompt directory
// gets the uploaded prompt from PostgreSQL when a campaign uses it.
func TestCampaignPromptUpload(t *testing.T) {
	e := newCampaignEnv(t, 1)
	ctx := context.Background()
	mp3 := soxMake(t, "q.mp3", "-r", "44100", "-c", "2")
	if f, err := audioconv.Sniff(mp3); err != nil || f != "mp3" {
		t.Fatalf("sox's MP3 sniffed as %q %v", f, err)
	}
	wav := soxMake(t, "q.wav", "-r", "44100", "-c", "2", "-b", "16")
	if media.CheckWAV(wav) == nil {
		t.Fatal("the 44.1 kHz stereo test file already passes as a prompt")
	}
	for _, up := range []struct {
		name, format string
		body         []byte
	}{{"income_mp3", "mp3", mp3}, {"income_stereo", "wav", wav}} {
		code, m := e.raw(t, e.cm, "POST", "/api/v1/campaign-prompts?name="+up.name+"&filename=录音.x", up.body)
		if code != http.StatusCreated || m["name"] != up.name+".wav" || m["source_format"] != up.format {
			t.Fatalf("upload %s: %d %v", up.name, code, m)
		}
		if d := m["duration_ms"].(float64); d < 1400 || d > 1600 {
			t.Errorf("%s: duration %v ms, want about 1500", up.name, d)
		}
		code, hdr, b := e.get(t, e.sup, "/api/v1/campaign-prompts/"+up.name+".wav")
		if code != http.StatusOK || hdr.Get("Content-Type") != "audio/wav" {
			t.Fatalf("play %s: %d %s", up.name, code, hdr.Get("Content-Type"))
		}
		if err := media.CheckWAV(b); err != nil {
			t.Errorf("%s as played back: %v", up.name, err)
		}
		if _, err := os.Stat(filepath.Join(e.promptDir, up.name+".wav")); err != nil {
			t.Errorf("%s not written to this process's prompt directory: %v", up.name, err)
		}
	}
	code, _, _ := e.get(t, e.cm, "/api/v1/campaign-prompts/income_question.wav")
	if code != http.StatusOK {
		t.Errorf("built-in prompt: %d", code)
	}
	code, _, b := e.get(t, e.cm, "/api/v1/campaign-prompts")
	var list struct{ Prompts []campaign.PromptInfo }
	json.Unmarshal(b, &list)
	if code != http.StatusOK || len(list.Prompts) != 3 {
		t.Fatalf("prompt list: %d %s", code, b)
	}

	refused := []struct {
		what, token, name string
		body              []byte
		code              int
		field             string
	}{
		{"agent", e.agent, "x", mp3, http.StatusForbidden, ""},
		{"text file", e.cm, "x", []byte("这不是录音，只是一段文字。"), http.StatusBadRequest, "file"},
		{"MP3 name, PDF bytes", e.cm, "x", []byte("%PDF-1.7\n..."), http.StatusBadRequest, "file"},
		{"empty", e.cm, "x", nil, http.StatusBadRequest, "file"},
		{"bad name", e.cm, "../x", mp3, http.StatusBadRequest, "name"},
		{"taken name", e.cm, "income_mp3", mp3, http.StatusConflict, ""},
		{"built-in name", e.cm, "income_question", mp3, http.StatusConflict, ""},
		{"too large", e.cm, "big", append(append([]byte(nil), wav[:44]...), make([]byte, audioconv.MaxUpload)...), http.StatusRequestEntityTooLarge, ""},
	}
	for _, r := range refused {
		code, m := e.raw(t, r.token, "POST", "/api/v1/campaign-prompts?name="+r.name, r.body)
		fields, _ := m["fields"].(map[string]any)
		if code != r.code || (r.field != "" && fields[r.field] == nil) {
			t.Errorf("%s: %d %v, want %d with field %q", r.what, code, m, r.code, r.field)
		}
	}
	var n int
	e.db.QueryRow(ctx, `SELECT count(*) FROM campaign_prompts`).Scan(&n)
	if n != 2 {
		t.Errorf("%d prompts stored, want 2", n)
	}

	// Another dialer process: its prompt directory has no uploaded file; the campaign check writes it from PostgreSQL.
	other := t.TempDir()
	svc2 := campaign.NewService(e.db, campaign.Options{Prompt: func(name string) error {
		if _, err := e.svc.MaterializePrompt(ctx, other, name); err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			return err
		}
		return media.CheckWAV(b)
	}})
	cm := org.Actor{UserID: e.cmID, Role: org.RoleCampaignManager}
	if _, err := svc2.Create(ctx, cm, campaign.NewCampaign{Name: "上传录音", Purpose: campaign.PurposeCheckin, CallerID: "12317",
		Script: campaign.Script{Questions: []campaign.Question{{ID: "q1", Prompt: "income_mp3.wav", Keys: "12"}}}}); err != nil {
		t.Fatalf("campaign with an uploaded prompt: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(other, "income_mp3.wav"))
	var stored []byte
	e.db.QueryRow(ctx, `SELECT wav FROM campaign_prompts WHERE name = 'income_mp3.wav'`).Scan(&stored)
	if !bytes.Equal(got, stored) || len(got) == 0 {
		t.Errorf("other process's copy: %d bytes, stored %d", len(got), len(stored))
	}
}

// TestCampaignOptOutList: a campaign manager adds a household with a reason; the live target count leaves it out;
// adding it again is a conflict; removing needs a reason; every change is in the log with who did it, which the
// database refuses to change; supervisors read the list but may not change it, agents do neither.
func TestCampaignOptOutList(t *testing.T) {
	e := newCampaignEnv(t, 3)
	ctx := context.Background()
	count := func() map[string]any {
		code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaigns/target-count", map[string]any{"purpose": "checkin", "target_query": map[string]any{"region_prefix": "43"}})
		if code != http.StatusOK {
			t.Fatalf("target count: %d %v", code, m)
		}
		return m
	}
	if m := count(); m["matched"] != 3.0 || m["targets"] != 3.0 || m["opted_out"] != 0.0 {
		t.Fatalf("count before: %v", m)
	}
	h := int64(e.hh[1])
	add := map[string]any{"household_id": h, "purpose": "checkin", "reason": "户主来电要求不再接听自动外呼"}
	if code, m, _ := e.do(t, e.sup, "POST", "/api/v1/campaign-optouts", add); code != http.StatusForbidden {
		t.Errorf("supervisor adds: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts", map[string]any{"household_id": h, "purpose": "sales"}); code != http.StatusBadRequest ||
		m["fields"].(map[string]any)["reason"] == nil || m["fields"].(map[string]any)["purpose"] == nil {
		t.Errorf("add without reason: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts", map[string]any{"household_id": 999999, "purpose": "checkin", "reason": "x"}); code != http.StatusNotFound {
		t.Errorf("unknown household: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts", add); code != http.StatusCreated || m["reason"] != add["reason"] {
		t.Fatalf("add: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts", add); code != http.StatusConflict {
		t.Errorf("add twice: %d %v", code, m)
	}
	if m := count(); m["matched"] != 3.0 || m["targets"] != 2.0 || m["opted_out"] != 1.0 {
		t.Errorf("count with an opt-out: %v", m)
	}
	code, m, _ := e.do(t, e.sup, "GET", "/api/v1/campaign-optouts", nil)
	list, _ := m["optouts"].([]any)
	if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["created_by_name"] != "campaign1姓名" {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _, _ := e.do(t, e.agent, "GET", "/api/v1/campaign-optouts", nil); code != http.StatusForbidden {
		t.Errorf("agent lists: %d", code)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts/remove", map[string]any{"household_id": h, "purpose": "checkin"}); code != http.StatusBadRequest {
		t.Errorf("remove without reason: %d %v", code, m)
	}
	rm := map[string]any{"household_id": h, "purpose": "checkin", "reason": "户主同意继续接受回访"}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts/remove", rm); code != http.StatusNoContent {
		t.Fatalf("remove: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaign-optouts/remove", rm); code != http.StatusNotFound {
		t.Errorf("remove twice: %d %v", code, m)
	}
	code, m, _ = e.do(t, e.sup, "GET", fmt.Sprintf("/api/v1/campaign-optouts/history?household_id=%d", h), nil)
	hist, _ := m["history"].([]any)
	if code != http.StatusOK || len(hist) != 2 {
		t.Fatalf("history: %d %v", code, m)
	}
	for i, want := range []map[string]any{{"action": "remove", "reason": rm["reason"]}, {"action": "add", "reason": add["reason"]}} {
		row := hist[i].(map[string]any)
		if row["action"] != want["action"] || row["reason"] != want["reason"] || row["actor_id"] != float64(e.cmID) || row["actor_name"] != "campaign1姓名" {
			t.Errorf("history[%d] = %v, want %v by campaign1", i, row, want)
		}
	}
	if _, err := e.db.Exec(ctx, `UPDATE campaign_optout_log SET reason = 'x'`); err == nil {
		t.Error("the opt-out log was changed")
	}
	if _, err := e.db.Exec(ctx, `DELETE FROM campaign_optout_log`); err == nil {
		t.Error("the opt-out log was deleted from")
	}
	if m := count(); m["targets"] != 3.0 {
		t.Errorf("count after removal: %v", m)
	}
}

// TestCampaignExports: the results table filters by outcome and risk, and the CSV and Excel exports hold the same
// filtered rows under a header naming the campaign and the filter; the workbook opens with excelize.
func TestCampaignExports(t *testing.T) {
	e := newCampaignEnv(t, 3)
	ctx := context.Background()
	body := map[string]any{"name": "收入回访导出", "purpose": "checkin", "caller_id": "12345", "optout_key": "9",
		"target_query": map[string]any{"region_prefix": "43"},
		"script":       map[string]any{"questions": []any{map[string]any{"id": "income", "prompt": "income_question.wav", "keys": "12", "risk_keys": "1"}}}}
	code, m, _ := e.do(t, e.cm, "POST", "/api/v1/campaigns", body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, m)
	}
	id := int(m["id"].(float64))
	base := "/api/v1/campaigns/" + strconv.Itoa(id)
	if code, m, _ := e.do(t, e.cm, "POST", base+"/launch", nil); code != http.StatusOK {
		t.Fatalf("launch: %d %v", code, m)
	}
	// What the dialer would have recorded: one risky answer, one harmless, one unreached.
	for i, upd := range []string{
		`state = 'completed', attempts = 1, last_outcome = 'answered', answers = '{"income":"1"}'`,
		`state = 'completed', attempts = 1, last_outcome = 'answered', answers = '{"income":"2"}'`,
		`state = 'exhausted', attempts = 3, last_outcome = 'no_answer'`,
	} {
		if _, err := e.db.Exec(ctx, `UPDATE campaign_targets SET `+upd+` WHERE campaign_id = $1 AND household_id = $2`, id, e.hh[i]); err != nil {
			t.Fatal(err)
		}
	}
	code, m, _ = e.do(t, e.sup, "GET", base+"/results?outcome=answered", nil)
	if code != http.StatusOK || m["total"] != 2.0 {
		t.Fatalf("results answered: %d %v", code, m)
	}
	code, m, _ = e.do(t, e.cm, "GET", base+"/results?risk=true", nil)
	rows, _ := m["rows"].([]any)
	if code != http.StatusOK || m["total"] != 1.0 || len(rows) != 1 || rows[0].(map[string]any)["household_id"] != float64(e.hh[0]) {
		t.Fatalf("results risk: %d %v", code, m)
	}
	if code, m, _ := e.do(t, e.cm, "GET", base+"/results?state=lost", nil); code != http.StatusBadRequest || m["fields"].(map[string]any)["state"] == nil {
		t.Errorf("bad state filter: %d %v", code, m)
	}
	if code, _, _ := e.get(t, e.agent, base+"/export.xlsx"); code != http.StatusForbidden {
		t.Errorf("agent exports: %d", code)
	}

	code, hdr, b := e.get(t, e.sup, base+"/export.csv?outcome=answered")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		t.Fatalf("csv: %d %s", code, hdr)
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	cr.FieldsPerRecord = -1 // the title lines are shorter than the table
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, b)
	}
	// Title (campaign, time, filter), a blank line is skipped by the reader, then header and two rows.
	if len(recs) != 6 || recs[0][1] != fmt.Sprintf("#%d 收入回访导出", id) || !strings.Contains(recs[2][1], "已接听") ||
		recs[3][0] != "监测户ID" || recs[3][7] != "题目 income" {
		t.Fatalf("csv records: %q", recs)
	}

	code, hdr, b = e.get(t, e.cm, base+"/export.xlsx")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("xlsx: %d %s", code, hdr)
	}
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("open xlsx: %v", err)
	}
	defer x.Close()
	xr, err := x.GetRows("外呼结果")
	if err != nil {
		t.Fatal(err)
	}
	// Rows: title 3, blank, header, three targets.
	if len(xr) != 8 || xr[0][1] != fmt.Sprintf("#%d 收入回访导出", id) || xr[2][1] != "全部" || xr[4][0] != "监测户ID" {
		t.Fatalf("xlsx rows: %q", xr)
	}
	want := map[string][]string{strconv.FormatInt(int64(e.hh[0]), 10): {"已完成", "已接听", "income", "1"},
		strconv.FormatInt(int64(e.hh[1]), 10): {"已完成", "已接听", "", "2"},
		strconv.FormatInt(int64(e.hh[2]), 10): {"未接通（已用尽次数）", "无人接听", "", ""}}
	for _, r := range xr[5:] {
		for len(r) < 8 {
			r = append(r, "")
		}
		w, ok := want[r[0]]
		if !ok || r[3] != w[0] || r[5] != w[1] || r[6] != w[2] || r[7] != w[3] {
			t.Errorf("xlsx row %q, want %q", r, w)
		}
	}
	if v, _ := x.GetCellValue("外呼结果", "E6"); v == "" {
		t.Error("attempts cell empty")
	}
}
