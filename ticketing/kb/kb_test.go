package kb_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/kb"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

func actor(t *testing.T, ctx context.Context, db org.DB, name string, role org.Role, unit string) org.Actor {
	t.Helper()
	u, err := org.UnitByCode(ctx, db, unit)
	if err != nil {
		t.Fatal(err)
	}
	usr, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	return usr.Actor()
}

// TestArticleVersions: a division writes an article, edits it twice; each version is kept with its words and
// note, an edit on a stale version is a conflict, another division and a county clerk cannot edit it, the
// history cannot be rewritten, an agent finds it by a Chinese word, and a retired article is no longer found.
func TestArticleVersions(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	svc := kb.New(db, nil)
	policy := actor(t, ctx, db, "policy1", org.RoleStaff, "div-policy")
	dev := actor(t, ctx, db, "dev1", org.RoleStaff, "div-development")
	county := actor(t, ctx, db, "heshan1", org.RoleStaff, "430903")
	agent := actor(t, ctx, db, "agent1", org.RoleAgent, org.CodeDesk)

	if _, err := svc.Create(ctx, county, kb.Draft{Title: "x", Body: "y"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a county clerk wrote an article: %v", err)
	}
	if _, err := svc.Create(ctx, agent, kb.Draft{Title: "x", Body: "y"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("an agent wrote an article: %v", err)
	}
	if _, err := svc.Create(ctx, policy, kb.Draft{Title: " ", Body: ""}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("empty article: %v", err)
	}
	ar, err := svc.Create(ctx, policy, kb.Draft{Title: "雨露计划补助标准", Body: "中职学生每人每年补助3000元，分春秋两季发放。",
		Tags: []string{"雨露计划", "教育"}, Note: "首次发布"})
	if err != nil {
		t.Fatal(err)
	}
	if ar.Version != 1 || ar.OwnerUnitID != policy.UnitID || ar.Status != kb.StatusPublished {
		t.Fatalf("created %+v", ar)
	}
	v2, err := svc.Update(ctx, policy, ar.ID, kb.Draft{Version: 1, Title: ar.Title, Body: "中职学生每人每年补助3500元，分春秋两季发放至一卡通。",
		Tags: ar.Tags, Note: "2026年标准调整"})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 {
		t.Fatalf("version %d after an edit", v2.Version)
	}
	if _, err := svc.Update(ctx, policy, ar.ID, kb.Draft{Version: 1, Title: "旧版本上的修改", Body: "z"}); !errors.Is(err, org.ErrConflict) {
		t.Fatalf("edit of a stale version: %v", err)
	}
	if _, err := svc.Update(ctx, dev, ar.ID, kb.Draft{Version: 2, Title: "他处修改", Body: "z"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("another division edited: %v", err)
	}
	hits, err := svc.Search(ctx, agent, "一卡通", false, 0)
	if err != nil || len(hits) != 1 || hits[0].ID != ar.ID || hits[0].Version != 2 {
		t.Fatalf("agent's search: %+v %v", hits, err)
	}
	if hits, _ := svc.Search(ctx, agent, "3000元", false, 0); len(hits) != 0 {
		t.Fatalf("the old text is still found: %+v", hits)
	}
	if _, err := svc.Update(ctx, policy, ar.ID, kb.Draft{Version: 2, Title: ar.Title, Body: v2.Body, Tags: ar.Tags,
		Status: kb.StatusRetired, Note: "政策到期"}); err != nil {
		t.Fatal(err)
	}
	if hits, _ := svc.Search(ctx, agent, "雨露计划", false, 0); len(hits) != 0 {
		t.Fatalf("a retired article is found: %+v", hits)
	}
	vs, err := svc.Versions(ctx, agent, ar.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Version != 3 || vs[2].Version != 1 || !strings.Contains(vs[2].Body, "3000元") ||
		vs[1].Note != "2026年标准调整" || vs[0].Status != kb.StatusRetired {
		t.Fatalf("history %+v", vs)
	}
	if one, err := svc.Versions(ctx, agent, ar.ID, 1); err != nil || len(one) != 1 || !strings.Contains(one[0].Body, "3000元") {
		t.Fatalf("version 1: %+v %v", one, err)
	}
	if _, err := db.Exec(ctx, `UPDATE kb_article_versions SET body = 'x'`); err == nil {
		t.Fatal("the history was rewritten")
	}
	if _, err := db.Exec(ctx, `DELETE FROM kb_article_versions`); err == nil {
		t.Fatal("the history was deleted")
	}
}

// TestReplyTemplates: an unknown placeholder is refused by name; a template renders from the ticket as the
// clerk sees it.
func TestReplyTemplates(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	svc := kb.New(db, nil)
	tsvc := ticketing.NewService(db, ticketing.Options{})
	head := actor(t, ctx, db, "heshanhead", org.RoleHead, "430903")
	clerk := actor(t, ctx, db, "heshan1", org.RoleStaff, "430903")
	if _, err := svc.SaveTemplate(ctx, clerk, kb.Template{Name: "x", Body: "y"}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a clerk edited templates: %v", err)
	}
	var ve *org.ValidationError
	if _, err := svc.SaveTemplate(ctx, head, kb.Template{Name: "坏模板", Body: "您好{caller}"}); !errors.As(err, &ve) ||
		!strings.Contains(ve.Fields["body"], "{caller}") {
		t.Fatalf("unknown placeholder: %v", err)
	}
	tpl, err := svc.SaveTemplate(ctx, head, kb.Template{Category: ticketing.CategoryMonitoringHelp, Name: "已核实",
		Body: "{caller_name}您好：您反映的“{content}”（工单{number}），经{unit}核实已办理。"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
		RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "房屋漏雨", Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Render(ctx, clerk, tsvc, tpl.ID, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "刘建国您好：您反映的“房屋漏雨”（工单" + tk.Number + "），经益阳市赫山区乡村振兴局核实已办理。"; got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	list, err := svc.Templates(ctx, clerk, ticketing.CategoryMonitoringHelp)
	if err != nil || len(list) != 1 {
		t.Fatalf("templates %v %v", list, err)
	}
}

// TestFirstContactCitesArticle: an agent closes a consultation at first contact citing the article version read
// out; the ticket's event keeps (id, version) even after the article changes; a version that does not exist is
// refused and nothing is written.
func TestFirstContactCitesArticle(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	svc := kb.New(db, nil)
	tsvc := ticketing.NewService(db, ticketing.Options{})
	policy := actor(t, ctx, db, "policy1", org.RoleStaff, "div-policy")
	agent := actor(t, ctx, db, "agent1", org.RoleAgent, org.CodeDesk)
	ar, err := svc.Create(ctx, policy, kb.Draft{Title: "小额信贷申请条件", Body: "建档立卡脱贫户和监测对象，5万元以下、3年以内、免担保免抵押。"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tsvc.Create(ctx, agent, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "王秀英", RegionCode: "430903",
		Kind: ticketing.KindConsultation, Category: "policy_question", Content: "咨询小额信贷怎么申请"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tsvc.Do(ctx, agent, tk.ID, ticketing.ActCloseFirstContact, ticketing.ActionInput{Version: tk.Version,
		Reply: "已按知识库解答", Cite: &ticketing.Citation{ArticleID: ar.ID, Version: 9}}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a version that does not exist: %v", err)
	}
	if _, err := tsvc.Do(ctx, agent, tk.ID, ticketing.ActCloseFirstContact, ticketing.ActionInput{Version: tk.Version,
		Reply: "已按知识库解答", Cite: &ticketing.Citation{ArticleID: ar.ID, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, policy, ar.ID, kb.Draft{Version: 1, Title: ar.Title, Body: "额度调整为10万元以下。"}); err != nil {
		t.Fatal(err)
	}
	evs, err := tsvc.Events(ctx, agent, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Action != "close_first_contact" || last.Data["kb_article_id"] != float64(ar.ID) || last.Data["kb_version"] != float64(1) {
		t.Fatalf("event %+v", last)
	}
	v1, err := svc.Versions(ctx, agent, ar.ID, 1)
	if err != nil || !strings.Contains(v1[0].Body, "5万元") {
		t.Fatalf("the cited words: %+v %v", v1, err)
	}
}
