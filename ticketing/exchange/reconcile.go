package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// Difference is one order the two sides disagree about.
type Difference struct {
	OrderID      string `json:"order_id"`
	Kind         string `json:"kind"` // missing_here, closed_here, missing_there
	TicketNumber string `json:"ticket_number,omitempty"`
	OurStatus    string `json:"our_status,omitempty"`
	TheirStatus  string `json:"their_status,omitempty"`
}

// Reconciliation is one comparison of open orders on both sides.
type Reconciliation struct {
	ID          int64        `json:"id"`
	Platform    string       `json:"platform"`
	Day         string       `json:"day"`
	StartedAt   time.Time    `json:"started_at"`
	FinishedAt  *time.Time   `json:"finished_at,omitempty"`
	OursOpen    int          `json:"ours_open"`
	TheirsOpen  int          `json:"theirs_open"`
	Differences []Difference `json:"differences"`
	Error       string       `json:"error,omitempty"`
	Manual      bool         `json:"manual"`
}

// Reconcile compares the platform's open orders with ours now (an admin asked).
func (s *Service) Reconcile(ctx context.Context, a org.Actor, name string) (Reconciliation, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return Reconciliation{}, err
	}
	if _, err := s.platform(name); err != nil {
		return Reconciliation{}, err
	}
	return s.reconcile(ctx, name, true)
}

// reconcileDaily runs each platform's reconciliation of the day once the hour has come; the day's row is the
// claim, so one process runs it.
func (s *Service) reconcileDaily(ctx context.Context) error {
	now := s.now().In(calendar.CST)
	if now.Hour() < s.cfg.ReconcileAt {
		return nil
	}
	var errs []error
	for _, name := range s.Platforms() {
		if _, err := s.reconcile(ctx, name, false); err != nil && !errors.Is(err, errDone) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var errDone = errors.New("already reconciled today")

func (s *Service) reconcile(ctx context.Context, name string, manual bool) (Reconciliation, error) {
	p := s.platforms[name]
	day := s.now().In(calendar.CST).Format("2006-01-02")
	r := Reconciliation{Platform: name, Day: day, Manual: manual, Differences: []Difference{}}
	q := `INSERT INTO exchange_reconciliations (platform, day, started_at, manual) VALUES ($1, $2, $3, $4)`
	if !manual {
		q += ` ON CONFLICT (platform, day) WHERE NOT manual DO NOTHING`
	}
	err := s.db.QueryRow(ctx, q+` RETURNING id, started_at`, name, day, s.now(), manual).Scan(&r.ID, &r.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errDone
	}
	if err != nil {
		return r, fmt.Errorf("exchange: reconcile %s: %w", name, err)
	}
	theirs, ferr := s.openOrders(ctx, p)
	ours := map[string][2]string{} // order id → ticket number, our status
	if ferr == nil {
		rows, err := s.db.Query(ctx, `SELECT o.order_id, t.number, CASE WHEN o.state = 'withdrawn' THEN 'withdrawn' ELSE t.status END
			FROM exchange_orders o JOIN tickets t ON t.id = o.ticket_id WHERE o.platform = $1`, name)
		if err != nil {
			return r, fmt.Errorf("exchange: reconcile %s: %w", name, err)
		}
		all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([3]string, error) {
			var v [3]string
			return v, row.Scan(&v[0], &v[1], &v[2])
		})
		if err != nil {
			return r, fmt.Errorf("exchange: reconcile %s: %w", name, err)
		}
		for _, v := range all {
			ours[v[0]] = [2]string{v[1], v[2]}
		}
		open := func(st string) bool { return st != "closed" && st != "withdrawn" }
		seen := map[string]bool{}
		for _, o := range theirs {
			seen[o.OrderID] = true
			mine, ok := ours[o.OrderID]
			switch {
			case !ok:
				r.Differences = append(r.Differences, Difference{OrderID: o.OrderID, Kind: "missing_here", TheirStatus: o.Status})
			case !open(mine[1]):
				r.Differences = append(r.Differences, Difference{OrderID: o.OrderID, Kind: "closed_here", TicketNumber: mine[0],
					OurStatus: mine[1], TheirStatus: o.Status})
			}
		}
		for id, mine := range ours {
			if !open(mine[1]) {
				continue
			}
			r.OursOpen++
			if !seen[id] {
				r.Differences = append(r.Differences, Difference{OrderID: id, Kind: "missing_there", TicketNumber: mine[0], OurStatus: mine[1]})
			}
		}
		r.TheirsOpen = len(theirs)
		sort.Slice(r.Differences, func(i, j int) bool {
			a, b := r.Differences[i], r.Differences[j]
			return a.Kind < b.Kind || (a.Kind == b.Kind && a.OrderID < b.OrderID)
		})
	} else {
		r.Error = truncate(ferr.Error(), 1000)
	}
	fin := s.now()
	r.FinishedAt = &fin
	diffs, _ := json.Marshal(r.Differences)
	if _, err := s.db.Exec(ctx, `UPDATE exchange_reconciliations SET finished_at = $2, ours_open = $3, theirs_open = $4,
		differences = $5, error = $6 WHERE id = $1`, r.ID, fin, r.OursOpen, r.TheirsOpen, diffs, r.Error); err != nil {
		return r, fmt.Errorf("exchange: reconcile %s: %w", name, err)
	}
	if len(r.Differences) > 0 {
		s.log.Warn("exchange: reconciliation found differences", "platform", name, "differences", len(r.Differences))
	}
	return r, nil
}

func (s *Service) openOrders(ctx context.Context, p *platform) ([]RemoteOrder, error) {
	resp, err := s.do(ctx, p, http.MethodGet, p.d.OpenOrdersTarget(), nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("platform %s: open orders: %w", p.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("platform %s: open orders answered %d", p.Name, resp.StatusCode)
	}
	return p.d.ParseOpenOrders(body)
}

// Reconciliations lists the latest runs, newest first (admins).
func (s *Service) Reconciliations(ctx context.Context, a org.Actor, limit int) ([]Reconciliation, error) {
	if err := AuthorizeAdmin(a); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 200 {
		limit = 30
	}
	rows, err := s.db.Query(ctx, `SELECT id, platform, day::text, started_at, finished_at, ours_open, theirs_open, differences, error, manual
		FROM exchange_reconciliations ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("exchange: reconciliations: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reconciliation, error) {
		var r Reconciliation
		var diffs []byte
		if err := row.Scan(&r.ID, &r.Platform, &r.Day, &r.StartedAt, &r.FinishedAt, &r.OursOpen, &r.TheirsOpen, &diffs, &r.Error, &r.Manual); err != nil {
			return r, err
		}
		return r, json.Unmarshal(diffs, &r.Differences)
	})
}
