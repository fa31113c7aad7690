package telephony

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Recording is a stored WAV file of a call or a voicemail.
type Recording struct {
	ID        RecordingID `json:"id"`
	CallID    CallID      `json:"call_id"`
	Kind      string      `json:"kind"` // call | voicemail
	Path      string      `json:"-"`
	Channels  int         `json:"channels"`
	Bytes     int64       `json:"bytes"`
	Duration  float64     `json:"duration_seconds"`
	TicketID  int64       `json:"ticket_id,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
}

// NewRecording is a finished WAV file to store.
type NewRecording struct {
	CallID   CallID
	Kind     string
	Path     string // relative to the recordings directory
	Channels int
	Bytes    int64
	Duration time.Duration
}

func insertRecordingTx(ctx context.Context, tx org.DB, r NewRecording, ticket int64) (RecordingID, error) {
	var id RecordingID
	err := tx.QueryRow(ctx, `INSERT INTO recordings (call_id, kind, path, channels, bytes, duration_ms, ticket_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		r.CallID, r.Kind, r.Path, r.Channels, r.Bytes, r.Duration.Milliseconds(), nz(ticket)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store recording of call %d: %w", r.CallID, err)
	}
	return id, nil
}

// FinishAgentCall stores the call recording (if any) and completes the CDR of a call an agent took, in one
// transaction.
func (s *Service) FinishAgentCall(ctx context.Context, id CallID, rec *NewRecording, e CallEnd) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if e.TicketID == 0 {
			// The agent may have saved the call's ticket while talking (the console links it then): the
			// recording goes with that ticket. FOR UPDATE orders this after a link in progress.
			var linked *int64
			if err := tx.QueryRow(ctx, `SELECT ticket_id FROM calls WHERE id = $1 FOR UPDATE`, id).Scan(&linked); err != nil {
				return fmt.Errorf("end call %d: %w", id, err)
			}
			if linked != nil {
				e.TicketID = *linked
			}
		}
		if rec != nil {
			rid, err := insertRecordingTx(ctx, tx, *rec, e.TicketID)
			if err != nil {
				return err
			}
			e.RecordingID = rid
		}
		_, err := s.endCallTx(ctx, tx, id, e)
		return err
	})
}

// FinishVoicemail stores a voicemail: the recording, the ticket of source voicemail (when ticketing is wired), a
// callback task and the completed CDR, all in one transaction, so there is never a ticket without its recording
// or a message without its callback task. rec is nil when the message could not be written (disk full): the
// ticket and the callback task are still made, so the caller is rung back (issue 15). It returns the ticket id
// (0 without ticketing).
func (s *Service) FinishVoicemail(ctx context.Context, id CallID, caller, region string, rec *NewRecording, dur time.Duration, e CallEnd) (int64, error) {
	var ticket int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var rid RecordingID
		var path string
		if rec != nil {
			var err error
			if rid, err = insertRecordingTx(ctx, tx, *rec, 0); err != nil {
				return err
			}
			path, dur = rec.Path, rec.Duration
		}
		if s.tickets != nil {
			var err error
			ticket, err = s.tickets.CreateVoicemailTicket(ctx, tx, Voicemail{CallID: id, CallerPhone: caller, RecordingID: rid,
				RecordingPath: path, Duration: dur, HouseholdID: e.HouseholdID, RegionCode: region, ReceivedAt: e.EndedAt})
			if err != nil {
				return fmt.Errorf("voicemail ticket for call %d: %w", id, err)
			}
			if rid != 0 {
				if _, err := tx.Exec(ctx, `UPDATE recordings SET ticket_id = $2 WHERE id = $1`, rid, ticket); err != nil {
					return err
				}
			}
		}
		e.RecordingID, e.TicketID, e.Disposition = rid, ticket, DispVoicemail
		if _, err := s.endCallTx(ctx, tx, id, e); err != nil {
			return err
		}
		if caller != "" {
			if _, err := s.openCallbackTx(ctx, tx, caller, "voicemail", id, ticket); err != nil {
				return err
			}
		}
		return nil
	})
	return ticket, err
}

// GetRecording returns a recording's row.
func GetRecording(ctx context.Context, db org.DB, id RecordingID) (Recording, error) {
	var r Recording
	var ms int64
	err := db.QueryRow(ctx, `SELECT id, call_id, kind, path, channels, bytes, duration_ms, coalesce(ticket_id, 0), created_at
		FROM recordings WHERE id = $1`, id).Scan(&r.ID, &r.CallID, &r.Kind, &r.Path, &r.Channels, &r.Bytes, &ms, &r.TicketID, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("recording %d: %w", id, org.ErrNotFound)
	}
	r.Duration = float64(ms) / 1000
	return r, err
}

// OpenRecording returns a recording and its open file, if the actor may hear it: a recording linked to a ticket
// only to those who may see the ticket; one without a ticket to agents, supervisors and admins (call-centre
// staff). The caller closes the file.
func (s *Service) OpenRecording(ctx context.Context, actor org.Actor, id RecordingID) (Recording, *os.File, error) {
	r, err := GetRecording(ctx, s.db, id)
	if err != nil {
		return r, nil, err
	}
	if r.TicketID != 0 && s.access != nil {
		if err := s.access.CanSeeTicket(ctx, actor, r.TicketID); err != nil {
			return r, nil, fmt.Errorf("recording %d: %w", id, err)
		}
	} else {
		switch actor.Role {
		case org.RoleAgent, org.RoleSupervisor, org.RoleAdmin:
		default:
			return r, nil, fmt.Errorf("recording %d: %w", id, org.ErrForbidden)
		}
	}
	full, err := s.recordingPath(r.Path)
	if err != nil {
		return r, nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return r, nil, fmt.Errorf("open recording %d: %w", id, err)
	}
	return r, f, nil
}

// recordingPath resolves a stored relative path inside the recordings directory, refusing anything that would
// leave it.
func (s *Service) recordingPath(rel string) (string, error) {
	clean := filepath.Clean("/" + rel)
	if strings.Contains(rel, "..") || clean == "/" {
		return "", fmt.Errorf("recording path %q: %w", rel, org.ErrInvalid)
	}
	return filepath.Join(s.recDir, clean), nil
}
