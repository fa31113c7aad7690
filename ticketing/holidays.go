package ticketing

import (
	"context"
	"errors"
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

// CalendarWithUploads is base with the newest upload's years laid over it (base itself when there is none).
func CalendarWithUploads(ctx context.Context, db org.DB, base *calendar.Calendar) (*calendar.Calendar, error) {
	var body string
	err := db.QueryRow(ctx, `SELECT body FROM holiday_uploads ORDER BY id DESC LIMIT 1`).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return base, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load uploaded holiday calendar: %w", err)
	}
	upd, err := calendar.Parse(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("uploaded holiday calendar: %w", err)
	}
	return base.With(upd), nil
}
