package monitoring

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// Fields that can be revealed.
const (
	RevealIDNumber   = "id_number"   // a member's ID number (member_seq)
	RevealPhone      = "phone"       // a household phone (phone: its masked form as read)
	RevealCadrePhone = "cadre_phone" // the cadre's phone
)

// RevealRequest names one value to reveal and why.
type RevealRequest struct {
	Field     string `json:"field"`
	MemberSeq int    `json:"member_seq,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Reason    string `json:"reason"`
}

// Revealed is a full value and the audit row that records it was seen.
type Revealed struct {
	Field   string    `json:"field"`
	Value   string    `json:"value"`
	AuditID int64     `json:"audit_id"`
	At      time.Time `json:"at"`
}

// Reveal returns one full value to an actor holding PermRevealPII, with a stated reason, and appends the audit row
// in the same transaction: no audit row, no value.
func (s *Service) Reveal(ctx context.Context, actor org.Actor, id org.HouseholdID, req RevealRequest) (Revealed, error) {
	if !actor.Can(org.PermRevealPII) {
		return Revealed{}, fmt.Errorf("reveal personal data: %w: needs the %s permission", org.ErrForbidden, org.PermRevealPII)
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		return Revealed{}, org.Invalid("reason", "required: say why you need the full value")
	}
	out := Revealed{Field: req.Field, At: s.now()}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.AuthorizeID(ctx, tx, actor, AccessReveal, id); err != nil {
			return err
		}
		var enc []byte
		var f pii.Field
		var seq *int16
		var err error
		switch req.Field {
		case RevealIDNumber:
			f = pii.FieldIDNumber
			v := int16(req.MemberSeq)
			seq = &v
			err = tx.QueryRow(ctx, `SELECT id_enc FROM household_members WHERE household_id = $1 AND seq = $2`, id, req.MemberSeq).Scan(&enc)
		case RevealPhone:
			f = pii.FieldPhone
			err = tx.QueryRow(ctx, `SELECT phone_enc FROM household_phones WHERE household_id = $1 AND phone_mask = $2
				ORDER BY member_seq NULLS FIRST LIMIT 1`, id, strings.TrimSpace(req.Phone)).Scan(&enc)
		case RevealCadrePhone:
			f = pii.FieldPhone
			err = tx.QueryRow(ctx, `SELECT cadre_phone_enc FROM households WHERE id = $1 AND cadre_phone_enc IS NOT NULL`, id).Scan(&enc)
		default:
			return org.Invalid("field", "must be id_number, phone or cadre_phone")
		}
		if isNoRows(err) {
			return fmt.Errorf("reveal %s of household %d: %w", req.Field, id, org.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reveal %s of household %d: %w", req.Field, id, err)
		}
		if out.Value, err = s.box.Open(f, enc); err != nil {
			return err
		}
		if err := writeAudit(ctx, tx, actor, &id, seq, req.Field, req.Reason, out.At, &out.AuditID); err != nil {
			return err
		}
		// The security audit log lists the reveal too (admins read it in one place with logins and exports);
		// pii_reveals keeps the reason. Never the value.
		detail := map[string]any{"field": req.Field, "reveal_id": out.AuditID}
		if seq != nil {
			detail["member_seq"] = *seq
		}
		return org.Audit(ctx, tx, actor, org.AuditEntry{Kind: org.AuditReveal, Object: fmt.Sprintf("household:%d", id), Detail: detail})
	})
	if err != nil {
		return Revealed{}, err
	}
	return out, nil
}

func writeAudit(ctx context.Context, tx org.DB, actor org.Actor, id *org.HouseholdID, seq *int16, field, reason string, at time.Time, auditID *int64) error {
	var actorID *int64
	if actor.UserID != 0 {
		v := int64(actor.UserID)
		actorID = &v
	}
	err := tx.QueryRow(ctx, `INSERT INTO pii_reveals (at, actor_id, actor_username, household_id, member_seq, field, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, at, actorID, actor.Username, id, seq, field, reason).Scan(auditID)
	if err != nil {
		return fmt.Errorf("write personal-data audit: %w", err)
	}
	return nil
}

// Reveal is one row of the personal-data audit.
type Reveal struct {
	ID            int64            `json:"id"`
	At            time.Time        `json:"at"`
	ActorUsername string           `json:"actor_username"`
	HouseholdID   *org.HouseholdID `json:"household_id,omitempty"`
	MemberSeq     *int             `json:"member_seq,omitempty"`
	Field         string           `json:"field"`
	Reason        string           `json:"reason"`
}

// Reveals lists the audit rows of a household (or all, for id 0), newest first.
func (s *Service) Reveals(ctx context.Context, id org.HouseholdID, limit int) ([]Reveal, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, _ := s.db.Query(ctx, `SELECT id, at, actor_username, household_id, member_seq, field, reason FROM pii_reveals
		WHERE $1 = 0 OR household_id = $1 ORDER BY id DESC LIMIT $2`, id, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Reveal])
	if err != nil {
		return nil, fmt.Errorf("personal-data audit: %w", err)
	}
	return out, nil
}
