package campaign

import (
	"errors"
	"hotline/ticketing/calendar"
	"hotline/ticketing/org"
	"testing"
	"time"
)

type holidaySet map[string]bool

func (h holidaySet) IsHoliday(d time.Time) bool { return h[d.Format("2006-01-02")] }

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.CST)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowsNextOpen(t *testing.T) {
	// 2026-10-01..07 National Day (holidays); 2026-10-10 is a Saturday make-up working day (not a holiday).
	hol := holidaySet{"2026-10-01": true, "2026-10-02": true, "2026-10-05": true}
	def := DefaultWindows()
	weekdays := Windows{Days: []int{1, 2, 3, 4, 5}, Spans: []Span{{"09:00", "12:00"}}}
	tests := []struct {
		name string
		w    Windows
		now  string
		want string
		open bool
	}{
		{"inside morning", def, "2026-09-29 10:15", "2026-09-29 10:15", true},
		{"at opening", def, "2026-09-29 09:00", "2026-09-29 09:00", true},
		{"before opening", def, "2026-09-29 07:30", "2026-09-29 09:00", false},
		{"lunch break", def, "2026-09-29 12:00", "2026-09-29 14:00", false},
		{"evening closed at 20:00", def, "2026-09-29 20:00", "2026-09-30 09:00", false},
		{"night before holiday skips it", def, "2026-09-30 21:00", "2026-10-03 09:00", false},
		{"holiday itself", def, "2026-10-02 10:00", "2026-10-03 09:00", false},
		{"holiday allowed", Windows{Spans: def.Spans, CallOnHolidays: true}, "2026-10-02 10:00", "2026-10-02 10:00", true},
		{"weekdays only: saturday → monday", weekdays, "2026-10-03 10:00", "2026-10-06 09:00", false},
		{"weekdays only: monday holiday → tuesday", weekdays, "2026-10-04 13:00", "2026-10-06 09:00", false},
		{"span to midnight", Windows{Spans: []Span{{"22:00", "24:00"}}}, "2026-09-29 23:59", "2026-09-29 23:59", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.w.NextOpen(at(tc.now), hol)
			if !ok || !got.Equal(at(tc.want)) {
				t.Fatalf("NextOpen(%s) = %s %v, want %s", tc.now, got.In(calendar.CST).Format("2006-01-02 15:04"), ok, tc.want)
			}
			if open := tc.w.Open(at(tc.now), hol); open != tc.open {
				t.Fatalf("Open(%s) = %v, want %v", tc.now, open, tc.open)
			}
		})
	}
	if _, ok := (Windows{Days: []int{1}, Spans: def.Spans}).NextOpen(at("2026-10-01 08:00"), holidaySet{
		"2026-10-05": true, "2026-10-12": true, "2026-10-19": true, "2026-10-26": true, "2026-11-02": true,
		"2026-11-09": true, "2026-11-16": true, "2026-11-23": true, "2026-11-30": true}); ok {
		t.Fatal("a window that never opens within 60 days must say so")
	}
}

func TestWindowsLocalDayUsesCampaignZone(t *testing.T) {
	w := DefaultWindows()
	// 17:30 UTC is 01:30 next day in Shanghai.
	utc := time.Date(2026, 9, 29, 17, 30, 0, 0, time.UTC)
	if got := w.LocalDay(utc).Format("2006-01-02"); got != "2026-09-30" {
		t.Fatalf("LocalDay = %s", got)
	}
	if got := w.StartOfNextDay(utc); !got.Equal(at("2026-10-01 00:00")) {
		t.Fatalf("StartOfNextDay = %s", got)
	}
}

func TestDecide(t *testing.T) {
	c := &Campaign{Purpose: PurposeCheckin, Windows: DefaultWindows(), Retry: RetryRules{
		NoAnswer: Retry{DelayMS: (2 * time.Hour).Milliseconds(), MaxAttempts: 3},
		Busy:     Retry{DelayMS: (10 * time.Minute).Milliseconds(), MaxAttempts: 2},
		Failed:   Retry{DelayMS: 0, MaxAttempts: 1},
	}}
	cb := *c
	cb.Purpose = PurposeCallback
	hol := holidaySet{"2026-10-01": true}
	now := at("2026-09-29 10:00")
	tests := []struct {
		name     string
		c        *Campaign
		attempts int
		o        Outcome
		optOut   bool
		now      time.Time
		state    TargetState
		next     string
	}{
		{"answered is final", c, 1, OutcomeAnswered, false, now, TargetCompleted, ""},
		{"opt-out wins", c, 1, OutcomeAnswered, true, now, TargetOptedOut, ""},
		{"no answer retried after delay", c, 1, OutcomeNoAnswer, false, at("2026-09-29 09:00"), TargetPending, "2026-09-29 11:00"},
		{"no answer delay lands in lunch → 14:00", c, 2, OutcomeNoAnswer, false, at("2026-09-29 10:30"), TargetPending, "2026-09-29 14:00"},
		{"no answer at max", c, 3, OutcomeNoAnswer, false, now, TargetExhausted, ""},
		{"busy retried", c, 1, OutcomeBusy, false, now, TargetPending, "2026-09-29 10:10"},
		{"busy at max", c, 2, OutcomeBusy, false, now, TargetExhausted, ""},
		{"failed once only", c, 1, OutcomeFailed, false, now, TargetExhausted, ""},
		{"interrupted follows failed rule", c, 1, OutcomeInterrupted, false, now, TargetExhausted, ""},
		{"retry evening → skips holiday", c, 1, OutcomeBusy, false, at("2026-09-30 19:55"), TargetPending, "2026-10-02 09:00"},
		{"回访 out of attempts → manual", &cb, 3, OutcomeNoAnswer, false, now, TargetManual, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.c, tc.attempts, tc.o, tc.optOut, tc.now, hol)
			if d.State != tc.state {
				t.Fatalf("state = %s, want %s", d.State, tc.state)
			}
			if tc.next != "" && !d.NextAt.Equal(at(tc.next)) {
				t.Fatalf("next = %s, want %s", d.NextAt.In(calendar.CST).Format("2006-01-02 15:04"), tc.next)
			}
		})
	}
	c2 := *c
	c2.Retry.Interrupted = Retry{DelayMS: 1000, MaxAttempts: 3}
	if d := Decide(&c2, 1, OutcomeInterrupted, false, now, hol); d.State != TargetPending || !d.NextAt.Equal(now.Add(time.Second)) {
		t.Fatalf("own interrupted rule: %+v", d)
	}
}

func TestPacer(t *testing.T) {
	for _, rate := range []float64{0.5, 5, 50, 200, 1000} {
		p := NewPacer(rate)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		total := 0
		// 10 s of 10 ms ticks, always wanting more than allowed.
		for i := 0; i <= 1000; i++ {
			total += p.Take(t0.Add(time.Duration(i)*10*time.Millisecond), 1<<20)
		}
		want := rate*10 + 1 // one token to start with
		if diff := float64(total) - want; diff > p.Burst || diff < -1 {
			t.Errorf("rate %v: %d attempts in 10 s, want about %v", rate, total, want)
		}
	}
	// A long pause does not let a burst through: at most Burst at once.
	p := NewPacer(200)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Take(t0, 1000)
	if n := p.Take(t0.Add(time.Hour), 1000); n > 20 {
		t.Fatalf("burst after pause: %d", n)
	}
	// Tokens not used can be given back, but not beyond the burst.
	p = NewPacer(10)
	n := p.Take(t0, 5)
	p.Refund(n)
	if got := p.Take(t0, 5); got != n {
		t.Fatalf("refund: %d then %d", n, got)
	}
	if got := p.Take(t0.Add(50*time.Millisecond), 100); got != 0 {
		t.Fatalf("10/s pacer gave %d within 50 ms of spending", got)
	}
}

func TestTransition(t *testing.T) {
	tests := []struct {
		from   Status
		action string
		to     Status
		ok     bool
	}{
		{StatusDraft, "launch", StatusRunning, true},
		{StatusRunning, "pause", StatusPaused, true},
		{StatusPaused, "resume", StatusRunning, true},
		{StatusRunning, "finish", StatusFinished, true},
		{StatusPaused, "cancel", StatusCancelled, true},
		{StatusDraft, "cancel", StatusCancelled, true},
		{StatusDraft, "pause", "", false},
		{StatusRunning, "launch", "", false},
		{StatusFinished, "resume", "", false},
		{StatusCancelled, "launch", "", false},
		{StatusPaused, "finish", "", false},
	}
	for _, tc := range tests {
		got, err := Transition(tc.from, tc.action)
		if tc.ok && (err != nil || got != tc.to) {
			t.Errorf("%s %s: %v %v", tc.from, tc.action, got, err)
		}
		if !tc.ok {
			var se *org.StateError
			if !errors.As(err, &se) || !errors.Is(err, org.ErrState) {
				t.Errorf("%s %s: want state error, got %v", tc.from, tc.action, err)
			}
		}
	}
	_, err := Transition(StatusRunning, "launch")
	var se *org.StateError
	errors.As(err, &se)
	if len(se.Allowed) != 2 || se.Allowed[0] != "cancel" || se.Allowed[1] != "pause" {
		t.Fatalf("allowed from running: %v", se.Allowed)
	}
}

func TestNewCampaignValidation(t *testing.T) {
	good := NewCampaign{Name: "收入回访", Purpose: PurposeCheckin, CallerID: "12345", OptOutKey: "9",
		Script: Script{Questions: []Question{{ID: "income", Prompt: "q1.wav", Keys: "12", RiskKeys: "1", Next: map[string]string{"2": "end"}},
			{ID: "health", Prompt: "q2.wav", Keys: "12", RiskKeys: "1"}}, Final: "bye.wav"}}
	c, err := good.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if c.Pace != DefaultPace || c.MaxConcurrent != DefaultMaxConcurrent || c.DailyCap != DefaultDailyCap ||
		c.RingTimeoutMS != 30000 || len(c.Windows.Spans) != 2 || c.Retry.NoAnswer.MaxAttempts != 3 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	bad := []struct {
		field string
		f     func(*NewCampaign)
	}{
		{"name", func(n *NewCampaign) { n.Name = " " }},
		{"purpose", func(n *NewCampaign) { n.Purpose = "sales" }},
		{"caller_id", func(n *NewCampaign) { n.CallerID = "123\r\nX-Evil: 1" }},
		{"pace", func(n *NewCampaign) { n.Pace = -1 }},
		{"script.questions[0].prompt", func(n *NewCampaign) { n.Script.Questions[0].Prompt = "../etc/passwd.wav" }},
		{"script.questions[0].keys", func(n *NewCampaign) { n.Script.Questions[0].Keys = "19" }}, // opt-out key inside
		{"script.questions[0].risk_keys", func(n *NewCampaign) { n.Script.Questions[0].RiskKeys = "3" }},
		{"script.questions[0].next", func(n *NewCampaign) { n.Script.Questions[0].Next = map[string]string{"1": "nope"} }},
		{"windows.spans[0]", func(n *NewCampaign) { n.Windows = &Windows{Spans: []Span{{"14:00", "09:00"}}} }},
		{"retry.busy.max_attempts", func(n *NewCampaign) { r := DefaultRetry(); r.Busy.MaxAttempts = 0; n.Retry = &r }},
		{"standing", func(n *NewCampaign) { n.Standing = true }},
		{"target_query.region_prefix", func(n *NewCampaign) { n.Query.RegionPrefix = "11" }},
	}
	for _, b := range bad {
		n := good
		n.Script.Questions = append([]Question(nil), good.Script.Questions...)
		b.f(&n)
		_, err := n.normalize()
		var ve *org.ValidationError
		if !errors.As(err, &ve) || ve.Fields[b.field] == "" {
			t.Errorf("%s: want a fault on that field, got %v", b.field, err)
		}
	}
}

func TestScriptBranches(t *testing.T) {
	s := Script{Questions: []Question{
		{ID: "a", Keys: "12", Next: map[string]string{"2": "c"}},
		{ID: "b", Keys: "12", Next: map[string]string{"1": "end"}},
		{ID: "c", Keys: "12"},
	}}
	steps := []struct {
		i    int
		key  string
		next int
		ok   bool
	}{{0, "1", 1, true}, {0, "2", 2, true}, {0, "", 1, true}, {1, "1", 0, false}, {1, "2", 2, true}, {2, "1", 0, false}}
	for _, st := range steps {
		n, ok := s.NextQuestion(st.i, st.key)
		if ok != st.ok || (ok && n != st.next) {
			t.Errorf("after %d with %q: %d %v", st.i, st.key, n, ok)
		}
	}
	got := RiskQuestions(Script{Questions: []Question{{ID: "x", RiskKeys: "1"}, {ID: "y", RiskKeys: "2"}, {ID: "z"}}},
		map[string]string{"x": "1", "y": "1", "z": "1"})
	if len(got) != 1 || got[0] != "x" {
		t.Fatalf("risk questions: %v", got)
	}
}
