package monitoring

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// Export writes the households matching q in the actor's scope as CSV in the import layout (UTF-8 with BOM, which
// spreadsheet programs open correctly), one row per member; q.Limit caps the number of households (0: all). ID
// and phone numbers are masked unless reveal is set, which needs PermRevealPII and a reason. Before anything is
// written, one row goes to the security audit log (who, filter, households) and, for a revealing export, one to
// pii_reveals.
func (s *Service) Export(ctx context.Context, actor org.Actor, q Query, reveal bool, reason string, w io.Writer) (int, error) {
	if reveal {
		if !actor.Can(org.PermRevealPII) {
			return 0, fmt.Errorf("export with full personal data: %w: needs the %s permission", org.ErrForbidden, org.PermRevealPII)
		}
		if strings.TrimSpace(reason) == "" {
			return 0, org.Invalid("reason", "required to export full personal data")
		}
	}
	if q.Limit < 0 {
		return 0, org.Invalid("limit", "must not be negative")
	}
	if strings.TrimSpace(q.Phone) != "" || strings.TrimSpace(q.IDNumber) != "" {
		if err := s.lookupAllowed(ctx, actor); err != nil {
			return 0, err
		}
	}
	sc, err := ScopeOf(ctx, s.db, actor)
	if err != nil {
		return 0, err
	}
	// First the matching IDs, so the audit rows can name every household that leaves.
	total := q.Limit
	var ids []org.HouseholdID
	pq := q
	pq.After = 0
	for total == 0 || len(ids) < total {
		pq.Limit = 500
		if total > 0 && total-len(ids) < 500 {
			pq.Limit = total - len(ids)
		}
		page, err := s.search(ctx, s.db, sc, pq)
		if err != nil {
			return 0, err
		}
		for _, h := range page.Households {
			ids = append(ids, h.ID)
		}
		if page.Next == nil {
			break
		}
		pq.After = *page.Next
	}
	detail := map[string]any{"filter": describeQuery(q), "reveal": reveal, "households": len(ids), "household_ids": ids}
	if reveal {
		detail["reason"] = strings.TrimSpace(reason)
		var auditID int64
		why := fmt.Sprintf("%s [export %s; %d households]", strings.TrimSpace(reason), describeQuery(q), len(ids))
		if err := writeAudit(ctx, s.db, actor, nil, nil, "export", why, s.now(), &auditID); err != nil {
			return 0, err
		}
		detail["pii_reveal_id"] = auditID
	}
	if err := org.Audit(ctx, s.db, actor, org.AuditEntry{Kind: org.AuditExport, Object: "households", Detail: detail}); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	header := make([]string, len(importColumns))
	for i, c := range importColumns {
		header[i] = c.names[1]
	}
	cw.Write(header)
	rowsOut := 0
	for len(ids) > 0 {
		chunk := ids[:min(500, len(ids))]
		ids = ids[len(chunk):]
		rows, _ := s.db.Query(ctx, `SELECT `+householdCols+` FROM households h WHERE h.id = ANY($1) ORDER BY h.id`, chunk)
		hs, err := pgx.CollectRows(rows, scanHousehold)
		if err != nil {
			return rowsOut, fmt.Errorf("export households: %w", err)
		}
		n, err := s.exportPage(ctx, cw, hs, reveal)
		rowsOut += n
		if err != nil {
			return rowsOut, err
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return rowsOut, err
		}
	}
	cw.Flush()
	return rowsOut, cw.Error()
}

// cell defuses spreadsheet formulas: a cell that starts with = + - @ (or a tab or carriage return, which some
// programs skip before looking) is prefixed with a single quote, so opening the export runs nothing (OWASP CSV
// injection).
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (s *Service) exportPage(ctx context.Context, cw *csv.Writer, hs []Household, reveal bool) (int, error) {
	ids := make([]int64, len(hs))
	for i, h := range hs {
		ids[i] = int64(h.ID)
	}
	encCol := "NULL::bytea"
	if reveal {
		encCol = "id_enc"
	}
	type mem struct {
		HID                  int64
		Seq                  int
		Name, Relation, Mask string
		Enc                  []byte
		Health, Labour       string
		InSchool             bool
	}
	rows, _ := s.db.Query(ctx, `SELECT household_id, seq, name, relation, id_mask, `+encCol+`, health, labour, in_school
		FROM household_members WHERE household_id = ANY($1) ORDER BY household_id, seq`, ids)
	mems, err := pgx.CollectRows(rows, pgx.RowToStructByPos[mem])
	if err != nil {
		return 0, fmt.Errorf("export members: %w", err)
	}
	type ph struct {
		HID  int64
		Mask string
		Enc  []byte
		Seq  *int
	}
	rows, _ = s.db.Query(ctx, `SELECT household_id, phone_mask, `+strings.Replace(encCol, "id_enc", "phone_enc", 1)+`, member_seq
		FROM household_phones WHERE household_id = ANY($1) ORDER BY household_id, phone_mask`, ids)
	phs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ph])
	if err != nil {
		return 0, fmt.Errorf("export phones: %w", err)
	}
	var cadreEnc map[int64][]byte
	if reveal {
		cadreEnc = map[int64][]byte{}
		rows, _ = s.db.Query(ctx, `SELECT id, cadre_phone_enc FROM households WHERE id = ANY($1) AND cadre_phone_enc IS NOT NULL`, ids)
		type ce struct {
			ID  int64
			Enc []byte
		}
		ces, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ce])
		if err != nil {
			return 0, err
		}
		for _, c := range ces {
			cadreEnc[c.ID] = c.Enc
		}
	}
	open := func(f pii.Field, mask string, enc []byte) string {
		if !reveal || enc == nil {
			return mask
		}
		v, err := s.box.Open(f, enc)
		if err != nil {
			return mask
		}
		return v
	}
	household := map[int64][]string{}    // household phones
	memberPhone := map[[2]int64]string{} // (household, seq) → phone
	for _, p := range phs {
		v := open(pii.FieldPhone, p.Mask, p.Enc)
		if p.Seq != nil {
			memberPhone[[2]int64{p.HID, int64(*p.Seq)}] = v
		} else {
			household[p.HID] = append(household[p.HID], v)
		}
	}
	byID := map[int64]Household{}
	for _, h := range hs {
		byID[int64(h.ID)] = h
	}
	n := 0
	for _, m := range mems {
		h := byID[m.HID]
		school := "否"
		if m.InSchool {
			school = "是"
		}
		risks := make([]string, len(h.RiskTypes))
		for i, r := range h.RiskTypes {
			risks[i] = r.Name()
		}
		rec := map[string]string{
			"number": h.Number, "county_code": h.CountyCode, "township_code": h.TownshipCode, "village": h.Village,
			"group": h.Group, "address": h.Address, "monitoring_type": h.MonitoringType.Name(),
			"risk_types": strings.Join(risks, "、"), "cadre_name": h.CadreName,
			"cadre_phone": open(pii.FieldPhone, h.CadrePhone, cadreEnc[m.HID]), "phones": strings.Join(household[m.HID], ";"),
			"member_name": m.Name, "relation": m.Relation, "id_number": open(pii.FieldIDNumber, m.Mask, m.Enc),
			"health": m.Health, "labour": m.Labour, "in_school": school,
			"member_phone": memberPhone[[2]int64{m.HID, int64(m.Seq)}],
		}
		row := make([]string, len(importColumns))
		for i, c := range importColumns {
			row[i] = cell(rec[c.key])
		}
		if err := cw.Write(row); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func describeQuery(q Query) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("name", q.Name)
	if q.Phone != "" {
		add("phone", "(given)")
	}
	add("id_last4", q.IDLast4)
	add("region", q.Region)
	add("monitoring_type", string(q.MonitoringType))
	add("risk_type", string(q.RiskType))
	add("status", string(q.Status))
	if q.NoContactDays > 0 {
		add("no_contact_days", fmt.Sprint(q.NoContactDays))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}
