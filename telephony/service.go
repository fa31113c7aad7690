package telephony

import (
	"context"
	"hotline/ticketing/org"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Options builds a Service. Only DB is required; the interfaces are nil when their feature is not wired, and the
// service then does without (no screen-pop households, no voicemail ticket, no timeline entry, no events).
type Options struct {
	DB           *pgxpool.Pool
	Log          *slog.Logger
	Events       EventPublisher
	Tickets      VoicemailTickets
	Callers      CallerLookup
	Contacts     ContactRecorder
	TicketAccess TicketAccess
	// Lookups limits filtering calls by a full caller number per user (nil: unlimited).
	Lookups interface {
		Allow(ctx context.Context, key string) error
	}
	RecordingsDir string        // where WAV files live; paths in the database are relative to it
	ACW           time.Duration // after-call work; 0 = straight back to ready
	// Files, if set, is where a recording moves once its call ends (HOTLINE_STORAGE_*), so any process serves it.
	Files FileStore
}

// Service is the telephony state in PostgreSQL: agents, CDRs, recordings, callback tasks.
type Service struct {
	db       *pgxpool.Pool
	log      *slog.Logger
	events   EventPublisher
	tickets  VoicemailTickets
	callers  CallerLookup
	contacts ContactRecorder
	access   TicketAccess
	lookups  interface {
		Allow(ctx context.Context, key string) error
	}
	recDir  string
	files   FileStore
	acw     time.Duration
	wakeCh  chan struct{}
	storage storageHealth
	cdr     *cdrWriter
	staffed staffedCache
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: o.DB, log: o.Log, events: o.Events, tickets: o.Tickets, callers: o.Callers, contacts: o.Contacts,
		access: o.TicketAccess, lookups: o.Lookups, recDir: o.RecordingsDir, files: o.Files, acw: o.ACW, wakeCh: make(chan struct{}, 1),
		cdr: &cdrWriter{db: o.DB}, staffed: newStaffedCache()}
}

// RecordingsDir is where recordings are stored.
func (s *Service) RecordingsDir() string { return s.recDir }

// Callers returns the caller lookup (nil when not wired).
func (s *Service) Callers() CallerLookup { return s.callers }

// Wake is signalled (without blocking) whenever an agent may have become ready in this process, so the queue
// does not wait for its next poll.
func (s *Service) Wake() <-chan struct{} { return s.wakeCh }

func (s *Service) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *Service) publish(ctx context.Context, db org.DB, topic, key string, payload any) error {
	if s.events == nil {
		return nil
	}
	return s.events.Publish(ctx, db, topic, key, payload)
}

// RunSweeper returns agents from after-call work to ready when their time is up, until ctx ends.
func (s *Service) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.SweepACW(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("after-call work sweep failed", "err", err)
			}
		}
	}
}
