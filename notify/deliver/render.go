package deliver

import (
	"regexp"
	"strings"
)

// placeholder is {name}: lower-case letters, digits and underscores.
var placeholder = regexp.MustCompile(`\{([a-z0-9_]+)\}`)

// render replaces each {name} with vars[name]; unknown names are left as they are so a preview shows them.
func render(text string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		if v, ok := vars[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// unknownPlaceholders lists the names text uses that vars does not know.
func unknownPlaceholders(text string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		if !knownVars[m[1]] {
			out = append(out, m[1])
		}
	}
	return out
}

// knownVars are the placeholders a template may use. lead_unit is the ticket's lead unit (主办单位): in a
// co-opinion alert (sla.co_*) unit is the co-unit it goes to and due_at that co-unit's own deadline.
var knownVars = map[string]bool{"number": true, "query_code": true, "query_url": true, "unit": true, "kind": true,
	"category": true, "urgency": true, "due_at": true, "due_kind": true, "status": true, "date": true, "time": true,
	"pending": true, "due_today": true, "overdue": true, "lead_unit": true}

// sampleVars fill previews.
var sampleVars = map[string]string{"number": "20261201-0042", "query_code": "7KQ2M9XH4D", "query_url": "https://12345.hunan.gov.cn/query",
	"unit": "赫山区农业农村局", "kind": "求助", "category": "防返贫监测求助", "urgency": "普通", "due_at": "12月2日 17:30",
	"due_kind": "签收", "status": "已派单", "date": "2026-12-01", "time": "08:30", "pending": "3", "due_today": "1", "overdue": "0",
	"lead_unit": "赫山区乡村振兴局"}

var kindNames = map[string]string{"consultation": "咨询", "help": "求助", "complaint": "投诉", "report": "举报", "suggestion": "建议"}
var urgencyNames = map[string]string{"normal": "普通", "urgent": "紧急"}
var dueKindNames = map[string]string{"sign": "签收", "reply": "答复", "callback": "回访"}
var statusNames = map[string]string{"new": "已受理", "dispatched": "已派单", "signed": "已签收", "replied": "已答复",
	"callback": "回访中", "closed": "已办结", "returned": "已退单"}

func nameOr(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// smsParams are the values of a registered template's placeholders in its order.
func smsParams(names []string, vars map[string]string) [][2]string {
	out := make([][2]string, 0, len(names))
	for _, n := range names {
		out = append(out, [2]string{n, vars[strings.TrimSpace(n)]})
	}
	return out
}

var templateName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
