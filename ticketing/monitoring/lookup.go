package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/phone"
	"hotline/ticketing/region"
)

// Match is a household that uses a phone number, as the agent's screen-pop shows it: personal data masked.
type Match struct {
	HouseholdID    org.HouseholdID `json:"household_id"`
	Number         string          `json:"number"`
	RegionCode     string          `json:"region_code"` // township code
	RegionName     string          `json:"region_name"`
	Village        string          `json:"village"`
	HeadName       string          `json:"head_name"`
	MonitoringType MonitoringType  `json:"monitoring_type"`
	RiskTypes      []RiskType      `json:"risk_types"`
	RiskNames      []string        `json:"risk_names"`
	Status         Status          `json:"status"`
	StatusName     string          `json:"status_name"`
	LeadAt         *time.Time      `json:"lead_at,omitempty"` // an open risk lead
	LastContactAt  *time.Time      `json:"last_contact_at,omitempty"`
	Phone          string          `json:"phone"`                // the matched number, masked
	MemberSeq      *int            `json:"member_seq,omitempty"` // whose phone it is, when known
	Members        []Member        `json:"members"`
	OpenTickets    []TicketRef     `json:"open_tickets"`
}

// TicketRef is an open ticket of a household.
type TicketRef struct {
	ID        int64      `json:"id"`
	Number    string     `json:"number"`
	Category  string     `json:"category"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	DueAt     *time.Time `json:"due_at,omitempty"`
}

// LookupPhone is the platform's own lookup (the screen-pop of an incoming call, the dialer): it checks nothing;
// people's requests go through CallerLookup. It returns the households (with members, risk flags and open tickets) that use a phone number, given
// in any common format (+86 138…, 0086…, 0737-…). An unknown number returns no matches; a malformed one is
// ErrInvalid. It is one query on the phone-hash index.
func (s *Service) LookupPhone(ctx context.Context, raw string) ([]Match, error) {
	n, kind, err := phone.Normalize(raw)
	if err != nil {
		return nil, org.Invalid("phone", fmt.Sprintf("%q is not a phone number", raw))
	}
	if kind == phone.Service {
		return []Match{}, nil
	}
	return s.lookupHash(ctx, s.box.Hashes(pii.FieldPhone, n))
}

// CallerLookup is LookupPhone for a person typing a number: it needs lookup_pii (an exact match confirms a
// guess), counts against the per-user limit, finds only households in the actor's scope, shows only tickets the
// actor may see, and is audited.
func (s *Service) CallerLookup(ctx context.Context, actor org.Actor, raw string) ([]Match, error) {
	if err := s.lookupAllowed(ctx, actor); err != nil {
		return nil, err
	}
	return s.callerLookup(ctx, actor, raw, "")
}

// CallerLookupForCall is the lookup of a live call's caller by the agent on the call: the number comes from the
// call (the caller gave it by calling), so no lookup_pii is needed; the scope, ticket filter and audit still
// apply. The caller (telephony) has checked that the call is the actor's and still up.
func (s *Service) CallerLookupForCall(ctx context.Context, actor org.Actor, number string, callID int64) ([]Match, error) {
	return s.callerLookup(ctx, actor, number, fmt.Sprintf("call:%d", callID))
}

func (s *Service) callerLookup(ctx context.Context, actor org.Actor, raw, via string) ([]Match, error) {
	ms, err := s.LookupPhone(ctx, raw)
	if err != nil {
		return nil, err
	}
	sc, err := ScopeOf(ctx, s.db, actor)
	if err != nil {
		return nil, err
	}
	out := []Match{}
	var ids []org.HouseholdID
	for _, m := range ms {
		if !sc.Covers(region.County(m.RegionCode)) {
			continue
		}
		ts := []TicketRef{}
		for _, t := range m.OpenTickets {
			if s.mayReadTicket(ctx, actor, org.TicketID(t.ID)) {
				ts = append(ts, t)
			}
		}
		m.OpenTickets = ts
		out = append(out, m)
		ids = append(ids, m.HouseholdID)
	}
	detail := map[string]any{"phone": maskRaw(raw), "households": ids}
	if via != "" {
		detail["via"] = via
	}
	if err := org.Audit(ctx, s.db, actor, org.AuditEntry{Kind: org.AuditLookup, Object: "caller-lookup", Detail: detail}); err != nil {
		return nil, err
	}
	return out, nil
}

// hashes are the number's lookup hashes under the current and, during a key rotation, the previous key.
func (s *Service) lookupHash(ctx context.Context, hashes [][]byte) ([]Match, error) {
	rows, _ := s.db.Query(ctx, lookupSQL, hashes)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Match, error) {
		var m Match
		var members, tickets []byte
		err := r.Scan(&m.HouseholdID, &m.Number, &m.RegionCode, &m.Village, &m.HeadName, &m.MonitoringType,
			&m.RiskTypes, &m.Status, &m.LeadAt, &m.LastContactAt, &m.Phone, &m.MemberSeq, &members, &tickets)
		if err != nil {
			return m, err
		}
		if err := json.Unmarshal(members, &m.Members); err != nil {
			return m, err
		}
		if err := json.Unmarshal(tickets, &m.OpenTickets); err != nil {
			return m, err
		}
		m.RegionName = region.FullName(m.RegionCode)
		m.StatusName = m.Status.Name()
		m.RiskNames = make([]string, len(m.RiskTypes))
		for i, r := range m.RiskTypes {
			m.RiskNames[i] = r.Name()
		}
		return m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("caller lookup: %w", err)
	}
	if out == nil {
		out = []Match{}
	}
	return out, nil
}

// lookupSQL is the caller lookup: one probe of household_phones_hash_idx, then the household by primary key, its
// members and its open tickets (tickets_household_idx).
const lookupSQL = `
		SELECT h.id, h.number, h.township_code, h.village, h.head_name, h.monitoring_type, h.risk_types, h.status,
		       h.lead_at, h.last_contact_at, p.phone_mask, p.member_seq,
		       (SELECT coalesce(json_agg(json_build_object('seq', m.seq, 'name', m.name, 'relation', m.relation,
		                 'id_number', m.id_mask, 'health', m.health, 'labour', m.labour, 'in_school', m.in_school)
		                 ORDER BY m.seq), '[]')
		          FROM household_members m WHERE m.household_id = h.id),
		       ` + openTicketsSQL + `
		  FROM household_phones p JOIN households h ON h.id = p.household_id
		 WHERE p.phone_hash = ANY($1)
		 ORDER BY h.id`

// openTicketsSQL selects the household's open tickets as a JSON array.
const openTicketsSQL = `(SELECT coalesce(json_agg(json_build_object('id', t.id, 'number', t.number,
		'category', t.category, 'status', t.status, 'created_at', t.created_at, 'due_at', t.due_at) ORDER BY t.id), '[]')
	  FROM tickets t WHERE t.household_id = h.id AND t.status <> 'closed')`

// DialPhone is a full number for the dialer, with the mask people may see.
type DialPhone struct {
	Number    string `json:"-"` // full, for the SIP INVITE only: never send it to a browser or a log
	Masked    string `json:"number"`
	Kind      string `json:"kind"`
	MemberSeq *int   `json:"member_seq,omitempty"`
}

// DialPhones returns a household's phone numbers in full for the machines that place calls (the campaign dialer,
// click-to-call that rings the agent first, so the agent never sees the number). It writes no audit row because
// no person sees the value; anything that shows a number to a person must use Reveal.
func (s *Service) DialPhones(ctx context.Context, db org.DB, id org.HouseholdID) ([]DialPhone, error) {
	rows, _ := db.Query(ctx, `SELECT phone_enc, phone_mask, kind, member_seq FROM household_phones
		WHERE household_id = $1 ORDER BY member_seq NULLS LAST, phone_mask`, id)
	type row struct {
		Enc       []byte
		Mask      string
		Kind      string
		MemberSeq *int
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return nil, fmt.Errorf("phones of household %d: %w", id, err)
	}
	out := make([]DialPhone, len(rs))
	for i, r := range rs {
		n, err := s.box.Open(pii.FieldPhone, r.Enc)
		if err != nil {
			return nil, err
		}
		out[i] = DialPhone{Number: n, Masked: r.Mask, Kind: r.Kind, MemberSeq: r.MemberSeq}
	}
	return out, nil
}
