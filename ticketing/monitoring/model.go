package monitoring

import (
	"hotline/ticketing/org"
	"slices"
	"time"
)

// MonitoringType is the category a household is monitored under.
type MonitoringType string

const (
	TypeUnstable MonitoringType = "unstable" // 脱贫不稳定户
	TypeMarginal MonitoringType = "marginal" // 边缘易致贫户
	TypeSudden   MonitoringType = "sudden"   // 突发严重困难户
)

// MonitoringTypes lists the types with their Chinese names, in display order.
var MonitoringTypes = []Label[MonitoringType]{
	{TypeUnstable, "脱贫不稳定户"},
	{TypeMarginal, "边缘易致贫户"},
	{TypeSudden, "突发严重困难户"},
}

// RiskType is a cause of the risk of falling (back) into poverty.
type RiskType string

const (
	RiskIllness         RiskType = "illness"          // 因病
	RiskDisability      RiskType = "disability"       // 因残
	RiskSchooling       RiskType = "schooling"        // 因学
	RiskDisaster        RiskType = "disaster"         // 因灾
	RiskAccident        RiskType = "accident"         // 因意外事故
	RiskUnstableWork    RiskType = "unstable_work"    // 因务工就业不稳
	RiskIndustryFailure RiskType = "industry_failure" // 因产业项目失败
	RiskLabourShortage  RiskType = "labour_shortage"  // 缺劳动力
	RiskHousing         RiskType = "housing"          // 住房安全
	RiskWater           RiskType = "water"            // 饮水安全
	RiskOther           RiskType = "other"            // 其他
)

// RiskTypes lists the risk types with their Chinese names.
var RiskTypes = []Label[RiskType]{
	{RiskIllness, "因病"}, {RiskDisability, "因残"}, {RiskSchooling, "因学"}, {RiskDisaster, "因灾"},
	{RiskAccident, "因意外事故"}, {RiskUnstableWork, "因务工就业不稳"}, {RiskIndustryFailure, "因产业项目失败"},
	{RiskLabourShortage, "缺劳动力"}, {RiskHousing, "住房安全"}, {RiskWater, "饮水安全"}, {RiskOther, "其他"},
}

// Status is the household's place on the monitoring loop.
type Status string

const (
	StatusScreened       Status = "screened"        // 排查
	StatusVerified       Status = "verified"        // 核实
	StatusIdentified     Status = "identified"      // 认定
	StatusAssisted       Status = "assisted"        // 帮扶
	StatusRiskEliminated Status = "risk_eliminated" // 风险消除
	StatusNotIncluded    Status = "not_included"    // 不纳入
)

// Statuses lists the statuses with their Chinese names.
var Statuses = []Label[Status]{
	{StatusScreened, "排查"}, {StatusVerified, "核实"}, {StatusIdentified, "认定"}, {StatusAssisted, "帮扶"},
	{StatusRiskEliminated, "风险消除"}, {StatusNotIncluded, "不纳入"},
}

// Label pairs a code with its Chinese name.
type Label[T ~string] struct {
	Code T      `json:"code"`
	Name string `json:"name"`
}

// parseLabel accepts the code or the Chinese name.
func parseLabel[T ~string](labels []Label[T], s string) (T, bool) {
	for _, l := range labels {
		if string(l.Code) == s || l.Name == s {
			return l.Code, true
		}
	}
	return "", false
}

func nameOf[T ~string](labels []Label[T], c T) string {
	for _, l := range labels {
		if l.Code == c {
			return l.Name
		}
	}
	return string(c)
}

func (t MonitoringType) Valid() bool {
	_, ok := parseLabel(MonitoringTypes, string(t))
	return ok && t != ""
}
func (r RiskType) Valid() bool {
	return slices.ContainsFunc(RiskTypes, func(l Label[RiskType]) bool { return l.Code == r })
}
func (s Status) Valid() bool {
	return slices.ContainsFunc(Statuses, func(l Label[Status]) bool { return l.Code == s })
}

// Name returns the Chinese name.
func (t MonitoringType) Name() string { return nameOf(MonitoringTypes, t) }
func (r RiskType) Name() string       { return nameOf(RiskTypes, r) }
func (s Status) Name() string         { return nameOf(Statuses, s) }

// Household is a monitoring record as every read path returns it: personal data masked.
type Household struct {
	ID             org.HouseholdID `json:"id"`
	Number         string          `json:"number"`
	CountyCode     string          `json:"county_code"`
	TownshipCode   string          `json:"township_code"`
	RegionName     string          `json:"region_name"`
	Village        string          `json:"village"`
	Group          string          `json:"group"`
	Address        string          `json:"address"`
	HeadName       string          `json:"head_name"`
	MonitoringType MonitoringType  `json:"monitoring_type"`
	RiskTypes      []RiskType      `json:"risk_types"`
	CadreName      string          `json:"cadre_name"`
	CadrePhone     string          `json:"cadre_phone"` // masked
	Status         Status          `json:"status"`
	StatusAt       time.Time       `json:"status_at"`
	LeadAt         *time.Time      `json:"lead_at,omitempty"`
	PublicityKind  string          `json:"publicity_kind,omitempty"`
	PublicityUntil *time.Time      `json:"publicity_until,omitempty"`
	LastContactAt  *time.Time      `json:"last_contact_at,omitempty"`
	Version        int             `json:"version"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Clock          *Clock          `json:"clock,omitempty"`
	Members        []Member        `json:"members,omitempty"`
	Phones         []Phone         `json:"phones,omitempty"`
	Measures       []Measure       `json:"measures,omitempty"`
}

// Member of a household; IDNumber is masked (430903********1234).
type Member struct {
	Seq      int    `json:"seq"`
	Name     string `json:"name"`
	Relation string `json:"relation"`
	IDNumber string `json:"id_number"`
	Health   string `json:"health"`
	Labour   string `json:"labour"`
	InSchool bool   `json:"in_school"`
}

// Phone of a household; Number is masked (138****5678). MemberSeq names the member it belongs to, if known.
type Phone struct {
	Number    string `json:"number"`
	Kind      string `json:"kind"`
	MemberSeq *int   `json:"member_seq,omitempty"`
}

// Measure is an assistance measure (帮扶措施). Dates are YYYY-MM-DD.
type Measure struct {
	Type  string `json:"type"`
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
	Note  string `json:"note,omitempty"`
}
