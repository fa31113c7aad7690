package monitoring

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/region"
)

// Synthetic households for demos and load tests. Everything is derived from the household's index, so the same
// index always gives the same household (a load test can compute the phone of household i without asking the
// database). Phone numbers are in 1700xxxxxxx (mobile) and 0737-9xxxxxx (landline): blocks we reserve as test
// numbers in this project; ID numbers have valid check digits and real Hunan county prefixes.

var (
	surnames    = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜钟谭陆汪范金石廖贾夏付方邹熊秦邱江尹雷侯龙陶黎贺毛龚邵万严覃向汤")
	givenChars  = []rune("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰志强春生文斌海燕德胜永福小红金凤国庆")
	villages    = []string{"新华村", "红星村", "和平村", "向阳村", "石桥村", "长岭村", "桃花村", "枫林村", "大塘村", "龙泉村", "白沙村", "青山村"}
	healths     = []string{"健康", "健康", "健康", "长期慢性病", "大病", "残疾"}
	labours     = []string{"普通劳动力", "普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "丧失劳动力", "无劳动力"}
	measureList = []string{"产业帮扶", "就业帮扶", "健康帮扶", "教育帮扶", "综合保障", "金融帮扶", "消费帮扶"}

	townshipsOnce sync.Once
	townships     []region.Region
)

func demoTownships() []region.Region {
	townshipsOnce.Do(func() {
		for _, r := range region.All() {
			if r.Level == region.LevelTownship && region.County(r.Code) != "" {
				townships = append(townships, r)
			}
		}
	})
	return townships
}

// DemoPhone is the primary phone of synthetic household i. Every 50th household shares the phone of the one
// before it (a relative's phone), as real records do.
func DemoPhone(i int) string {
	if i%50 == 49 {
		i--
	}
	return fmt.Sprintf("1700%07d", i%10_000_000)
}

// DemoNumber is the household number of synthetic household i.
func DemoNumber(i int) string { return fmt.Sprintf("D%08d", i) }

// DemoHousehold returns synthetic household i.
func DemoHousehold(i int) HouseholdInput {
	rng := rand.New(rand.NewPCG(uint64(i), 0x686f746c696e65))
	ts := demoTownships()
	t := ts[rng.IntN(len(ts))]
	surname := string(surnames[rng.IntN(len(surnames))])
	if i == 0 {
		// The first household is in 赫山区 (430903), where the demo users heshan1 and heshanhead work, and is
		// the 刘建国 of the demo help ticket: its verification ticket lands in their queue.
		for _, r := range ts {
			if r.ParentCode == "430903" {
				t = r
				break
			}
		}
		surname = "刘"
	}
	name := func(sur string) string {
		n := sur + string(givenChars[rng.IntN(len(givenChars))])
		if rng.IntN(3) > 0 {
			n += string(givenChars[rng.IntN(len(givenChars))])
		}
		return n
	}
	id := func(birthYear int, seqParity int) string {
		birth := time.Date(birthYear, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		seq := rng.IntN(500)*2 + seqParity
		first := fmt.Sprintf("%s%s%03d", t.ParentCode, birth.Format("20060102"), seq)
		return first + string(idcard.CheckChar(first))
	}
	headYear := 1950 + rng.IntN(40)
	in := HouseholdInput{
		Number: DemoNumber(i), CountyCode: t.ParentCode, TownshipCode: t.Code,
		Village: villages[rng.IntN(len(villages))], Group: fmt.Sprintf("%d组", 1+rng.IntN(12)),
		MonitoringType: string(MonitoringTypes[rng.IntN(len(MonitoringTypes))].Code),
		CadreName:      name(string(surnames[rng.IntN(len(surnames))])),
		CadrePhone:     fmt.Sprintf("1701%07d", rng.IntN(10_000_000)),
	}
	in.Address = region.FullName(t.Code) + in.Village + in.Group
	for n := 1 + rng.IntN(2); n > 0; n-- {
		in.RiskTypes = append(in.RiskTypes, string(RiskTypes[rng.IntN(len(RiskTypes))].Code))
	}
	headName := name(surname)
	if i == 0 {
		headName = "刘建国"
	}
	in.Members = append(in.Members, MemberInput{Seq: 1, Name: headName, Relation: "户主", IDNumber: id(headYear, 1),
		Health: healths[rng.IntN(len(healths))], Labour: labours[rng.IntN(len(labours))], Phone: DemoPhone(i)})
	if rng.IntN(10) < 8 {
		in.Members = append(in.Members, MemberInput{Seq: 2, Name: name(string(surnames[rng.IntN(len(surnames))])), Relation: "配偶",
			IDNumber: id(headYear+rng.IntN(4), 0), Health: healths[rng.IntN(len(healths))], Labour: labours[rng.IntN(len(labours))]})
	}
	for c := rng.IntN(3); c > 0; c-- {
		year := headYear + 20 + rng.IntN(15)
		if year > 2022 {
			year = 2022
		}
		rel, par := "之子", 1
		if rng.IntN(2) == 0 {
			rel, par = "之女", 0
		}
		in.Members = append(in.Members, MemberInput{Seq: len(in.Members) + 1, Name: name(surname), Relation: rel,
			IDNumber: id(year, par), Health: "健康", Labour: "普通劳动力", InSchool: year > 2004})
	}
	if rng.IntN(10) == 0 {
		in.Phones = append(in.Phones, PhoneInput{Number: fmt.Sprintf("0737-9%06d", i%1_000_000)})
	}
	if rng.IntN(3) == 0 {
		in.Measures = append(in.Measures, Measure{Type: measureList[rng.IntN(len(measureList))], Start: "2025-03-01", Note: "示例措施"})
	}
	return in
}

// DemoCSV writes synthetic households [from, from+n) in the import layout (English headers).
func DemoCSV(from, n int) string {
	s, _ := demoCSV(from, n, 0)
	return s
}

// DemoCSVRows writes synthetic households from index from until the file has at least rows member rows; it
// returns the file and the number of households in it.
func DemoCSVRows(from, rows int) (string, int) {
	return demoCSV(from, 1<<62, rows)
}

func demoCSV(from, n, maxRows int) (string, int) {
	var b strings.Builder
	rows := 0
	for i, c := range importColumns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.names[0])
	}
	b.WriteByte('\n')
	i := from
	for ; i < from+n && (maxRows == 0 || rows < maxRows); i++ {
		h := DemoHousehold(i)
		rows += len(h.Members)
		var phones []string
		for _, p := range h.Phones {
			phones = append(phones, p.Number)
		}
		for j, m := range h.Members {
			school := "否"
			if m.InSchool {
				school = "是"
			}
			vals := []string{h.Number, h.CountyCode, h.TownshipCode, h.Village, h.Group, h.Address, h.MonitoringType,
				strings.Join(h.RiskTypes, ";"), h.CadreName, h.CadrePhone, strings.Join(phones, ";"),
				m.Name, m.Relation, m.IDNumber, m.Health, m.Labour, school, m.Phone}
			if j > 0 { // household columns only on the first row, as spreadsheets often have them
				for k := 1; k <= 10; k++ {
					vals[k] = ""
				}
			}
			b.WriteString(strings.Join(vals, ","))
			b.WriteByte('\n')
		}
	}
	return b.String(), i - from
}

// LoadDemo writes synthetic households [from, from+n) with COPY, in chunks, for demos and load tests (a million
// households in a few minutes on a small machine). It assigns household IDs itself, so it must not run while
// anything else creates households; it skips nothing, so run it on numbers not yet used (see DemoNext).
func (s *Service) LoadDemo(ctx context.Context, from, n int, progress func(done int)) error {
	const chunk = 20_000
	for start := from; start < from+n; start += chunk {
		end := min(start+chunk, from+n)
		recs := make([]*sealed, end-start)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		var firstErr error
		var mu sync.Mutex
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := start + w; i < end; i += workers {
					r, err := validate(DemoHousehold(i), s.now(), false)
					if err != nil {
						mu.Lock()
						firstErr = fmt.Errorf("synthetic household %d: %w", i, err)
						mu.Unlock()
						return
					}
					recs[i-start] = seal(s.box, r)
				}
			}(w)
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		if err := copyHouseholds(ctx, s.db, recs, s.now()); err != nil {
			return err
		}
		if progress != nil {
			progress(end - from)
		}
	}
	return nil
}

// DemoNext returns the index after the highest synthetic household number in the database.
func (s *Service) DemoNext(ctx context.Context) (int, error) {
	var next int
	err := s.db.QueryRow(ctx, `SELECT coalesce(max(substr(number, 2)::int) + 1, 0) FROM households WHERE number ~ '^D[0-9]{8}$'`).Scan(&next)
	return next, err
}

func copyHouseholds(ctx context.Context, db *pgxpool.Pool, recs []*sealed, now time.Time) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE households IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var base int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM households`).Scan(&base); err != nil {
			return err
		}
		// Synthetic ID numbers can collide (county, birth date and a 3-digit sequence drawn at random); one person
		// is on one household only (household_members_id_hash_uniq), so a household whose ID number is taken is
		// left out.
		var err error
		if recs, err = dropTakenIDs(ctx, tx, recs); err != nil {
			return err
		}
		i := -1
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"households"}, []string{"id", "number", "county_code", "township_code",
			"village", "grp", "address", "head_name", "monitoring_type", "risk_types", "cadre_name", "cadre_phone_enc",
			"cadre_phone_mask", "digest", "status_at", "created_at", "updated_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				i++
				if i >= len(recs) {
					return nil, nil
				}
				r := recs[i].rec
				return []any{base + int64(i) + 1, r.Number, r.CountyCode, r.TownshipCode, r.Village, r.Group, r.Address,
					r.HeadName, string(r.MonitoringType), riskStrings(r.RiskTypes), r.CadreName, recs[i].cadreEnc,
					recs[i].cadreMask, recs[i].digest, now, now, now}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy households: %w", err)
		}
		var mrows, prows, xrows [][]any
		for i, sl := range recs {
			hid := base + int64(i) + 1
			for j, m := range sl.rec.Members {
				mrows = append(mrows, []any{hid, int16(m.Seq), m.Name, m.Relation, sl.memEnc[j], sl.memHash[j],
					sl.memMask[j], sl.memLast4[j], m.Health, m.Labour, m.InSchool})
			}
			for j, p := range sl.rec.Phones {
				var seq *int16
				if p.MemberSeq != nil {
					v := int16(*p.MemberSeq)
					seq = &v
				}
				prows = append(prows, []any{hid, sl.phoneHsh[j], sl.phoneEnc[j], sl.phoneMask[j], p.Kind, seq})
			}
			for j, m := range sl.rec.Measures {
				xrows = append(xrows, []any{hid, int16(j + 1), m.Type, m.Start, m.End, m.Note})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"household_members"}, []string{"household_id", "seq", "name",
			"relation", "id_enc", "id_hash", "id_mask", "id_last4", "health", "labour", "in_school"}, pgx.CopyFromRows(mrows)); err != nil {
			return fmt.Errorf("copy members: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"household_phones"}, []string{"household_id", "phone_hash",
			"phone_enc", "phone_mask", "kind", "member_seq"}, pgx.CopyFromRows(prows)); err != nil {
			return fmt.Errorf("copy phones: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"household_measures"}, []string{"household_id", "seq", "type",
			"start_date", "end_date", "note"}, pgx.CopyFromRows(xrows)); err != nil {
			return fmt.Errorf("copy measures: %w", err)
		}
		_, err = tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('households', 'id'), (SELECT max(id) FROM households))`)
		return err
	})
}

// dropTakenIDs leaves out the records with an ID number already stored or used by an earlier record.
func dropTakenIDs(ctx context.Context, tx pgx.Tx, recs []*sealed) ([]*sealed, error) {
	var hashes [][]byte
	for _, sl := range recs {
		hashes = append(hashes, sl.memHash...)
	}
	rows, _ := tx.Query(ctx, `SELECT id_hash FROM household_members WHERE id_hash = ANY($1)`, hashes)
	taken := map[string]bool{}
	var h []byte
	if _, err := pgx.ForEachRow(rows, []any{&h}, func() error { taken[string(h)] = true; return nil }); err != nil {
		return nil, fmt.Errorf("demo households: taken ID numbers: %w", err)
	}
	out := recs[:0:0]
	for _, sl := range recs {
		clash := false
		own := map[string]bool{}
		for _, mh := range sl.memHash {
			clash = clash || taken[string(mh)] || own[string(mh)]
			own[string(mh)] = true
		}
		if clash {
			continue
		}
		for _, mh := range sl.memHash {
			taken[string(mh)] = true
		}
		out = append(out, sl)
	}
	return out, nil
}
