package ticketing

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// SearchQuery turns what a user typed into a tsquery over ticket_search.words (migration 0016: search_vector),
// cutting it the same way the documents are cut: a run of ASCII letters and digits is a prefix match of one
// lexeme; any other run of letters (Chinese) is the phrase of its two-character grams, or for one character a
// prefix match of the grams that start with it. Runs are ANDed. "" means nothing searchable was typed.
func SearchQuery(text string) string {
	var terms []string
	for _, run := range searchRuns(strings.ToLower(text)) {
		if len(terms) == 8 { // a long paste is not a search: the first eight runs decide
			break
		}
		rs := []rune(run)
		if isASCIIAlnum(rs[0]) {
			if len(rs) > 100 {
				rs = rs[:100]
			}
			terms = append(terms, lexeme(string(rs))+":*")
			continue
		}
		if len(rs) == 1 {
			terms = append(terms, lexeme(string(rs))+":*")
			continue
		}
		if len(rs) > 32 {
			rs = rs[:32]
		}
		grams := make([]string, 0, len(rs)-1)
		for i := 0; i+1 < len(rs); i++ {
			grams = append(grams, lexeme(string(rs[i:i+2])))
		}
		terms = append(terms, "("+strings.Join(grams, " <-> ")+")")
	}
	return strings.Join(terms, " & ")
}

// searchRuns splits text into runs as search_vector does: ASCII letters and digits, or other letters and marks;
// spaces, punctuation and symbols separate.
func searchRuns(text string) []string {
	var runs []string
	start, ascii := -1, false
	flush := func(i int) {
		if start >= 0 {
			runs = append(runs, text[start:i])
			start = -1
		}
	}
	for i, r := range text {
		switch {
		case isASCIIAlnum(r):
			if start >= 0 && !ascii {
				flush(i)
			}
			if start < 0 {
				start, ascii = i, true
			}
		case r > unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)):
			if start >= 0 && ascii {
				flush(i)
			}
			if start < 0 {
				start, ascii = i, false
			}
		default:
			flush(i)
		}
	}
	flush(len(text))
	return runs
}

func isASCIIAlnum(r rune) bool {
	return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// lexeme quotes a tsquery operand (the text form: backslash and quote escaped).
func lexeme(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// recentWindow is how many of the newest tickets a search first tests row by row; frequentAt is how many older
// matches make a query "common", so that the older tickets are walked newest first too rather than fetched
// through the index.
var recentWindow, frequentAt = 5000, 3000

// unitWindow is how many of a unit's newest tickets a unit-scoped search first tests row by row.
var unitWindow = 2000

// search returns up to limit tickets, newest first, that satisfy where and match the tsquery q (its parameter is
// match). The index answers "which tickets contain these words" but not "which are newest", and PostgreSQL
// misjudges how many tickets a phrase matches (it multiplies the grams' frequencies, which always occur
// together), so one plan cannot serve both a common word and a rare name: walking the newest tickets and testing
// each is fast when the words are common, the index is fast when they are rare. So: first the newest
// recentWindow tickets, each tested against its search row (the other filters first); if that does not fill the
// page, older decides how to go on. units, if not empty, are units whose tickets hold every ticket where admits
// (searchUnits): the same then happens inside their tickets.
func (s *Service) search(ctx context.Context, where []string, args []any, match, q string, limit int, units []org.UnitID,
	before org.TicketID) ([]Ticket, error) {
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	if len(units) > 0 && len(units) <= maxScopeUnits && scopedSearch {
		return s.searchUnits(ctx, cond, args, match, q, limit, units, before)
	}
	var floor *int64
	var n int
	if err := s.db.QueryRow(ctx, `SELECT min(id), count(*) FROM (SELECT id FROM tickets ORDER BY id DESC LIMIT $1) r`,
		recentWindow).Scan(&floor, &n); err != nil {
		return nil, fmt.Errorf("search tickets: %w", err)
	}
	if floor == nil {
		return []Ticket{}, nil
	}
	args = append(args, *floor)
	fp := "$" + strconv.Itoa(len(args))
	// The scalar subquery keeps the test per row: PostgreSQL may not turn it into a join over every match.
	walk := func(bound string, limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id `+bound+` `+fp+cond+`
			AND (SELECT words FROM ticket_search x WHERE x.ticket_id = tickets.id) @@ `+match+`
			ORDER BY id DESC LIMIT `+strconv.Itoa(limit), args)
	}
	ts, err := walk(">=", limit)
	if err != nil || len(ts) >= limit || n < recentWindow {
		return ts, err
	}
	return s.older(ctx, ts, limit, *floor, q, nil, walk, func(limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id < `+fp+cond+`
			AND id IN (SELECT ticket_id FROM ticket_search WHERE words @@ `+match+`)
			ORDER BY id DESC LIMIT `+strconv.Itoa(limit), args)
	})
}

// scopedSearch turns the unit path off; tests compare the two paths' answers.
var scopedSearch = true

// older completes a page that the walk over the newest window (ts, below floor) did not fill: a bounded count on
// the index (within the units' tickets, unless none) tells whether the words are common among the older tickets;
// if so the walk goes on below floor, else the older matches come through the index (few, by then).
func (s *Service) older(ctx context.Context, ts []Ticket, limit int, floor int64, q string, units []org.UnitID,
	walk func(bound string, limit int) ([]Ticket, error), index func(limit int) ([]Ticket, error)) ([]Ticket, error) {
	inUnits, cargs := "", []any{floor, q, frequentAt}
	if len(units) > 0 {
		inUnits, cargs = " AND unit_ids && $4::bigint[]", append(cargs, unitIDs(units))
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ticket_search WHERE ticket_id < $1 AND words @@ $2::tsquery`+
		inUnits+` LIMIT $3) c`, cargs...).Scan(&n); err != nil {
		return nil, fmt.Errorf("search tickets: %w", err)
	}
	var more []Ticket
	var err error
	if n >= frequentAt {
		more, err = walk("<", limit-len(ts))
	} else {
		more, err = index(limit - len(ts))
	}
	return append(ts, more...), err
}

// Scopes searchUnits recognises, in readableSQL's own words: a unit's tickets (a county bureau, a division), and
// a prefecture bureau's, which adds the tickets its counties lead.
const (
	unitScope       = "(lead_unit_id = $1 OR $1 = ANY(co_unit_ids))"
	prefectureScope = "(lead_unit_id = $1 OR $1 = ANY(co_unit_ids) OR lead_unit_id IN (SELECT id FROM units WHERE parent_id = $1))"
)

// scopeUnits returns units whose tickets hold everything a may read — a unit's own (those it leads or
// co-handles), with a prefecture bureau's counties, whose led tickets it also reads — or nil when a's scope is
// anything else (province-wide roles, the desk's agents). It asks readableSQL itself rather than repeating its
// rules, and knows only the two conditions above, so that the day those rules change for a role, that role's
// searches fall back to the general path instead of missing tickets. The counties are read as readableSQL reads
// them (every unit whose parent is the bureau), not from the unit cache, which misses a unit added since.
func (s *Service) scopeUnits(ctx context.Context, a org.Actor) ([]org.UnitID, error) {
	if a.UnitID == 0 {
		return nil, nil
	}
	var got []any
	cond := s.readableSQL(ctx, a, func(v any) string {
		got = append(got, v)
		return "$" + strconv.Itoa(len(got))
	})
	if len(got) != 1 || got[0] != int64(a.UnitID) {
		return nil, nil
	}
	switch cond {
	case unitScope:
		return []org.UnitID{a.UnitID}, nil
	case prefectureScope:
		units := []org.UnitID{a.UnitID}
		rows, err := s.db.Query(ctx, `SELECT id FROM units WHERE parent_id = $1 ORDER BY id`, int64(a.UnitID))
		if err != nil {
			return nil, fmt.Errorf("search scope of unit %d: %w", a.UnitID, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("search scope of unit %d: %w", a.UnitID, err)
		}
		for _, id := range ids {
			units = append(units, org.UnitID(id))
		}
		return units, nil
	}
	return nil, nil
}

// maxScopeUnits bounds the set a search walks inside; a larger one goes the general way.
const maxScopeUnits = 64

// searchUnits is search inside the tickets of a set of units (ticket_units, migration 0021): those of the user's
// scope (scopeUnits) or the one unit a list is filtered on. The same two ways: the newest unitWindow tickets among
// the units' rows, each tested against its search row; then, if that does not fill the page, the older matches
// either walked on the same way (the words are common in the units) or fetched through the GIN index that holds
// the words and the units together, so that one index scan yields only the units' matches. cond is the caller's
// whole condition, the scope included: ticket_units and unit_ids only narrow what is read, which is why a set
// may hold tickets the user may not read (a prefecture's county co-handling another prefecture's ticket).
func (s *Service) searchUnits(ctx context.Context, cond string, args []any, match, q string, limit int, units []org.UnitID,
	before org.TicketID) ([]Ticket, error) {
	below := int64(before)
	if below <= 0 {
		below = math.MaxInt64
	}
	set := unitIDs(units)
	floor, n, err := s.unitsWindow(ctx, set, below)
	if err != nil || floor == 0 {
		return []Ticket{}, err
	}
	base := args
	args = append(slices.Clip(args), set, floor, below)
	sp, fp, bp := "$"+strconv.Itoa(len(args)-2), "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
	var walk func(bound string, limit int) ([]Ticket, error)
	if len(units) == 1 {
		// One unit's rows are one ordered index scan: the words are tested on the unit's row before the ticket is
		// read, the scalar subquery keeping that test per row, and the walk stops as soon as the page is full.
		walk = func(bound string, limit int) ([]Ticket, error) {
			return s.query(ctx, `SELECT `+ticketColumns+` FROM ticket_units u JOIN tickets ON tickets.id = u.ticket_id
				WHERE u.unit_id = (`+sp+`::bigint[])[1] AND u.ticket_id `+bound+` `+fp+` AND u.ticket_id < `+bp+`
				AND (SELECT words FROM ticket_search x WHERE x.ticket_id = u.ticket_id) @@ `+match+cond+`
				ORDER BY u.ticket_id DESC LIMIT `+strconv.Itoa(limit), args)
		}
	} else {
		// Several units' rows are not merged in order by PostgreSQL 15 (it reads them all and sorts), so the walk
		// goes window by window: a window's ids, each unit's few read by its primary key, sorted and made
		// distinct; then each tested in that order, the words first and the caller's condition on the ticket
		// next (scalar subqueries, so per row and not joined), until the page is full. A unit has at most
		// unitWindow rows in a window (it holds that many tickets of the set); saying so keeps the estimate of a
		// prepared statement's generic plan small, which PostgreSQL otherwise JIT-compiles (12 ms a search).
		inRange := func(lo, hi int64, limit int) ([]Ticket, error) {
			a := append(slices.Clip(base), set, lo, hi, unitWindow)
			sp, lp, hp, wp := "$"+strconv.Itoa(len(a)-3), "$"+strconv.Itoa(len(a)-2), "$"+strconv.Itoa(len(a)-1), "$"+strconv.Itoa(len(a))
			return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id IN (
				SELECT c.ticket_id FROM (SELECT DISTINCT w.ticket_id FROM unnest(`+sp+`::bigint[]) u(id),
					LATERAL (SELECT ticket_id FROM ticket_units WHERE unit_id = u.id AND ticket_id >= `+lp+` AND ticket_id < `+hp+`
						ORDER BY ticket_id DESC LIMIT `+wp+`) w
					ORDER BY 1 DESC OFFSET 0) c
				WHERE (SELECT words FROM ticket_search x WHERE x.ticket_id = c.ticket_id) @@ `+match+`
				AND (SELECT true FROM tickets WHERE tickets.id = c.ticket_id`+cond+`)
				ORDER BY c.ticket_id DESC LIMIT `+strconv.Itoa(limit)+`)
				ORDER BY id DESC`, a)
		}
		walk = func(bound string, limit int) ([]Ticket, error) {
			if bound == ">=" {
				return inRange(floor, below, limit)
			}
			var ts []Ticket
			for hi := floor; len(ts) < limit; {
				lo, n, err := s.unitsWindow(ctx, set, hi)
				if err != nil || lo == 0 {
					return ts, err
				}
				more, err := inRange(lo, hi, limit-len(ts))
				if err != nil {
					return nil, err
				}
				ts = append(ts, more...)
				if n < unitWindow {
					break
				}
				hi = lo
			}
			return ts, nil
		}
	}
	ts, err := walk(">=", limit)
	if err != nil || len(ts) >= limit || n < unitWindow {
		return ts, err
	}
	return s.older(ctx, ts, limit, floor, q, units, walk, func(limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id < `+fp+` AND id < `+bp+cond+`
			AND id IN (SELECT ticket_id FROM ticket_search WHERE words @@ `+match+` AND unit_ids && `+sp+`::bigint[])
			ORDER BY id DESC LIMIT `+strconv.Itoa(limit), args)
	})
}

// unitsWindow returns the smallest id of the newest unitWindow tickets among the units' rows below below, and how
// many there are (0, 0: none): each unit's newest read by its primary key (one ordered scan a unit), merged, a
// ticket of two of the units counted once.
func (s *Service) unitsWindow(ctx context.Context, set []int64, below int64) (int64, int, error) {
	q := `SELECT min(ticket_id), count(*) FROM (SELECT DISTINCT w.ticket_id
			FROM unnest($1::bigint[]) u(id), LATERAL (SELECT ticket_id FROM ticket_units
				WHERE unit_id = u.id AND ticket_id < $2 ORDER BY ticket_id DESC LIMIT $3) w
			ORDER BY w.ticket_id DESC LIMIT $3) r`
	if len(set) == 1 { // a county clerk's: the plain scan, nothing to merge
		q = `SELECT min(ticket_id), count(*) FROM (SELECT ticket_id FROM ticket_units
			WHERE unit_id = ($1::bigint[])[1] AND ticket_id < $2 ORDER BY ticket_id DESC LIMIT $3) w`
	}
	var floor *int64
	var n int
	if err := s.db.QueryRow(ctx, q, set, below, unitWindow).Scan(&floor, &n); err != nil {
		return 0, 0, fmt.Errorf("search tickets: %w", err)
	}
	if floor == nil {
		return 0, 0, nil
	}
	return *floor, n, nil
}

func unitIDs(units []org.UnitID) []int64 {
	ids := make([]int64, len(units))
	for i, u := range units {
		ids[i] = int64(u)
	}
	return ids
}

func (s *Service) query(ctx context.Context, q string, args []any) ([]Ticket, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTicket)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return ts, nil
}
