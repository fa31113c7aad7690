package ticketing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
)

// HolidayUpload is a holiday calendar an admin uploaded (the body is not repeated in lists).
type HolidayUpload struct {
	ID         int64     `json:"id"`
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by"`
	YearFrom   int       `json:"year_from"`
	YearTo     int       `json:"year_to"`
	OffDays    int       `json:"off_days"`
}

// maxHolidayFile bounds an upload: a year is about 40 lines.
const maxHolidayFile = 256 << 10

// UploadHolidays validates and stores a holiday calendar (the cn_holidays.csv format), with its admin audit row.
// Every year in it must have public holidays (a year with none is a truncated file), and its years must not end
// before the current one. It takes effect when each process next starts; now is the clock of the check.
func UploadHolidays(ctx context.Context, db org.TxBeginner, a org.Actor, src org.Source, body string, now time.Time) (HolidayUpload, error) {
	if err := org.MayAdminister(a); err != nil {
		return HolidayUpload{}, err
	}
	if len(body) > maxHolidayFile {
		return HolidayUpload{}, org.Invalid("file", "larger than 256 KiB: one or a few years are expected")
	}
	body = strings.TrimPrefix(body, "\ufeff")
	cal, err := calendar.Parse(strings.NewReader(body))
	if err != nil {
		return HolidayUpload{}, org.Invalid("file", err.Error())
	}
	from, to := cal.Years()
	perYear := map[int]int{}
	off := 0
	for _, line := range strings.Split(body, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) == 3 && len(f[0]) == 10 && strings.TrimSpace(f[2]) == "true" {
			y, _ := strconv.Atoi(f[0][:4])
			perYear[y]++
			off++
		}
	}
	v := &org.ValidationError{}
	for y := from; y <= to; y++ {
		if perYear[y] == 0 {
			v.Add("file", fmt.Sprintf("year %d has no holidays: a truncated file?", y))
		}
	}
	if to < now.In(calendar.CST).Year() {
		v.Add("file", fmt.Sprintf("covers %d-%d, which ended before this year", from, to))
	}
	if err := v.Err(); err != nil {
		return HolidayUpload{}, err
	}
	var u HolidayUpload
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO holiday_uploads (uploaded_by, year_from, year_to, off_days, body)
			VALUES ($1, $2, $3, $4, $5) RETURNING id, uploaded_at, uploaded_by, year_from, year_to, off_days`,
			a.Username, from, to, off, body).Scan(&u.ID, &u.UploadedAt, &u.UploadedBy, &u.YearFrom, &u.YearTo, &u.OffDays); err != nil {
			return fmt.Errorf("store holiday calendar: %w", err)
		}
		return org.WriteAdminAudit(ctx, tx, a, src, org.AdminHolidayUpload, "holidays:"+strconv.FormatInt(u.ID, 10), nil, u)
	})
	return u, err
}

// HolidayUploads lists the uploads, newest first (admins).
func HolidayUploads(ctx context.Context, db org.DB, a org.Actor) ([]HolidayUpload, error) {
	if err := org.MayAdminister(a); err != nil {
		return nil, err
	}
	rows, _ := db.Query(ctx, `SELECT id, uploaded_at, uploaded_by, year_from, year_to, off_days FROM holiday_uploads ORDER BY id DESC LIMIT 50`)
	us, err := pgx.CollectRows(rows, pgx.RowToStructByPos[HolidayUpload])
	if err != nil {
		return nil, fmt.Errorf("list holiday uploads: %w", err)
	}
	if us == nil {
		us = []HolidayUpload{}
	}
	return us, nil
}

// ReloadCalendar lays the newest uploaded calendar (系统管理 → 节假日) over the service's configured one, if it is
// not the one in force already. The upload endpoint calls it on its own process; FollowCalendar in every process,
// so the others follow within one interval (a query of the newest id when nothing changed).
func (s *Service) ReloadCalendar(ctx context.Context) error {
	var id int64
	if err := s.db.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM holiday_uploads`).Scan(&id); err != nil {
		return fmt.Errorf("newest holiday calendar: %w", err)
	}
	if id == s.calUpload.Load() {
		return nil
	}
	var body string
	if err := s.db.QueryRow(ctx, `SELECT body FROM holiday_uploads WHERE id = $1`, id).Scan(&body); err != nil {
		return fmt.Errorf("load uploaded holiday calendar %d: %w", id, err)
	}
	upd, err := calendar.Parse(strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("uploaded holiday calendar %d: %w", id, err)
	}
	s.cal.Store(s.opt.Calendar.With(upd))
	s.calUpload.Store(id)
	from, to := upd.Years()
	s.log.Info("holiday calendar loaded", "upload", id, "years_from", from, "years_to", to)
	return nil
}

// FollowCalendar reloads the calendar every interval until ctx ends, so that an upload taken by another process
// is in force here too.
func (s *Service) FollowCalendar(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.ReloadCalendar(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("holiday calendar reload failed; the one in force stays", "err", err)
		}
	}
}
