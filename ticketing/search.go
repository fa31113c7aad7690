package ticketing

import (
	"context"
	"fmt"
	"math"
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
// page, older decides how to go on.
func (s *Service) search(ctx context.Context, where []string, args []any, match, q string, limit int, unit org.UnitID,
	before org.TicketID) ([]Ticket, error) {
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	if unit != 0 {
		return s.searchUnit(ctx, cond, args, match, q, limit, unit, before)
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
	return s.older(ctx, ts, limit, *floor, q, 0, walk, func(limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id < `+fp+cond+`
			AND id IN (SELECT ticket_id FROM ticket_search WHERE words @@ `+match+`)
			ORDER BY id DESC LIMIT `+strconv.Itoa(limit), args)
	})
}

// older completes a page that the walk over the newest window (ts, below floor) did not fill: a bounded count on
// the index (within unit's tickets, unless 0) tells whether the words are common among the older tickets; if so
// the walk goes on below floor, else the older matches come through the index (few, by then).
func (s *Service) older(ctx context.Context, ts []Ticket, limit int, floor int64, q string, unit org.UnitID,
	walk func(bound string, limit int) ([]Ticket, error), index func(limit int) ([]Ticket, error)) ([]Ticket, error) {
	inUnit, cargs := "", []any{floor, q, frequentAt}
	if unit != 0 {
		inUnit, cargs = " AND unit_ids @> ARRAY[$4::bigint]", append(cargs, int64(unit))
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ticket_search WHERE ticket_id < $1 AND words @@ $2::tsquery`+
		inUnit+` LIMIT $3) c`, cargs...).Scan(&n); err != nil {
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

// scopeUnit returns the unit whose tickets are all that a may read — those it leads or co-handles — or 0 when a's
// scope is anything else (province-wide roles, a prefecture bureau that also reads its counties' tickets, the
// desk's agents). It asks readableSQL itself rather than repeating its rules, so that the day those rules change
// for a role, that role's searches fall back to the general path instead of missing tickets.
func (s *Service) scopeUnit(ctx context.Context, a org.Actor) org.UnitID {
	if a.UnitID == 0 {
		return 0
	}
	var got []any
	cond := s.readableSQL(ctx, a, func(v any) string {
		got = append(got, v)
		return "$" + strconv.Itoa(len(got))
	})
	if cond != "(lead_unit_id = $1 OR $1 = ANY(co_unit_ids))" || len(got) != 1 || got[0] != int64(a.UnitID) {
		return 0
	}
	return a.UnitID
}

// searchUnit is search for a user who reads only the tickets of one unit (scopeUnit). The same two ways, inside
// the unit's tickets (migration 0021): its newest unitWindow tickets (ticket_units, newest first) each tested
// against its search row; then, if that does not fill the page, the older matches either walked on the same way
// (the words are common in the unit) or fetched through the GIN index that holds the words and the units
// together, so that one index scan yields only the unit's matches. cond is the caller's whole condition, the
// scope included: ticket_units and unit_ids only narrow what is read.
func (s *Service) searchUnit(ctx context.Context, cond string, args []any, match, q string, limit int, unit org.UnitID,
	before org.TicketID) ([]Ticket, error) {
	below := int64(before)
	if below <= 0 {
		below = math.MaxInt64
	}
	var floor *int64
	var n int
	if err := s.db.QueryRow(ctx, `SELECT min(ticket_id), count(*) FROM (SELECT ticket_id FROM ticket_units
			WHERE unit_id = $1 AND ticket_id < $2 ORDER BY ticket_id DESC LIMIT $3) w`,
		int64(unit), below, unitWindow).Scan(&floor, &n); err != nil {
		return nil, fmt.Errorf("search tickets: %w", err)
	}
	if floor == nil {
		return []Ticket{}, nil
	}
	args = append(args, int64(unit), *floor)
	up, fp := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
	// The words are tested on the unit's row before the ticket is read; the scalar subquery keeps that test
	// per row (the walk stops as soon as the page is full).
	walk := func(bound string, limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM ticket_units u JOIN tickets ON tickets.id = u.ticket_id
			WHERE u.unit_id = `+up+` AND u.ticket_id `+bound+` `+fp+`
			AND (SELECT words FROM ticket_search x WHERE x.ticket_id = u.ticket_id) @@ `+match+cond+`
			ORDER BY u.ticket_id DESC LIMIT `+strconv.Itoa(limit), args)
	}
	ts, err := walk(">=", limit)
	if err != nil || len(ts) >= limit || n < unitWindow {
		return ts, err
	}
	return s.older(ctx, ts, limit, *floor, q, unit, walk, func(limit int) ([]Ticket, error) {
		return s.query(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id < `+fp+cond+`
			AND id IN (SELECT ticket_id FROM ticket_search WHERE words @@ `+match+` AND unit_ids @> ARRAY[`+up+`::bigint])
			ORDER BY id DESC LIMIT `+strconv.Itoa(limit), args)
	})
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
