// Command loadsearch measures the ticket search (ticketing.Filter.Text over the ticket_search index) at scale: it
// generates N tickets with Chinese content, caller names and replies with one INSERT … generate_series (the
// search rows and ticket_units rows by one statement each, from the same SQL functions the triggers use), then
// times searches for names, words of the content and of replies, one at a time, through ticketing.Service.List
// as an admin (whole province), as two county clerks (unit scope): 赫山区's, whose unit leads one ticket in ten
// and co-handles one in about 120, and 资阳区's, whose unit has none, as a clerk of 益阳市's bureau (赫山区's
// prefecture: its own tickets and its counties'), and as an admin filtering on 赫山区 (the tickets it leads). With -compare-trgm it builds the pg_trgm GIN alternative over the same text and
// times the same queries with LIKE. It starts its own PostgreSQL (deploy/localrt, loopback only) unless
// -database-url is given, and stops by itself.
//
//	go run ./cmd/loadsearch -tickets 1000000 -queries 2000 -compare-trgm
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/localrt"
	"hotline/migrations"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// The vocabulary of the generated tickets: content is a village, a matter and a request; replies name a measure.
var (
	surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗",
		"梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹", "袁", "邓", "许", "傅", "沈", "曾", "彭", "吕", "欧阳", "司马"}
	given = []string{"建国", "秀英", "桂英", "志强", "海燕", "春梅", "国华", "德明", "玉兰", "小军", "红霞", "文斌", "丽娟", "永福", "金花",
		"立新", "爱民", "淑珍", "家豪", "子涵", "雨桐", "振华", "美玲", "国庆", "卫东", "晓明", "凤英", "长青", "光荣", "秋菊"}
	villages = []string{"龙光桥", "泉交河", "沧水铺", "新市渡", "笔架山", "兰溪", "欧江岔", "衡龙桥", "岳家桥", "八字哨", "会龙山", "谢林港",
		"梅城", "清塘铺", "烟溪", "马迹塘", "羊角", "大福", "江南", "小淹"}
	matters = []string{"家中老人生病住院医疗费用负担重", "雨露计划中职补助未到账", "小额信贷到期无力偿还", "房屋漏雨属于危房",
		"饮水工程停水多日", "孩子上学交不起生活费", "务工工资被拖欠", "光伏电站收益未分配", "产业奖补资金未发放", "易地搬迁安置房漏水",
		"低保被取消", "残疾人补贴未领到", "养殖场遭受洪灾", "茶叶合作社分红不透明", "村道硬化工程烂尾", "防返贫监测户认定不公",
		"公益性岗位工资未发", "危房改造补助被截留", "驻村工作队长期不在岗", "厕所改造质量差"}
	requests = []string{"请求核实帮扶", "请求尽快解决", "希望纳入监测", "请予答复", "要求查处", "咨询申请条件"}
	replies  = []string{"经核实已纳入防返贫监测并落实医疗救助", "补助已于本月拨付至一卡通", "已协调银行办理续贷展期",
		"已列入危房改造计划近期施工", "已安排维修供水管网恢复供水", "已落实教育资助每学期补助", "已督促企业结清工资",
		"光伏收益已按村规民约分配公示", "奖补资金已审核待拨付", "已通知施工单位返修", "经调查不符合条件已当面解释"}
)

func main() {
	var (
		dbURL   = flag.String("database-url", "", "PostgreSQL to use (default: a private one in a temporary directory)")
		n       = flag.Int("tickets", 1_000_000, "tickets to generate")
		queries = flag.Int("queries", 2000, "searches to time per actor")
		trgm    = flag.Bool("compare-trgm", false, "also build a pg_trgm GIN index over the same text and time the same searches with LIKE")
	)
	flag.Parse()
	ctx := context.Background()
	url := *dbURL
	if url == "" {
		dir, err := os.MkdirTemp("", "loadsearch-")
		if err != nil {
			fatal(err)
		}
		_ = os.Chmod(dir, 0o755) // #nosec G302 -- the postgres user must enter it
		defer os.RemoveAll(dir)
		rt, err := localrt.Start(ctx, localrt.Options{Dir: filepath.Join(dir, "data"), PGPort: freePort(), RedisPort: freePort()})
		if err != nil {
			fatal(err)
		}
		defer rt.Stop()
		url = rt.DatabaseURL
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	t0 := time.Now()
	applied, err := migrations.Up(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		fatal(err)
	}
	if len(applied) > 0 {
		fmt.Printf("migrations %v applied in %.1fs\n", applied, time.Since(t0).Seconds())
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		fatal(err)
	}
	var locale string
	_ = db.QueryRow(ctx, `SELECT datctype FROM pg_database WHERE datname = current_database()`).Scan(&locale)
	fmt.Printf("database ctype: %s\n", locale)

	var have int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM ticket_search`).Scan(&have); err != nil {
		fatal(err)
	}
	if have >= *n {
		fmt.Printf("reusing the %d tickets already there\n", have)
	} else {
		generate(ctx, db, *n)
	}
	var size string
	_ = db.QueryRow(ctx, `SELECT pg_size_pretty(pg_relation_size('ticket_search_words_units_idx'))`).Scan(&size)
	fmt.Printf("ticket_search GIN index: %s\n", size)
	search(ctx, db, *queries, *trgm)
}

func generate(ctx context.Context, db *pgxpool.Pool, n int) {
	start := time.Now()
	// A bulk load as a restore does it: the per-row search and scope triggers off, the search rows and the
	// ticket_units rows written in one statement each and the GIN index built once afterwards (the per-row
	// trigger path costs about 0.8 ms a ticket here).
	if _, err := db.Exec(ctx, `ALTER TABLE tickets DISABLE TRIGGER tickets_search_insert;
		ALTER TABLE tickets DISABLE TRIGGER tickets_units_insert; DROP INDEX ticket_search_words_units_idx`); err != nil {
		fatal(err)
	}
	// Tickets spread over the 赫山区 bureau (the clerk's unit) and nine other units; two in three have a reply; one in twelve has
	// a co-handling unit (协办), another of the ten, so a clerk also sees tickets led by other units.
	if _, err := db.Exec(ctx, `INSERT INTO tickets (number, query_code, source, caller_name, region_code, kind, category,
			content, status, lead_unit_id, co_unit_ids, reply_text, created_at)
		SELECT 'S' || lpad(g::text, 9, '0'), '000000', 'phone',
		       s.a[1 + (g * 7) % array_length(s.a, 1)] || gv.a[1 + (g * 13 / 7) % array_length(gv.a, 1)],
		       '430903', 'help', 'monitoring_help',
		       v.a[1 + (g * 3) % array_length(v.a, 1)] || '村村民反映' || m.a[1 + (g * 11 / 3) % array_length(m.a, 1)] || '，' ||
		         q.a[1 + g % array_length(q.a, 1)],
		       CASE WHEN g % 3 = 0 THEN 'dispatched' ELSE 'closed' END,
		       u.a[1 + abs(hashint4(g)) % 10], -- not tied to the words
		       CASE WHEN g % 12 = 5 THEN ARRAY[u.a[1 + (abs(hashint4(g)) % 10 + 1 + g % 9) % 10]] ELSE '{}' END,
		       CASE WHEN g % 3 = 0 THEN '' ELSE r.a[1 + (g * 5 / 11) % array_length(r.a, 1)] END,
		       now() - (($1 - g) * interval '30 seconds')
		  FROM generate_series(1, $1) AS g,
		       (SELECT $2::text[] AS a) s, (SELECT $3::text[] AS a) gv, (SELECT $4::text[] AS a) v,
		       (SELECT $5::text[] AS a) m, (SELECT $6::text[] AS a) q, (SELECT $7::text[] AS a) r,
		       (SELECT array_agg(id ORDER BY code <> '430903', id) AS a FROM (SELECT id, code FROM units
		         WHERE kind IN ('county', 'division') ORDER BY code <> '430903', id LIMIT 10) t) u`,
		n, surnames, given, villages, matters, requests, replies); err != nil {
		fatal(err)
	}
	fmt.Printf("generated %d tickets in %.1fs\n", n, time.Since(start).Seconds())
	start = time.Now()
	if _, err := db.Exec(ctx, `INSERT INTO ticket_search (ticket_id, words, unit_ids)
			SELECT t.id, search_vector(ticket_search_text(t)), ticket_unit_ids(t.lead_unit_id, t.co_unit_ids) FROM tickets t;
		INSERT INTO ticket_units (unit_id, ticket_id)
			SELECT u, t.id FROM tickets t, unnest(ticket_unit_ids(t.lead_unit_id, t.co_unit_ids)) AS u`); err != nil {
		fatal(err)
	}
	fmt.Printf("search rows in %.1fs\n", time.Since(start).Seconds())
	start = time.Now()
	if _, err := db.Exec(ctx, `CREATE INDEX ticket_search_words_units_idx ON ticket_search USING gin (words, unit_ids);
		ALTER TABLE tickets ENABLE TRIGGER tickets_search_insert; ALTER TABLE tickets ENABLE TRIGGER tickets_units_insert`); err != nil {
		fatal(err)
	}
	fmt.Printf("GIN index built in %.1fs\n", time.Since(start).Seconds())
	for _, t := range []string{"tickets", "ticket_search", "ticket_units"} {
		if _, err := db.Exec(ctx, `VACUUM ANALYZE `+t); err != nil {
			fatal(err)
		}
	}
}

func search(ctx context.Context, db *pgxpool.Pool, queries int, trgm bool) {
	svc := ticketing.NewService(db, ticketing.Options{})
	admin := org.Actor{Role: org.RoleAdmin, Name: "admin"}
	heshan, err := org.UnitByCode(ctx, db, "430903")
	if err != nil {
		fatal(err)
	}
	clerk := org.Actor{Role: org.RoleStaff, UnitID: heshan.ID, Name: "heshan1"}
	// 资阳区 leads and co-handles none of the generated tickets: the search of a unit with nothing to find.
	ziyang, err := org.UnitByCode(ctx, db, "430902")
	if err != nil {
		fatal(err)
	}
	idle := org.Actor{Role: org.RoleStaff, UnitID: ziyang.ID, Name: "ziyang1"}
	// 益阳市's bureau, 赫山区's parent: a prefecture reads what it leads or co-handles and what its counties lead.
	if heshan.ParentID == nil {
		fatal(fmt.Errorf("unit 430903 has no parent prefecture"))
	}
	prefecture := org.Actor{Role: org.RoleStaff, UnitID: *heshan.ParentID, Name: "yiyang1"}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	// What people type: a caller's full name, a given name, two-character words, a phrase, a village, a reply's words.
	kinds := []struct {
		name string
		gen  func() string
	}{
		{"full name", func() string { return pick(surnames) + pick(given) }},
		{"given name", func() string { return pick(given) }},
		{"2-char word", func() string {
			return pick([]string{"危房", "低保", "信贷", "光伏", "工资", "停水", "分红", "补贴", "洪灾", "续贷"})
		}},
		{"phrase", func() string {
			return pick([]string{"雨露计划", "小额信贷", "危房改造", "公益性岗位", "易地搬迁", "医疗救助"})
		}},
		{"village", func() string { return pick(villages) }},
		{"reply words", func() string { return pick([]string{"一卡通", "返修", "展期", "当面解释", "村规民约"}) }},
	}
	type sample struct {
		kind string
		q    string
	}
	qs := make([]sample, queries)
	for i := range qs {
		k := kinds[i%len(kinds)]
		qs[i] = sample{k.name, k.gen()}
	}
	run := func(label string, search func(q string) (int, error)) {
		for _, s := range qs[:min(100, len(qs))] { // warm caches
			if _, err := search(s.q); err != nil {
				fatal(err)
			}
		}
		all := make([]time.Duration, 0, len(qs))
		by := map[string][]time.Duration{}
		for _, s := range qs {
			t0 := time.Now()
			if _, err := search(s.q); err != nil {
				fatal(err)
			}
			d := time.Since(t0)
			all = append(all, d)
			by[s.kind] = append(by[s.kind], d)
		}
		fmt.Printf("%s: %d searches p50 %s p95 %s p99 %s max %s\n", label, len(all), pct(all, 50), pct(all, 95), pct(all, 99), pct(all, 100))
		for _, k := range kinds {
			fmt.Printf("    %-12s p50 %s p95 %s\n", k.name, pct(by[k.name], 50), pct(by[k.name], 95))
		}
	}
	list := func(a org.Actor, unit org.UnitID) func(string) (int, error) {
		return func(q string) (int, error) {
			ts, _, err := svc.List(ctx, a, ticketing.Filter{Text: q, UnitID: unit, Limit: 50})
			return len(ts), err
		}
	}
	run("cjk-gram tsvector, admin (province)", list(admin, 0))
	run("cjk-gram tsvector, county clerk (赫山区, 1 ticket in 10)", list(clerk, 0))
	run("cjk-gram tsvector, county clerk (资阳区, no tickets)", list(idle, 0))
	run("cjk-gram tsvector, prefecture bureau (益阳市: its own and its counties' tickets)", list(prefecture, 0))
	run("cjk-gram tsvector, admin with unit filter 赫山区 (the tickets it leads)", list(admin, heshan.ID))

	if trgm {
		start := time.Now()
		var size string
		if _, err := db.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm;
			DROP TABLE IF EXISTS trgm_doc;
			CREATE TABLE trgm_doc AS SELECT t.id AS ticket_id, ticket_search_text(t) AS doc FROM tickets t;
			CREATE INDEX trgm_doc_idx ON trgm_doc USING gin (doc gin_trgm_ops);
			ALTER TABLE trgm_doc ADD PRIMARY KEY (ticket_id)`); err != nil {
			fatal(err)
		}
		if _, err := db.Exec(ctx, `VACUUM ANALYZE trgm_doc`); err != nil {
			fatal(err)
		}
		_ = db.QueryRow(ctx, `SELECT pg_size_pretty(pg_relation_size('trgm_doc_idx'))`).Scan(&size)
		fmt.Printf("pg_trgm: built in %.1fs, GIN index %s\n", time.Since(start).Seconds(), size)
		run("pg_trgm LIKE, admin (province)", func(q string) (int, error) {
			rows, err := db.Query(ctx, `SELECT id FROM tickets WHERE id IN (SELECT ticket_id FROM trgm_doc WHERE doc LIKE $1)
				ORDER BY id DESC LIMIT 51`, "%"+q+"%")
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			c := 0
			for rows.Next() {
				c++
			}
			return c, rows.Err()
		})
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadsearch:", err)
	os.Exit(1)
}
