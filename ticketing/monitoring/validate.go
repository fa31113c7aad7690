package monitoring

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"hotline/ticketing/region"
)

// HouseholdInput is a household as written by the API and by imports. On update, a member's id_number or a
// phone's number that is empty or still masked (contains '*') keeps the stored value, so a client can send back
// what it read without ever holding the full numbers.
type HouseholdInput struct {
	Number         string        `json:"number"`
	CountyCode     string        `json:"county_code"`
	TownshipCode   string        `json:"township_code"`
	Village        string        `json:"village"`
	Group          string        `json:"group"`
	Address        string        `json:"address"`
	MonitoringType string        `json:"monitoring_type"` // code or Chinese name
	RiskTypes      []string      `json:"risk_types"`      // codes or Chinese names
	CadreName      string        `json:"cadre_name"`
	CadrePhone     string        `json:"cadre_phone"`
	Members        []MemberInput `json:"members"`
	Phones         []PhoneInput  `json:"phones"`
	Measures       []Measure     `json:"measures"`
}

// MemberInput is one member; Seq (1-based) is the member's place in the household and identifies it on update.
type MemberInput struct {
	Seq      int    `json:"seq,omitempty"`
	Name     string `json:"name"`
	Relation string `json:"relation"`
	IDNumber string `json:"id_number"`
	Health   string `json:"health,omitempty"`
	Labour   string `json:"labour,omitempty"`
	InSchool bool   `json:"in_school,omitempty"`
	Phone    string `json:"phone,omitempty"` // the member's own phone, added to the household's phones
}

// PhoneInput is one phone of the household, optionally of a member (by seq).
type PhoneInput struct {
	Number    string `json:"number"`
	MemberSeq *int   `json:"member_seq,omitempty"`
}

// headRelations are the relations that make a member the head of household.
var headRelations = []string{"户主", "本人", "head"}

var numberRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,40}$`)

// record is a validated household: normalised plaintext, not yet sealed.
type record struct {
	Number         string         `json:"n"`
	CountyCode     string         `json:"c"`
	TownshipCode   string         `json:"t"`
	Village        string         `json:"v"`
	Group          string         `json:"g"`
	Address        string         `json:"a"`
	HeadName       string         `json:"h"`
	MonitoringType MonitoringType `json:"mt"`
	RiskTypes      []RiskType     `json:"rt"`
	CadreName      string         `json:"cn"`
	CadrePhone     string         `json:"cp"`
	Members        []recordMember `json:"m"`
	Phones         []recordPhone  `json:"p"`
	// Measures are kept out of the digest: the import file does not carry them, so an import neither sees them
	// as a change nor replaces them.
	Measures []recordMeasure `json:"-"`
}

type recordMember struct {
	Seq      int    `json:"s"`
	Name     string `json:"n"`
	Relation string `json:"r"`
	IDNumber string `json:"i"` // full, or "" with keep set
	Health   string `json:"h"`
	Labour   string `json:"l"`
	InSchool bool   `json:"sc"`
	keep     bool   // update: keep the stored ID number of this seq
}

type recordPhone struct {
	Number    string `json:"n"` // normalised, or the mask with keep set
	Kind      string `json:"k"`
	MemberSeq *int   `json:"m"`
	keep      bool
}

type recordMeasure struct {
	Type  string     `json:"t"`
	Start *time.Time `json:"s"`
	End   *time.Time `json:"e"`
	Note  string     `json:"n"`
}

func masked(s string) bool { return strings.Contains(s, "*") }

// validate checks and normalises a household. allowKeep permits masked/empty ID numbers and phones (update).
// Field names in the error are those of the JSON input (members[0].id_number).
func validate(in HouseholdInput, now time.Time, allowKeep bool) (*record, error) {
	v := &org.ValidationError{}
	r := &record{
		Number:       strings.TrimSpace(in.Number),
		CountyCode:   strings.TrimSpace(in.CountyCode),
		TownshipCode: strings.TrimSpace(in.TownshipCode),
		Village:      strings.TrimSpace(in.Village),
		Group:        strings.TrimSpace(in.Group),
		Address:      strings.TrimSpace(in.Address),
		CadreName:    strings.TrimSpace(in.CadreName),
	}
	switch {
	case r.Number == "":
		v.Add("number", "required")
	case !numberRE.MatchString(r.Number):
		v.Add("number", "must be 1-40 letters, digits, - or _")
	}
	if r.CountyCode == "" && len(r.TownshipCode) == 9 {
		r.CountyCode = r.TownshipCode[:6]
	}
	switch {
	case r.CountyCode == "":
		v.Add("county_code", "required")
	case region.County(r.CountyCode) != r.CountyCode:
		v.Add("county_code", fmt.Sprintf("%q is not a county of Hunan", r.CountyCode))
	}
	switch t, ok := region.Lookup(r.TownshipCode); {
	case r.TownshipCode == "":
		v.Add("township_code", "required")
	case !ok || t.Level != region.LevelTownship:
		v.Add("township_code", fmt.Sprintf("%q is not a known township code", r.TownshipCode))
	case r.CountyCode != "" && t.ParentCode != r.CountyCode:
		v.Add("township_code", fmt.Sprintf("%q is not in county %s", r.TownshipCode, r.CountyCode))
	}
	if mt, ok := parseLabel(MonitoringTypes, strings.TrimSpace(in.MonitoringType)); ok {
		r.MonitoringType = mt
	} else if strings.TrimSpace(in.MonitoringType) == "" {
		v.Add("monitoring_type", "required")
	} else {
		v.Add("monitoring_type", fmt.Sprintf("%q is not a monitoring type (脱贫不稳定户, 边缘易致贫户, 突发严重困难户)", in.MonitoringType))
	}
	for _, s := range in.RiskTypes {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		rt, ok := parseLabel(RiskTypes, s)
		if !ok {
			v.Add("risk_types", fmt.Sprintf("%q is not a risk type", s))
			continue
		}
		if !slices.Contains(r.RiskTypes, rt) {
			r.RiskTypes = append(r.RiskTypes, rt)
		}
	}
	slices.Sort(r.RiskTypes)
	if s := strings.TrimSpace(in.CadrePhone); s != "" {
		if masked(s) && allowKeep {
			r.CadrePhone = s
		} else if n, _, err := normalizePhone(s); err != nil {
			v.Add("cadre_phone", err.Error())
		} else {
			r.CadrePhone = n
		}
	}
	if len(in.Members) == 0 {
		v.Add("members", "at least one member (the head of household) is required")
	}
	seen := map[int]bool{}
	ids := map[string]int{}
	var phones []PhoneInput
	for i, m := range in.Members {
		f := func(name string) string { return fmt.Sprintf("members[%d].%s", i, name) }
		rm := recordMember{Seq: m.Seq, Name: strings.TrimSpace(m.Name), Relation: strings.TrimSpace(m.Relation),
			Health: strings.TrimSpace(m.Health), Labour: strings.TrimSpace(m.Labour), InSchool: m.InSchool}
		if rm.Seq == 0 {
			rm.Seq = i + 1
		}
		if rm.Seq < 1 || rm.Seq > 99 || seen[rm.Seq] {
			v.Add(f("seq"), "must be a distinct number from 1 to 99")
		}
		seen[rm.Seq] = true
		if rm.Name == "" {
			v.Add(f("name"), "required")
		} else if len([]rune(rm.Name)) > 40 {
			v.Add(f("name"), "at most 40 characters")
		}
		if rm.Relation == "" {
			v.Add(f("relation"), "required")
		}
		id := strings.TrimSpace(m.IDNumber)
		switch {
		case allowKeep && m.Seq != 0 && (id == "" || masked(id)):
			rm.keep = true
		case id == "":
			v.Add(f("id_number"), "required")
		default:
			n, err := idcard.Validate(id, now)
			if err != nil {
				v.Add(f("id_number"), err.Error())
			} else if j, dup := ids[n]; dup {
				v.Add(f("id_number"), fmt.Sprintf("same ID number as member %d", j+1))
			} else {
				ids[n] = i
				rm.IDNumber = n
			}
		}
		if p := strings.TrimSpace(m.Phone); p != "" {
			seq := rm.Seq
			phones = append(phones, PhoneInput{Number: p, MemberSeq: &seq})
		}
		r.Members = append(r.Members, rm)
	}
	heads := 0
	for _, m := range r.Members {
		if slices.Contains(headRelations, m.Relation) {
			heads++
			if r.HeadName == "" {
				r.HeadName = m.Name
			}
		}
	}
	if len(r.Members) > 0 && heads != 1 {
		v.Add("members", fmt.Sprintf("exactly one member must be the head of household (户主); found %d", heads))
	}
	phones = append(slices.Clone(in.Phones), phones...)
	seenPhone := map[string]bool{}
	for i, p := range phones {
		field := fmt.Sprintf("phones[%d]", i)
		if i >= len(in.Phones) {
			field = fmt.Sprintf("members[%d].phone", memberIndex(in.Members, *p.MemberSeq))
		}
		s := strings.TrimSpace(p.Number)
		if p.MemberSeq != nil && !seen[*p.MemberSeq] {
			v.Add(field, fmt.Sprintf("member %d does not exist", *p.MemberSeq))
		}
		var rp recordPhone
		if allowKeep && masked(s) {
			rp = recordPhone{Number: s, MemberSeq: p.MemberSeq, keep: true}
		} else {
			n, kind, err := normalizePhone(s)
			if err != nil {
				v.Add(field, err.Error())
				continue
			}
			rp = recordPhone{Number: n, Kind: string(kind), MemberSeq: p.MemberSeq}
		}
		if seenPhone[rp.Number] {
			continue // one phone listed twice (household and member): keep the first
		}
		seenPhone[rp.Number] = true
		r.Phones = append(r.Phones, rp)
	}
	for i, m := range in.Measures {
		f := func(name string) string { return fmt.Sprintf("measures[%d].%s", i, name) }
		rm := recordMeasure{Type: strings.TrimSpace(m.Type), Note: strings.TrimSpace(m.Note)}
		if rm.Type == "" {
			v.Add(f("type"), "required")
		}
		for _, d := range []struct {
			name string
			s    string
			to   **time.Time
		}{{"start", m.Start, &rm.Start}, {"end", m.End, &rm.End}} {
			if strings.TrimSpace(d.s) == "" {
				continue
			}
			t, err := time.Parse(time.DateOnly, strings.TrimSpace(d.s))
			if err != nil {
				v.Add(f(d.name), "must be a date YYYY-MM-DD")
				continue
			}
			*d.to = &t
		}
		if rm.Start != nil && rm.End != nil && rm.End.Before(*rm.Start) {
			v.Add(f("end"), "is before start")
		}
		r.Measures = append(r.Measures, rm)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func memberIndex(ms []MemberInput, seq int) int {
	for i, m := range ms {
		if m.Seq == seq || (m.Seq == 0 && i+1 == seq) {
			return i
		}
	}
	return 0
}

// normalizePhone accepts mobile and landline numbers (a service number such as 12345 is nobody's phone).
func normalizePhone(s string) (string, phone.Kind, error) {
	n, kind, err := phone.Normalize(s)
	if err != nil || kind == phone.Service {
		return "", "", fmt.Errorf("%q is not a mobile or landline number", s)
	}
	return n, kind, nil
}

// sealed is a record with its personal data sealed, ready to write.
type sealed struct {
	rec                *record
	digest             []byte
	cadreEnc           []byte
	cadreMask          string
	memEnc, memHash    [][]byte
	memMask, memLast4  []string
	phoneEnc, phoneHsh [][]byte
	phoneMask          []string
}

// digestOf is the keyed digest of a record's content (measures excluded): equal content, equal digest.
func digestOf(box *pii.Box, r *record) []byte {
	b, _ := json.Marshal(r)
	return box.Digest(b)
}

// seal encrypts a record whose kept values have been resolved.
func seal(box *pii.Box, r *record) *sealed {
	s := &sealed{rec: r, digest: digestOf(box, r)}
	if r.CadrePhone != "" {
		s.cadreEnc = box.Seal(pii.FieldPhone, r.CadrePhone)
		s.cadreMask = phone.Mask(r.CadrePhone)
	}
	for _, m := range r.Members {
		s.memEnc = append(s.memEnc, box.Seal(pii.FieldIDNumber, m.IDNumber))
		s.memHash = append(s.memHash, box.Hash(pii.FieldIDNumber, m.IDNumber))
		s.memMask = append(s.memMask, idcard.Mask(m.IDNumber))
		s.memLast4 = append(s.memLast4, idcard.Last4(m.IDNumber))
	}
	for _, p := range r.Phones {
		s.phoneEnc = append(s.phoneEnc, box.Seal(pii.FieldPhone, p.Number))
		s.phoneHsh = append(s.phoneHsh, box.Hash(pii.FieldPhone, p.Number))
		s.phoneMask = append(s.phoneMask, phone.Mask(p.Number))
	}
	return s
}
