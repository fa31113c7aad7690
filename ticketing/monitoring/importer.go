package monitoring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/encoding/simplifiedchinese"

	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// The CSV layout: one row per member; the household columns repeat on every row of the household (or are left
// empty after its first row). Headers may be in English or in Chinese as government spreadsheets name them.
var importColumns = []struct {
	key      string
	names    []string
	required bool
}{
	{"number", []string{"household_number", "户编号"}, true},
	{"county_code", []string{"county_code", "县级代码"}, false},
	{"township_code", []string{"township_code", "乡镇代码"}, true},
	{"village", []string{"village", "行政村"}, false},
	{"group", []string{"group", "村民小组"}, false},
	{"address", []string{"address", "住址"}, false},
	{"monitoring_type", []string{"monitoring_type", "监测对象类别"}, true},
	{"risk_types", []string{"risk_types", "风险类型"}, false},
	{"cadre_name", []string{"cadre_name", "帮扶干部"}, false},
	{"cadre_phone", []string{"cadre_phone", "帮扶干部电话"}, false},
	{"phones", []string{"phones", "联系电话"}, false},
	{"member_name", []string{"member_name", "姓名"}, true},
	{"relation", []string{"relation", "与户主关系"}, true},
	{"id_number", []string{"id_number", "身份证号"}, true},
	{"health", []string{"health", "健康状况"}, false},
	{"labour", []string{"labour", "劳动技能"}, false},
	{"in_school", []string{"in_school", "在校生"}, false},
	{"member_phone", []string{"member_phone", "本人电话"}, false},
}

// householdKeys are the columns that describe the household rather than the member.
var householdKeys = []string{"county_code", "township_code", "village", "group", "address", "monitoring_type",
	"risk_types", "cadre_name", "cadre_phone", "phones"}

// ImportReport says what an import did. Rejected lists every rejected row with its line number (the header is
// line 1) and reasons; a household with any rejected row is rejected whole.
type ImportReport struct {
	Encoding     string        `json:"encoding"` // utf-8 or gbk
	Rows         int           `json:"rows"`
	RowsAccepted int           `json:"rows_accepted"`
	Households   int           `json:"households"` // accepted households
	Created      int           `json:"created"`
	Updated      int           `json:"updated"`
	Unchanged    int           `json:"unchanged"`
	Rejected     []RejectedRow `json:"rejected"`
	// UnknownColumns lists header names the importer does not know, each with the nearest known name. A file
	// with any is refused (nothing written) unless the user confirms with AcceptUnknownColumns: a misspelt
	// column would otherwise drop its values without a word.
	UnknownColumns []UnknownColumn `json:"unknown_columns,omitempty"`
	Refused        bool            `json:"refused,omitempty"`
}

// UnknownColumn is a header the importer ignores.
type UnknownColumn struct {
	Column  string `json:"column"`
	Nearest string `json:"nearest"`
}

// ImportOptions are the user's answers to what an import asks.
type ImportOptions struct {
	AcceptUnknownColumns bool // import even though some columns are not known (they are ignored)
}

// RejectedRow is one row that was not imported.
type RejectedRow struct {
	Line      int      `json:"line"`
	Household string   `json:"household"`
	Reasons   []string `json:"reasons"`
}

// ErrFile is returned for a file that cannot be read as a household CSV at all.
var ErrFile = errors.New("not a household CSV file")

type importRow struct {
	line    int
	vals    map[string]string
	reasons []string
}

// decodeCSV returns the file's text as a stream in UTF-8: UTF-8 (with or without BOM) or GBK (GB 18030, its
// superset), told apart by the first 64 KiB. A file that starts as UTF-8 and later stops being so is refused at
// that point rather than read as garbage.
func decodeCSV(r io.Reader) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, "", fmt.Errorf("read import: %w", err)
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		head = head[3:]
	}
	if validUTF8Prefix(head) {
		return &utf8Checker{r: br}, "utf-8", nil
	}
	return simplifiedchinese.GB18030.NewDecoder().Reader(br), "gbk", nil
}

// validUTF8Prefix is utf8.Valid allowing a rune cut off at the end of the buffer.
func validUTF8Prefix(b []byte) bool {
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

// utf8Checker passes UTF-8 through and fails on the first invalid sequence.
type utf8Checker struct {
	r    io.Reader
	tail []byte // an incomplete rune carried to the next read
}

func (u *utf8Checker) Read(p []byte) (int, error) {
	if len(p) < 8 {
		return 0, io.ErrShortBuffer
	}
	n := copy(p, u.tail)
	u.tail = u.tail[:0]
	m, err := u.r.Read(p[n : len(p)-4])
	n += m
	chunk := p[:n]
	// Keep back an incomplete rune at the end unless the input ended.
	cut := n
	if err == nil {
		for k := 1; k <= 3 && k <= n; k++ {
			if utf8.RuneStart(chunk[n-k]) {
				if !utf8.FullRune(chunk[n-k:]) {
					cut = n - k
				}
				break
			}
		}
	}
	u.tail = append(u.tail, chunk[cut:]...)
	if !utf8.Valid(chunk[:cut]) {
		return 0, fmt.Errorf("%w: not valid UTF-8 (nor GBK from its start)", ErrFile)
	}
	return cut, err
}

// parseImport reads and validates every row; it returns the households that are whole and valid, in file order,
// and the report of rejected rows.
func parseImport(r io.Reader, now time.Time) ([]importHousehold, *ImportReport, error) {
	text, enc, err := decodeCSV(r)
	if err != nil {
		return nil, nil, err
	}
	rep := &ImportReport{Encoding: enc, Rejected: []RejectedRow{}}
	cr := csv.NewReader(text)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cannot read the header: %w", ErrFile, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		known := false
		for _, c := range importColumns {
			if slices.Contains(c.names, h) || slices.Contains(c.names, strings.ToLower(h)) {
				col[c.key] = i
				known = true
			}
		}
		if !known && h != "" {
			rep.UnknownColumns = append(rep.UnknownColumns, UnknownColumn{Column: h, Nearest: nearestColumn(h)})
		}
	}
	var missing []string
	for _, c := range importColumns {
		if _, ok := col[c.key]; c.required && !ok {
			missing = append(missing, c.names[0]+" ("+c.names[1]+")")
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%w: missing columns %s", ErrFile, strings.Join(missing, ", "))
	}

	var order []string
	groups := map[string][]*importRow{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rep.Rows++
				rep.Rejected = append(rep.Rejected, RejectedRow{Line: pe.StartLine, Reasons: []string{"malformed CSV: " + pe.Err.Error()}})
				continue
			}
			return nil, nil, fmt.Errorf("%w: %w", ErrFile, err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		rep.Rows++
		row := &importRow{line: line, vals: map[string]string{}}
		for k, i := range col {
			if i < len(rec) {
				row.vals[k] = strings.TrimSpace(rec[i])
			}
		}
		checkRow(row, now)
		num := row.vals["number"]
		if _, ok := groups[num]; !ok {
			order = append(order, num)
		}
		groups[num] = append(groups[num], row)
	}

	var out []importHousehold
	for _, num := range order {
		rows := groups[num]
		// Household columns may be left empty after the first row, but must not contradict it.
		first := rows[0]
		for _, r := range rows[1:] {
			for _, k := range householdKeys {
				if v := r.vals[k]; v != "" && first.vals[k] != "" && v != first.vals[k] && !(k == "county_code" && first.vals[k] == "") {
					r.reasons = append(r.reasons, fmt.Sprintf("%s %q differs from line %d (%q)", k, v, first.line, first.vals[k]))
				}
			}
		}
		for _, c := range importColumns {
			if !c.required || !slices.Contains(householdKeys, c.key) {
				continue
			}
			if !slices.ContainsFunc(rows, func(r *importRow) bool { return r.vals[c.key] != "" }) {
				first.reasons = append(first.reasons, fmt.Sprintf("%s (%s) is required", c.names[0], c.names[1]))
			}
		}
		var bad []int
		for _, r := range rows {
			if len(r.reasons) > 0 {
				bad = append(bad, r.line)
			}
		}
		if num == "" {
			for _, r := range rows {
				rep.Rejected = append(rep.Rejected, RejectedRow{Line: r.line, Reasons: r.reasons})
			}
			continue
		}
		if len(bad) == 0 {
			in := householdInput(rows)
			if rec, err := validate(in, now, false); err != nil {
				var ve *org.ValidationError
				if !errors.As(err, &ve) {
					return nil, nil, err
				}
				attributeErrors(rows, ve)
				for _, r := range rows {
					if len(r.reasons) > 0 {
						bad = append(bad, r.line)
					}
				}
			} else {
				out = append(out, importHousehold{in: in, rec: rec, lines: len(rows), rows: rows})
				rep.RowsAccepted += len(rows)
				continue
			}
		}
		for _, r := range rows {
			reasons := r.reasons
			if len(reasons) == 0 {
				reasons = []string{fmt.Sprintf("household %s has rejected rows (line %s); it is imported whole or not at all", num, joinInts(bad))}
			}
			rep.Rejected = append(rep.Rejected, RejectedRow{Line: r.line, Household: num, Reasons: reasons})
		}
	}
	slices.SortFunc(rep.Rejected, func(a, b RejectedRow) int { return a.Line - b.Line })
	rep.Households = len(out)
	return out, rep, nil
}

type importHousehold struct {
	in    HouseholdInput
	rec   *record // validated
	lines int
	rows  []*importRow // rows[i] is member i+1
}

// checkRow validates the fields of one row on their own, with reasons people can act on.
func checkRow(r *importRow, now time.Time) {
	bad := func(f string, args ...any) { r.reasons = append(r.reasons, fmt.Sprintf(f, args...)) }
	for _, c := range importColumns {
		// Household columns may be empty after the household's first row; parseImport checks them per household.
		if c.required && r.vals[c.key] == "" && !slices.Contains(householdKeys, c.key) {
			bad("%s (%s) is required", c.names[0], c.names[1])
		}
	}
	if n := r.vals["number"]; n != "" && !numberRE.MatchString(n) {
		bad("household_number %q must be 1-40 letters, digits, - or _", n)
	}
	if id := r.vals["id_number"]; id != "" {
		if _, err := idcard.Validate(id, now); err != nil {
			bad("id_number %q: %v", id, err)
		}
	}
	if t := r.vals["township_code"]; t != "" {
		if reg, ok := region.Lookup(t); !ok || reg.Level != region.LevelTownship {
			bad("township_code %q is not a known township code", t)
		} else if c := r.vals["county_code"]; c != "" && reg.ParentCode != c {
			bad("township_code %q is not in county %s", t, c)
		}
	}
	if c := r.vals["county_code"]; c != "" && region.County(c) != c {
		bad("county_code %q is not a county of Hunan", c)
	}
	if mt := r.vals["monitoring_type"]; mt != "" {
		if _, ok := parseLabel(MonitoringTypes, mt); !ok {
			bad("monitoring_type %q is not one of 脱贫不稳定户, 边缘易致贫户, 突发严重困难户", mt)
		}
	}
	for _, rt := range splitList(r.vals["risk_types"]) {
		if _, ok := parseLabel(RiskTypes, rt); !ok {
			bad("risk type %q is unknown", rt)
		}
	}
	for _, k := range []string{"cadre_phone", "member_phone"} {
		if p := r.vals[k]; p != "" {
			if _, _, err := normalizePhone(p); err != nil {
				bad("%s: %v", k, err)
			}
		}
	}
	for _, p := range splitList(r.vals["phones"]) {
		if _, _, err := normalizePhone(p); err != nil {
			bad("phones: %v", err)
		}
	}
	if s := r.vals["in_school"]; s != "" {
		if _, ok := parseBool(s); !ok {
			bad("in_school %q must be 是/否 (yes/no)", s)
		}
	}
}

// householdInput assembles a household from its rows (household columns from the first row that has them).
func householdInput(rows []*importRow) HouseholdInput {
	get := func(k string) string {
		for _, r := range rows {
			if v := r.vals[k]; v != "" {
				return v
			}
		}
		return ""
	}
	in := HouseholdInput{
		Number: rows[0].vals["number"], CountyCode: get("county_code"), TownshipCode: get("township_code"),
		Village: get("village"), Group: get("group"), Address: get("address"), MonitoringType: get("monitoring_type"),
		RiskTypes: splitList(get("risk_types")), CadreName: get("cadre_name"), CadrePhone: get("cadre_phone"),
	}
	for _, p := range splitList(get("phones")) {
		in.Phones = append(in.Phones, PhoneInput{Number: p})
	}
	for i, r := range rows {
		school, _ := parseBool(r.vals["in_school"])
		in.Members = append(in.Members, MemberInput{Seq: i + 1, Name: r.vals["member_name"], Relation: r.vals["relation"],
			IDNumber: r.vals["id_number"], Health: r.vals["health"], Labour: r.vals["labour"], InSchool: school,
			Phone: r.vals["member_phone"]})
	}
	return in
}

// attributeErrors puts household-level validation errors on the rows they concern: members[i] on row i, the
// rest on the first row.
func attributeErrors(rows []*importRow, ve *org.ValidationError) {
	keys := make([]string, 0, len(ve.Fields))
	for k := range ve.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		target := rows[0]
		var i int
		if _, err := fmt.Sscanf(k, "members[%d]", &i); err == nil && i < len(rows) {
			target = rows[i]
		}
		target.reasons = append(target.reasons, k+": "+ve.Fields[k])
	}
}

func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '；' || r == '、' || r == ',' || r == '，' || r == '|' })
	out := f[:0]
	for _, x := range f {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "是", "y", "yes", "true", "1":
		return true, true
	case "否", "n", "no", "false", "0", "":
		return false, true
	}
	return false, false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// importChunk is how many households one statement writes.
const importChunk = 2000

// Import reads a household CSV, validates every row, and writes the accepted households in one transaction,
// upserting by household number: a household whose content did not change is not written at all, so importing
// the same file again changes nothing. Rejected rows are listed in the report; they are not an error. A file
// with unknown columns is refused (see ImportWith).
func (s *Service) Import(ctx context.Context, actor org.Actor, r io.Reader) (ImportReport, error) {
	return s.ImportWith(ctx, actor, r, ImportOptions{})
}

// ImportWith is Import with the user's answers. Each household is checked against the actor's scope (its county
// in the file and, for a household already stored, its county now) and against ID numbers used elsewhere (twice
// in the file, or on another household in the database); a household that fails is rejected whole, with a
// reason on each of its rows.
func (s *Service) ImportWith(ctx context.Context, actor org.Actor, r io.Reader, opt ImportOptions) (ImportReport, error) {
	if err := editRole(actor); err != nil {
		return ImportReport{}, fmt.Errorf("import households: %w", err)
	}
	hs, rep, err := parseImport(r, s.now())
	if err != nil {
		return ImportReport{}, err
	}
	if len(rep.UnknownColumns) > 0 && !opt.AcceptUnknownColumns {
		rep.Refused = true
		rep.Households, rep.RowsAccepted = 0, 0
		return *rep, nil
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if hs, err = s.screenImport(ctx, tx, actor, hs, rep); err != nil {
			return err
		}
		for start := 0; start < len(hs); start += importChunk {
			chunk := hs[start:min(start+importChunk, len(hs))]
			changed, err := s.changedOnly(ctx, tx, chunk)
			if err != nil {
				return err
			}
			if len(changed) == 0 {
				continue
			}
			c, u, err := s.upsertChunk(ctx, tx, actor, sealAll(s.box, changed))
			if err != nil {
				return err
			}
			rep.Created += c
			rep.Updated += u
		}
		return org.Audit(ctx, tx, actor, org.AuditEntry{Kind: org.AuditImport, Object: "households", Detail: map[string]any{
			"rows": rep.Rows, "households": len(hs), "created": rep.Created, "updated": rep.Updated, "rejected_rows": len(rep.Rejected)}})
	})
	if err != nil {
		return ImportReport{}, err
	}
	rep.Unchanged = rep.Households - rep.Created - rep.Updated
	s.log.Info("households imported", "rows", rep.Rows, "rejected", len(rep.Rejected), "created", rep.Created,
		"updated", rep.Updated, "unchanged", rep.Unchanged, "actor", actor.Username)
	return *rep, nil
}

// screenImport drops the households the actor may not write or whose ID numbers are used twice, reporting each
// of their rows.
func (s *Service) screenImport(ctx context.Context, tx pgx.Tx, actor org.Actor, hs []importHousehold, rep *ImportReport) ([]importHousehold, error) {
	numbers := make([]string, len(hs))
	var hashes [][]byte
	byHash := map[string][]int{}   // ID hash → indexes of households in the file that carry it
	current := map[string]string{} // a stored hash (current or, during a key rotation, previous key) → current
	for i, h := range hs {
		numbers[i] = h.rec.Number
		for _, m := range h.rec.Members {
			all := s.box.Hashes(pii.FieldIDNumber, m.IDNumber)
			k := string(all[0])
			if len(byHash[k]) == 0 {
				hashes = append(hashes, all...)
				for _, a := range all {
					current[string(a)] = k
				}
			}
			byHash[k] = append(byHash[k], i)
		}
	}
	// Where each household is now (a row may not move a household out of another county).
	stored := map[string]string{}
	rows, _ := tx.Query(ctx, `SELECT number, county_code FROM households WHERE number = ANY($1)`, numbers)
	var num, county string
	if _, err := pgx.ForEachRow(rows, []any{&num, &county}, func() error { stored[num] = county; return nil }); err != nil {
		return nil, fmt.Errorf("import: read stored households: %w", err)
	}
	// ID numbers already on a household of another number.
	taken := map[string]string{}
	rows, _ = tx.Query(ctx, `SELECT m.id_hash, h.number FROM household_members m JOIN households h ON h.id = m.household_id
		WHERE m.id_hash = ANY($1)`, hashes)
	var hash []byte
	if _, err := pgx.ForEachRow(rows, []any{&hash, &num}, func() error { taken[current[string(hash)]] = num; return nil }); err != nil {
		return nil, fmt.Errorf("import: read ID numbers: %w", err)
	}
	scopeOK := map[string]error{}
	allowed := func(county string) error {
		if err, ok := scopeOK[county]; ok {
			return err
		}
		err := s.Authorize(ctx, tx, actor, AccessEdit, county)
		scopeOK[county] = err
		return err
	}
	out := hs[:0:0]
	for i, h := range hs {
		reasons := make([][]string, len(h.rows))
		refused := false
		if err := allowed(h.rec.CountyCode); err != nil {
			reasons[0] = append(reasons[0], fmt.Sprintf("county %s is outside your unit's area", h.rec.CountyCode))
			refused = true
		} else if c, ok := stored[h.rec.Number]; ok && c != h.rec.CountyCode && allowed(c) != nil {
			reasons[0] = append(reasons[0], fmt.Sprintf("household %s belongs to county %s, outside your unit's area", h.rec.Number, c))
			refused = true
		}
		for j, m := range h.rec.Members {
			k := string(s.box.Hash(pii.FieldIDNumber, m.IDNumber))
			for _, other := range byHash[k] {
				if other != i {
					reasons[j] = append(reasons[j], fmt.Sprintf("ID number also on household %s in this file", hs[other].rec.Number))
					refused = true
					break
				}
			}
			if n, ok := taken[k]; ok && n != h.rec.Number {
				reasons[j] = append(reasons[j], fmt.Sprintf("ID number already on household %s", n))
				refused = true
			}
			seen := 0
			for _, m2 := range h.rec.Members {
				if m2.IDNumber == m.IDNumber {
					seen++
				}
			}
			if seen > 1 {
				reasons[j] = append(reasons[j], "ID number given for two members of this household")
				refused = true
			}
		}
		if !refused {
			out = append(out, h)
			continue
		}
		rep.Households--
		rep.RowsAccepted -= len(h.rows)
		for j, r := range h.rows {
			why := reasons[min(j, len(reasons)-1)]
			if j >= len(reasons) || len(why) == 0 {
				why = []string{fmt.Sprintf("household %s has rejected rows; it is imported whole or not at all", h.rec.Number)}
			}
			rep.Rejected = append(rep.Rejected, RejectedRow{Line: r.line, Household: h.rec.Number, Reasons: why})
		}
	}
	slices.SortFunc(rep.Rejected, func(a, b RejectedRow) int { return a.Line - b.Line })
	return out, nil
}

// nearestColumn returns the known column name closest to an unknown header (edit distance), to suggest the fix.
func nearestColumn(h string) string {
	best, bestD := "", 1<<30
	lh := strings.ToLower(h)
	for _, c := range importColumns {
		for _, n := range c.names {
			if d := editDistance(lh, n); d < bestD {
				best, bestD = n, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance over runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// changedOnly drops the households whose stored digest equals the file's: an unchanged household is neither
// sealed again nor touched (not even row-locked), so re-importing a file writes nothing at all.
func (s *Service) changedOnly(ctx context.Context, tx pgx.Tx, hs []importHousehold) ([]*record, error) {
	numbers := make([]string, len(hs))
	for i, h := range hs {
		numbers[i] = h.rec.Number
	}
	rows, _ := tx.Query(ctx, `SELECT number, digest FROM households WHERE number = ANY($1)`, numbers)
	stored := map[string][]byte{}
	var number string
	var digest []byte
	_, err := pgx.ForEachRow(rows, []any{&number, &digest}, func() error {
		stored[number] = append([]byte(nil), digest...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import: read digests: %w", err)
	}
	var out []*record
	for _, h := range hs {
		if d, ok := stored[h.rec.Number]; ok && bytes.Equal(d, digestOf(s.box, h.rec)) {
			continue
		}
		out = append(out, h.rec)
	}
	return out, nil
}

// sealAll seals records on every CPU: AES-GCM and HMAC of each ID and phone number are most of an import's
// own CPU time.
func sealAll(box *pii.Box, recs []*record) []*sealed {
	out := make([]*sealed, len(recs))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(recs); i += workers {
				out[i] = seal(box, recs[i])
			}
		}(w)
	}
	wg.Wait()
	return out
}

func (s *Service) upsertChunk(ctx context.Context, tx pgx.Tx, actor org.Actor, recs []*sealed) (created, updated int, err error) {
	n := len(recs)
	num, cty, twn, vil, grp, adr, head, mt, rt, cn, cm := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	ce, dg := make([][]byte, n), make([][]byte, n)
	byNumber := map[string]*sealed{}
	for i, sl := range recs {
		r := sl.rec
		num[i], cty[i], twn[i], vil[i], grp[i], adr[i], head[i] = r.Number, r.CountyCode, r.TownshipCode, r.Village, r.Group, r.Address, r.HeadName
		mt[i], rt[i], cn[i], cm[i] = string(r.MonitoringType), strings.Join(riskStrings(r.RiskTypes), ","), r.CadreName, sl.cadreMask
		ce[i], dg[i] = sl.cadreEnc, sl.digest
		byNumber[r.Number] = sl
	}
	now := s.now()
	rows, _ := tx.Query(ctx, `INSERT INTO households AS h (number, county_code, township_code, village, grp, address,
			head_name, monitoring_type, risk_types, cadre_name, cadre_phone_enc, cadre_phone_mask, digest, status_at, created_at, updated_at)
		SELECT n, c, t, v, g, a, hd, mt, string_to_array(rt, ','), cn, ce, cm, d, $14, $14, $14
		  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		              $9::text[], $10::text[], $11::bytea[], $12::text[], $13::bytea[]) AS u(n, c, t, v, g, a, hd, mt, rt, cn, ce, cm, d)
		ON CONFLICT (number) DO UPDATE SET county_code = excluded.county_code, township_code = excluded.township_code,
			village = excluded.village, grp = excluded.grp, address = excluded.address, head_name = excluded.head_name,
			monitoring_type = excluded.monitoring_type, risk_types = excluded.risk_types, cadre_name = excluded.cadre_name,
			cadre_phone_enc = excluded.cadre_phone_enc, cadre_phone_mask = excluded.cadre_phone_mask,
			digest = excluded.digest, version = h.version + 1, updated_at = excluded.updated_at
		WHERE h.digest IS DISTINCT FROM excluded.digest
		RETURNING id, number, (xmax = 0)`, num, cty, twn, vil, grp, adr, head, mt, rt, cn, ce, cm, dg, now)
	type written struct {
		ID       int64
		Number   string
		Inserted bool
	}
	ws, err := pgx.CollectRows(rows, pgx.RowToStructByPos[written])
	if err != nil {
		return 0, 0, fmt.Errorf("import households: %w", err)
	}
	var ids, updatedIDs []int64
	var evHID []int64
	var evAction, evReason []string
	var changed []*sealed
	for _, w := range ws {
		ids = append(ids, w.ID)
		changed = append(changed, byNumber[w.Number])
		evHID = append(evHID, w.ID)
		if w.Inserted {
			created++
			evAction, evReason = append(evAction, "create"), append(evReason, "导入新建")
		} else {
			updated++
			updatedIDs = append(updatedIDs, w.ID)
			evAction, evReason = append(evAction, "update"), append(evReason, "导入更新")
		}
	}
	if len(updatedIDs) > 0 {
		if err := deleteChildren(ctx, tx, updatedIDs, false); err != nil {
			return 0, 0, err
		}
	}
	if err := writeChildren(ctx, tx, ids, changed); err != nil {
		return 0, 0, err
	}
	var actorID *int64
	if actor.UserID != 0 {
		v := int64(actor.UserID)
		actorID = &v
	}
	if len(evHID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO household_events (household_id, at, actor_id, actor_name, action, to_status, reason)
			SELECT hid, $2, $3, $4, act, CASE WHEN act = 'create' THEN 'screened' END, why
			  FROM unnest($1::bigint[], $5::text[], $6::text[]) AS u(hid, act, why)`,
			evHID, now, actorID, actorName(actor), evAction, evReason); err != nil {
			return 0, 0, fmt.Errorf("import events: %w", err)
		}
	}
	return created, updated, nil
}

func actorName(a org.Actor) string {
	if a.Name != "" {
		return a.Name
	}
	return a.Username
}
