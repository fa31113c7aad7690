// Package monitoring keeps the monitoring records of households at risk of falling (back) into poverty
// (防返贫监测): the household, its members, phones and assistance measures; its status along the loop
// 排查 → 核实 → 认定 → 帮扶 → 风险消除 (or 不纳入) with an event for every change and the statutory clocks; its
// timeline of every contact (tickets, calls, campaign attempts, visits); the caller lookup that telephony uses
// for screen-pops; CSV import and export; and the verification loop with the ticketing service.
//
// Personal data (ID numbers, phone numbers) is sealed at rest with pii.Box and every read path returns it
// masked; only Reveal (and a revealing export) returns full values, for actors holding ticketing.PermRevealPII,
// and each such read appends a row to the append-only pii_reveals table in the same transaction.
//
// The package runs no goroutines; every method is safe for concurrent use.
package monitoring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

// Clocks are the statutory time limits of the loop (defaults from the national monitoring rules).
type Clocks struct {
	LeadToIdentify       time.Duration // from a risk lead to identification: at most 15 days
	IdentifyPublicity    time.Duration // publicity before identification: at least 5 days
	EliminationPublicity time.Duration // publicity before risk elimination: 7 days
	YellowBefore         time.Duration // a clock turns yellow this long before its deadline
}

// DefaultClocks are the limits the rules set.
var DefaultClocks = Clocks{
	LeadToIdentify:       15 * 24 * time.Hour,
	IdentifyPublicity:    5 * 24 * time.Hour,
	EliminationPublicity: 7 * 24 * time.Hour,
	YellowBefore:         3 * 24 * time.Hour,
}

// Config builds a Service.
type Config struct {
	DB     *pgxpool.Pool
	Box    *pii.Box
	Clocks Clocks
	Log    *slog.Logger
	Now    func() time.Time // tests move time; default time.Now
	// Lookups limits exact-match look-ups by a full ID or phone number per user (nil: unlimited, for tools).
	Lookups Limiter
}

// Service is the monitoring records service.
type Service struct {
	db      *pgxpool.Pool
	box     *pii.Box
	clocks  Clocks
	log     *slog.Logger
	now     func() time.Time
	leads   LeadOpener // set by AttachTickets
	limiter Limiter
	// ticketAuth answers whether an actor may see a ticket (set by AttachTickets); the timeline asks it.
	ticketAuth interface {
		MayRead(ctx context.Context, a org.Actor, id org.TicketID) error
	}
}

// New returns the service.
func New(cfg Config) *Service {
	s := &Service{db: cfg.DB, box: cfg.Box, clocks: cfg.Clocks, log: cfg.Log, now: cfg.Now, limiter: cfg.Lookups}
	if s.clocks == (Clocks{}) {
		s.clocks = DefaultClocks
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// inTx runs f in one transaction.
func (s *Service) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, f)
}

func notFound(id org.HouseholdID) error {
	return fmt.Errorf("household %d: %w", id, org.ErrNotFound)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
