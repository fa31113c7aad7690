package ticketing

import (
	"time"
)

// SLAConfig sets the clocks. Days are working days on the Chinese calendar; hours are working hours (time on
// days off does not count). A category's reply_days / urgent_reply_hours override ReplyDays / UrgentReplyHours.
type SLAConfig struct {
	SignDays         int          // sign-by after dispatch; default 1
	ReplyDays        map[Kind]int // reply-by after dispatch by kind; default 咨询/求助 3, 投诉/举报/建议 13
	CallbackDays     int          // callback-by after the reply; default 1
	UrgentSignHours  int          // urgent tickets: sign-by; default 2
	UrgentReplyHours int          // urgent tickets: reply-by; default 24
	YellowShare      float64      // yellow when this share of the allowed time is left; default 0.25
	CoOpinionDays    int          // a co-unit's opinion (协办意见) is due this many working days after dispatch; default 2
	UrgentCoHours    int          // the same for urgent tickets, in working hours; default 8
}

// DefaultReplyDays are the reply limits by kind.
var DefaultReplyDays = map[Kind]int{KindConsultation: 3, KindHelp: 3, KindComplaint: 13, KindReport: 13, KindSuggestion: 13}

func (c SLAConfig) withDefaults() SLAConfig {
	if c.SignDays <= 0 {
		c.SignDays = 1
	}
	rd := map[Kind]int{}
	for k, v := range DefaultReplyDays {
		rd[k] = v
	}
	for k, v := range c.ReplyDays {
		if v > 0 {
			rd[k] = v
		}
	}
	c.ReplyDays = rd
	if c.CallbackDays <= 0 {
		c.CallbackDays = 1
	}
	if c.UrgentSignHours <= 0 {
		c.UrgentSignHours = 2
	}
	if c.UrgentReplyHours <= 0 {
		c.UrgentReplyHours = 24
	}
	if c.CoOpinionDays <= 0 {
		c.CoOpinionDays = 2
	}
	if c.UrgentCoHours <= 0 {
		c.UrgentCoHours = 8
	}
	if c.YellowShare <= 0 || c.YellowShare >= 1 {
		c.YellowShare = 0.25
	}
	return c
}

const workDay = 24 * time.Hour

func (s *Service) signAllowed(t Ticket) time.Duration {
	if t.Urgency == UrgencyUrgent {
		return time.Duration(s.opt.SLA.UrgentSignHours) * time.Hour
	}
	return time.Duration(s.opt.SLA.SignDays) * workDay
}

func (s *Service) replyAllowed(t Ticket, c Category) time.Duration {
	if t.Urgency == UrgencyUrgent {
		if c.UrgentReplyHours != nil {
			return time.Duration(*c.UrgentReplyHours) * time.Hour
		}
		return time.Duration(s.opt.SLA.UrgentReplyHours) * time.Hour
	}
	if c.ReplyDays != nil {
		return time.Duration(*c.ReplyDays) * workDay
	}
	return time.Duration(s.opt.SLA.ReplyDays[t.Kind]) * workDay
}

func (s *Service) callbackAllowed() time.Duration {
	return time.Duration(s.opt.SLA.CallbackDays) * workDay
}

// yellow returns when a clock started at start and due at due turns yellow: when YellowShare of its working
// time is left.
func (s *Service) yellow(start, due time.Time) time.Time {
	total := s.Calendar().Between(start, due)
	return s.Calendar().Add(start, time.Duration(float64(total)*(1-s.opt.SLA.YellowShare)))
}

// clock is the running deadline written to the ticket row.
type clock struct {
	kind   *DueKind
	due    *time.Time
	yellow *time.Time
}

func (s *Service) runClock(kind DueKind, start, due time.Time) clock {
	y := s.yellow(start, due)
	return clock{kind: &kind, due: &due, yellow: &y}
}
