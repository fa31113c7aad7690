package telephony

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/blob"
	"hotline/ticketing/org"
	"io"
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
	Key       string      `json:"-"` // in the file store; "" : at Path under the recordings directory
	Channels  int         `json:"channels"`
	Bytes     int64       `json:"bytes"`
	Duration  float64     `json:"duration_seconds"`
	TicketID  int64       `json:"ticket_id,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	// URL plays it (GET /api/v1/recordings/{id}); set only in a ticket's call list, for an actor who may hear it.
	URL string `json:"url,omitempty"`
}

// NewRecording is a finished WAV file to store.
type NewRecording struct {
	CallID   CallID
	Kind     string
	Path     string // relative to the recordings directory
	Key      string // set by store: the object in the file store that holds it now
	Channels int
	Bytes    int64
	Duration time.Duration
}

func insertRecordingTx(ctx context.Context, tx org.DB, r NewRecording, ticket int64) (RecordingID, error) {
	var id RecordingID
	err := tx.QueryRow(ctx, `INSERT INTO recordings (call_id, kind, path, channels, bytes, duration_ms, ticket_id, storage_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		r.CallID, r.Kind, r.Path, r.Channels, r.Bytes, r.Duration.Milliseconds(), nz(ticket), nz(r.Key)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store recording of call %d: %w", r.CallID, err)
	}
	return id, nil
}

// FinishAgentCall stores the call recording (if any) and completes the CDR of a call an agent took, in one
// transaction.
func (s *Service) FinishAgentCall(ctx context.Context, id CallID, rec *NewRecording, e CallEnd) error {
	done := s.store(ctx, rec)
	return done(pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
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
	}))
}

// FileStore is the file store (ticketing/blob) as telephony uses it.
type FileStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Open(ctx context.Context, key string) (blob.Object, error)
	Delete(ctx context.Context, key string) error
}

// store copies a finished recording from the recordings directory into the file store, so that any process can
// serve it, and sets rec.Key. The returned function is called with the outcome of the transaction that records
// it: committed, the local copy is removed; failed, the object is. Without a store, or if the copy fails (the
// store unreachable), the recording stays in the directory and is served from there.
func (s *Service) store(ctx context.Context, rec *NewRecording) func(error) error {
	keep := func(err error) error { return err }
	if s.files == nil || rec == nil {
		return keep
	}
	full, err := s.recordingPath(rec.Path)
	if err != nil {
		return keep
	}
	f, err := os.Open(full)
	if err != nil {
		s.log.Warn("recording not copied to the file store", "path", rec.Path, "err", err)
		return keep
	}
	defer f.Close()
	key := blob.NewKey("recordings", time.Now()) + ".wav"
	st, err := f.Stat()
	if err == nil {
		err = s.files.Put(ctx, key, f, st.Size(), "audio/wav")
	}
	if err != nil {
		s.log.Warn("recording not copied to the file store; served from the recordings directory", "path", rec.Path, "err", err)
		return keep
	}
	rec.Key = key
	return func(txErr error) error {
		if txErr != nil {
			if err := s.files.Delete(context.WithoutCancel(ctx), key); err != nil {
				s.log.Warn("recording object left behind", "key", key, "err", err)
			}
			return txErr
		}
		if err := os.Remove(full); err != nil {
			s.log.Warn("local copy of a stored recording not removed", "path", rec.Path, "err", err)
		}
		return nil
	}
}

// FinishVoicemail stores a voicemail: the recording, the ticket of source voicemail (when ticketing is wired), a
// callback task and the completed CDR, all in one transaction, so there is never a ticket without its recording
// or a message without its callback task. rec is nil when the message could not be written (disk full): the
// ticket and the callback task are still made, so the caller is rung back (issue 15). It returns the ticket id
// (0 without ticketing).
func (s *Service) FinishVoicemail(ctx context.Context, id CallID, caller, region string, rec *NewRecording, dur time.Duration, e CallEnd) (int64, error) {
	var ticket int64
	done := s.store(ctx, rec)
	err := done(pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
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
	}))
	return ticket, err
}

// GetRecording returns a recording's row.
func GetRecording(ctx context.Context, db org.DB, id RecordingID) (Recording, error) {
	var r Recording
	var ms int64
	err := db.QueryRow(ctx, `SELECT id, call_id, kind, path, coalesce(storage_key, ''), channels, bytes, duration_ms,
			coalesce(ticket_id, 0), created_at
		FROM recordings WHERE id = $1`, id).Scan(&r.ID, &r.CallID, &r.Kind, &r.Path, &r.Key, &r.Channels, &r.Bytes, &ms, &r.TicketID, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("recording %d: %w", id, org.ErrNotFound)
	}
	r.Duration = float64(ms) / 1000
	return r, err
}

// OpenRecording returns a recording and its open file, if the actor may hear it: a recording linked to a ticket
// only to those who may see the ticket; one without a ticket to agents, supervisors and admins (call-centre
// staff). It is read from the file store once it was moved there, else from the recordings directory. The
// caller closes it.
func (s *Service) OpenRecording(ctx context.Context, actor org.Actor, id RecordingID) (Recording, blob.Object, error) {
	r, err := GetRecording(ctx, s.db, id)
	if err != nil {
		return r, nil, err
	}
	if err := s.mayHear(ctx, actor, r); err != nil {
		return r, nil, err
	}
	if r.Key != "" && s.files != nil {
		o, err := s.files.Open(ctx, r.Key)
		if err != nil {
			return r, nil, fmt.Errorf("open recording %d: %w", id, err)
		}
		return r, o, nil
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

// mayHear is the one rule for hearing a recording (OpenRecording serves it, TicketCalls links it): a recording
// linked to a ticket only for those who may see the ticket; one without a ticket for call-centre staff.
func (s *Service) mayHear(ctx context.Context, actor org.Actor, r Recording) error {
	if r.TicketID != 0 && s.access != nil {
		if err := s.access.CanSeeTicket(ctx, actor, r.TicketID); err != nil {
			return fmt.Errorf("recording %d: %w", r.ID, err)
		}
		return nil
	}
	switch actor.Role {
	case org.RoleAgent, org.RoleSupervisor, org.RoleAdmin:
		return nil
	}
	return fmt.Errorf("recording %d: %w", r.ID, org.ErrForbidden)
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
