package main

import (
	"context"
	"fmt"

	"hotline/ticketing/kb"
	"hotline/ticketing/org"
)

// demoArticles are knowledge-base answers of the kind the divisions keep (wording after the published policies;
// amounts and thresholds say where to check the current figure).
var demoArticles = []struct {
	owner string
	draft kb.Draft
}{
	{"div-development", kb.Draft{Title: "雨露计划职业教育补助", Tags: []string{"雨露计划", "教育帮扶", "中职", "高职"},
		Body: "对象：脱贫家庭（含防返贫监测对象家庭）子女，接受中等职业教育、高等职业教育（含技工院校）的在校学生。\n" +
			"标准：每生每年补助3000元，按春季、秋季两个学期发放，直接打入学生家庭的惠民惠农财政补贴“一卡通”。\n" +
			"申请：每学期开学后由学生本人或家长向户籍所在村（社区）提出，经乡镇审核、县级乡村振兴部门审批；需提供学籍证明。\n" +
			"答复要点：未到账的，先请来电人核对一卡通账号是否变更，再转所在县市区乡村振兴局核实发放批次。"}},
	{"div-development", kb.Draft{Title: "脱贫人口小额信贷政策要点", Tags: []string{"小额信贷", "产业帮扶", "贴息"},
		Body: "对象：有贷款意愿、有就业创业潜质和技能素质、有一定还款能力的脱贫户和边缘易致贫户等监测对象。\n" +
			"要点：5万元以下、3年期以内、免担保免抵押、基准利率放贷、财政贴息、县建风险补偿金。贷款资金用于发展生产和开展经营，不得用于建房、理财、购置家庭用品等非生产性支出。\n" +
			"到期困难：因病、因灾等客观原因不能按期还款的，可向经办银行申请续贷或展期，由县级乡村振兴部门协调。\n" +
			"答复要点：涉及具体额度和利率的，以经办银行和县级部门答复为准。"}},
	{"div-monitoring", kb.Draft{Title: "防返贫监测对象识别条件与程序", Tags: []string{"防返贫监测", "监测对象", "认定"},
		Body: "监测对象：脱贫不稳定户、边缘易致贫户，以及因病、因灾、因意外事故等刚性支出较大或收入大幅缩减导致基本生活出现严重困难的突发严重困难户。\n" +
			"监测范围：家庭年人均纯收入低于当年省定监测范围（以省乡村振兴部门公布的数为准），并综合考虑“三保障”和饮水安全状况。\n" +
			"程序：农户自主申报、基层干部排查、部门筛查预警三种方式发现，经入户核实、村级评议公示、乡镇审核、县级确认，原则上15日内完成认定。\n" +
			"答复要点：来电人认为应纳入而未纳入的，登记防返贫监测求助工单，由所在县市区乡村振兴局核实并答复。"}},
	{"div-monitoring", kb.Draft{Title: "监测对象风险消除标准", Tags: []string{"防返贫监测", "风险消除"},
		Body: "条件：收入持续稳定超过监测范围，“两不愁三保障”及饮水安全持续巩固，返贫致贫风险已稳定消除。\n" +
			"程序：村级评议、乡镇审核、县级确认，公示无异议后标注风险消除；对缺乏劳动能力的，落实兜底保障后再行评估。\n" +
			"答复要点：风险消除后帮扶政策不是一停了之，过渡期内主要帮扶政策保持总体稳定。"}},
	{"div-development", kb.Draft{Title: "乡村公益性岗位", Tags: []string{"公益性岗位", "就业帮扶"},
		Body: "对象：弱劳力、半劳力等家庭就业困难的脱贫人口和监测对象，优先安置。\n" +
			"岗位：护路、保洁、护林、水管、村级协管等，按月发放岗位补贴，签订协议并购买意外伤害保险。\n" +
			"答复要点：补贴未按时发放的，转所在县市区乡村振兴局核实用工单位和资金拨付情况。"}},
}

var demoTemplates = []kb.Template{
	{Category: "monitoring_help", Name: "已核实并纳入监测",
		Body: "{caller_name}您好：您于{created_at}反映的“{content}”（工单{number}），经{unit}入户核实，已按程序纳入防返贫监测并落实帮扶措施。感谢您的来电。"},
	{Category: "industry_credit", Name: "小额信贷续贷展期",
		Body: "{caller_name}您好：关于您反映的小额信贷到期还款问题（工单{number}），{unit}已协调经办银行，您可持身份证到经办网点申请续贷或展期。"},
	{Name: "通用办结答复", Body: "{caller_name}您好：您反映的“{content}”（工单{number}）已由{unit}办理完毕，办理结果如下：……。如有疑问请再次来电。"},
}

// demoKnowledge seeds the knowledge base and reply templates of `hotline up`.
func demoKnowledge(ctx context.Context, a *App) error {
	svc := kb.New(a.db, nil)
	admin := org.Actor{Role: org.RoleAdmin, Name: "系统管理员"}
	for _, d := range demoArticles {
		u, err := org.UnitByCode(ctx, a.db, d.owner)
		if err != nil {
			return fmt.Errorf("demo article %s: %w", d.draft.Title, err)
		}
		d.draft.OwnerUnitID, d.draft.Note = u.ID, "首次发布"
		if _, err := svc.Create(ctx, admin, d.draft); err != nil {
			return fmt.Errorf("demo article %s: %w", d.draft.Title, err)
		}
	}
	for _, t := range demoTemplates {
		if _, err := svc.SaveTemplate(ctx, admin, t); err != nil {
			return fmt.Errorf("demo reply template %s: %w", t.Name, err)
		}
	}
	return nil
}
