package telephony

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/jackc/pgerrcode"
	"hotline/ticketing/org"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// SIPAccount is an agent's SIP identity: the registrar authenticates REGISTER against HA1.
type SIPAccount struct {
	UserID  org.UserID
	SIPUser string
	Realm   string
	HA1     string
	Skills  []string
}

var sipUserRE = regexp.MustCompile(`^[a-z0-9_.-]{2,64}$`)

// HA1 is md5(user:realm:password) as RFC 2617 defines it.
func HA1(user, realm, password string) string {
	h := md5.Sum([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(h[:])
}

// SetSIPAccount gives an agent SIP credentials and skills (e.g. "xiang" for a 湘语 dialect seat), creating or
// replacing them, and an agent_status row (offline) if there is none.
func SetSIPAccount(ctx context.Context, db org.TxBeginner, user org.UserID, sipUser, realm, password string, skills []string) error {
	ve := &org.ValidationError{}
	if !sipUserRE.MatchString(sipUser) {
		ve.Add("sip_user", "2-64 of a-z 0-9 _ . -")
	}
	if len(password) < 8 {
		ve.Add("password", "at least 8 characters")
	}
	if err := ve.Err(); err != nil {
		return err
	}
	if skills == nil {
		skills = []string{}
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var role string
		if err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, user).Scan(&role); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("user %d: %w", user, org.ErrNotFound)
			}
			return err
		}
		if org.Role(role) != org.RoleAgent {
			return org.Invalid("user", "only agents get SIP accounts")
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO sip_accounts (user_id, sip_user, realm, ha1, skills) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id) DO UPDATE SET sip_user = EXCLUDED.sip_user, realm = EXCLUDED.realm,
				ha1 = EXCLUDED.ha1, skills = EXCLUDED.skills`,
			user, sipUser, realm, HA1(sipUser, realm, password), skills)
		if err != nil {
			if org.SQLState(err) == pgerrcode.UniqueViolation {
				return org.Invalid("sip_user", "taken")
			}
			return fmt.Errorf("set SIP account of user %d: %w", user, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO agent_status (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, user)
		return err
	})
}

// SIPAccountByUser finds the account of a SIP user name (REGISTER's username), active users only.
func SIPAccountByUser(ctx context.Context, db org.DB, sipUser string) (SIPAccount, error) {
	var a SIPAccount
	err := db.QueryRow(ctx, `
		SELECT s.user_id, s.sip_user, s.realm, s.ha1, s.skills FROM sip_accounts s JOIN users u ON u.id = s.user_id
		WHERE s.sip_user = $1 AND u.active`, sipUser).Scan(&a.UserID, &a.SIPUser, &a.Realm, &a.HA1, &a.Skills)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("SIP user %q: %w", sipUser, org.ErrNotFound)
	}
	return a, err
}

// Agent is an agent as ACD and the API see it.
type Agent struct {
	UserID   org.UserID `json:"user_id"`
	Username string     `json:"username"`
	Name     string     `json:"name"`
	SIPUser  string     `json:"sip_user"`
	Skills   []string   `json:"skills"`
	State    AgentState `json:"state"`
	Reason   string     `json:"reason"`
	CallID   CallID     `json:"call_id,omitempty"`
	Since    time.Time  `json:"since"`
}

const agentCols = `a.user_id, u.username, u.display_name, s.sip_user, s.skills, a.state, a.reason, coalesce(a.call_id, 0), a.since`

func scanAgent(row pgx.CollectableRow) (Agent, error) {
	var a Agent
	err := row.Scan(&a.UserID, &a.Username, &a.Name, &a.SIPUser, &a.Skills, &a.State, &a.Reason, &a.CallID, &a.Since)
	return a, err
}

// ListAgents returns every agent with a SIP account and its state.
func ListAgents(ctx context.Context, db org.DB) ([]Agent, error) {
	rows, err := db.Query(ctx, `SELECT `+agentCols+` FROM agent_status a JOIN users u ON u.id = a.user_id
		JOIN sip_accounts s ON s.user_id = a.user_id ORDER BY u.username`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return pgx.CollectRows(rows, scanAgent)
}

// GetAgent returns one agent.
func GetAgent(ctx context.Context, db org.DB, id org.UserID) (Agent, error) {
	rows, err := db.Query(ctx, `SELECT `+agentCols+` FROM agent_status a JOIN users u ON u.id = a.user_id
		JOIN sip_accounts s ON s.user_id = a.user_id WHERE a.user_id = $1`, id)
	if err != nil {
		return Agent{}, err
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("agent %d: %w", id, org.ErrNotFound)
	}
	return a, err
}

// AgentStateEvent is the payload of TopicAgentState.
type AgentStateEvent struct {
	UserID org.UserID `json:"user_id"`
	State  AgentState `json:"state"`
	Reason string     `json:"reason"`
	CallID CallID     `json:"call_id,omitempty"`
	At     time.Time  `json:"at"`
}

// setState writes the state, the log row and the event in tx.
func (s *Service) setState(ctx context.Context, tx pgx.Tx, user org.UserID, st AgentState, reason string, call CallID) error {
	var callArg any
	if call != 0 {
		callArg = call
	}
	idle := st == StateReady
	var at time.Time
	err := tx.QueryRow(ctx, `
		UPDATE agent_status SET state = $2, reason = $3, call_id = $4, since = now(),
			idle_since = CASE WHEN $5 THEN now() ELSE idle_since END
		WHERE user_id = $1 RETURNING since`, user, st, reason, callArg, idle).Scan(&at)
	if err != nil {
		return fmt.Errorf("set state of agent %d: %w", user, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO agent_state_log (user_id, state, reason, call_id) VALUES ($1, $2, $3, $4)`,
		user, st, reason, callArg); err != nil {
		return err
	}
	return s.publish(ctx, tx, TopicAgentState, strconv.FormatInt(int64(user), 10),
		AgentStateEvent{UserID: user, State: st, Reason: reason, CallID: call, At: at})
}

// SetAgentState is the API's state change: an agent sets itself ready, paused (with a reason) or offline; a
// supervisor may do so for any agent. Busy and after-call work belong to calls: an agent on a call cannot leave
// it by API, and after-call work may only be ended early (→ ready).
func (s *Service) SetAgentState(ctx context.Context, actor org.Actor, user org.UserID, st AgentState, reason string) (Agent, error) {
	if actor.UserID != user && actor.Role != org.RoleSupervisor && actor.Role != org.RoleAdmin {
		return Agent{}, &org.StateError{Action: "set_agent_state", State: "other_agent", Allowed: []string{}, Reason: org.ErrForbidden}
	}
	switch st {
	case StateReady, StateOffline:
		reason = ""
	case StatePaused:
		if reason == "" {
			return Agent{}, org.Invalid("reason", "required when paused")
		}
		if len(reason) > 100 {
			return Agent{}, org.Invalid("reason", "at most 100 characters")
		}
	default:
		return Agent{}, org.Invalid("state", "one of ready, paused, offline")
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var cur AgentState
		if err := tx.QueryRow(ctx, `SELECT state FROM agent_status WHERE user_id = $1 FOR UPDATE`, user).Scan(&cur); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("agent %d: %w", user, org.ErrNotFound)
			}
			return err
		}
		if cur == StateBusy {
			return &org.StateError{Action: "set_agent_state", State: string(cur), Allowed: []string{}, Reason: org.ErrState}
		}
		return s.setState(ctx, tx, user, st, reason, 0)
	})
	if err != nil {
		return Agent{}, err
	}
	s.staffed.invalidate() // signing in or out is the only change Staffed answers about
	s.wake()
	return GetAgent(ctx, s.db, user)
}

// ReserveAgent picks the ready agent idle longest whose skills include all of skills, not in exclude, and marks
// it busy (ringing) for the call, in one transaction; concurrent callers skip each other's locked rows. It
// returns ticketing.ErrNotFound when nobody fits.
func (s *Service) ReserveAgent(ctx context.Context, call CallID, skills []string, exclude []org.UserID) (Agent, error) {
	if skills == nil {
		skills = []string{}
	}
	ex := make([]int64, len(exclude))
	for i, e := range exclude {
		ex[i] = int64(e)
	}
	var a Agent
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT a.user_id, u.username, u.display_name, s.sip_user, s.skills FROM agent_status a
			JOIN users u ON u.id = a.user_id JOIN sip_accounts s ON s.user_id = a.user_id
			WHERE a.state = 'ready' AND u.active AND s.skills @> $1 AND NOT (a.user_id = ANY($2))
			ORDER BY a.idle_since LIMIT 1 FOR UPDATE OF a SKIP LOCKED`, skills, ex).
			Scan(&a.UserID, &a.Username, &a.Name, &a.SIPUser, &a.Skills)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no ready agent with skills %v: %w", skills, org.ErrNotFound)
		}
		if err != nil {
			return err
		}
		a.State, a.Reason, a.CallID = StateBusy, ReasonRinging, call
		return s.setState(ctx, tx, a.UserID, StateBusy, ReasonRinging, call)
	})
	return a, err
}

// MarkTalking records that the reserved agent answered.
func (s *Service) MarkTalking(ctx context.Context, user org.UserID, call CallID) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return s.setState(ctx, tx, user, StateBusy, ReasonTalking, call) })
}

// ReleaseAgent ends an agent's part in a call: after a talk into after-call work (or ready when it is zero); after
// no answer or an unreachable phone into paused with that reason. Only a row still busy with this call changes,
// so a supervisor's change in the meantime is kept.
func (s *Service) ReleaseAgent(ctx context.Context, user org.UserID, call CallID, talked bool, pauseReason string) error {
	st, reason := StateReady, ""
	switch {
	case pauseReason != "":
		st, reason = StatePaused, pauseReason
	case talked && s.acw > 0:
		st = StateACW
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var cur AgentState
		var curCall *int64
		err := tx.QueryRow(ctx, `SELECT state, call_id FROM agent_status WHERE user_id = $1 FOR UPDATE`, user).Scan(&cur, &curCall)
		if err != nil {
			return err
		}
		if cur != StateBusy || curCall == nil || CallID(*curCall) != call {
			return nil
		}
		return s.setState(ctx, tx, user, st, reason, 0)
	})
	if err == nil && st == StateReady {
		s.wake()
	}
	return err
}

// SweepACW moves agents whose after-call work is over back to ready and returns how many.
func (s *Service) SweepACW(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT user_id FROM agent_status WHERE state = 'acw' AND since <= now() - $1::interval
			FOR UPDATE SKIP LOCKED`, s.acw.String())
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.setState(ctx, tx, org.UserID(id), StateReady, "", 0); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if n > 0 {
		s.wake()
	}
	return n, err
}

// Staffed reports whether any agent is signed in (not offline) with the given skills: with nobody staffed,
// waiting in the queue is pointless and the caller goes straight to voicemail. Answered from memory for up to
// staffedTTL (staffed.go): a query per call was one more pool connection per call under load.
func (s *Service) Staffed(ctx context.Context, skills []string) (bool, error) {
	return s.staffed.get(ctx, skills, func(ctx context.Context) (bool, error) {
		if skills == nil {
			skills = []string{}
		}
		var ok bool
		err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agent_status a JOIN sip_accounts s ON s.user_id = a.user_id
			WHERE a.state <> 'offline' AND s.skills @> $1)`, skills).Scan(&ok)
		return ok, err
	})
}
