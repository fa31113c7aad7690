package sipua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/redis/go-redis/v9"

	"hotline/telephony"
	"hotline/ticketing/org"
)

// Registrar is the location service for agents' phones (neither sipgo nor diago has one): REGISTER with digest
// authentication against the agent's SIP account, bindings with expiry, several contacts per agent. Bindings
// live in Redis (a sorted set per SIP user, scored by expiry), so any process can ring any agent.
type Registrar struct {
	db     org.DB
	rdb    *redis.Client
	prefix string
	realm  string
	nonces nonces
	log    *slog.Logger
	minExp time.Duration
	maxExp time.Duration
}

func newRegistrar(db org.DB, rdb *redis.Client, prefix, realm string, log *slog.Logger) *Registrar {
	return &Registrar{db: db, rdb: rdb, prefix: prefix, realm: realm, log: log,
		nonces: nonces{rdb: rdb, prefix: prefix, ttl: 30 * time.Second}, minExp: 30 * time.Second, maxExp: time.Hour}
}

func (r *Registrar) key(user string) string { return r.prefix + "sip:reg:" + user }

// LiveBindings counts the unexpired registrations of a SIP user, read straight from Redis, so a process without
// a SIP listener (a web node) can show whether an agent's phone is registered.
func LiveBindings(ctx context.Context, rdb *redis.Client, prefix, sipUser string) (int, error) {
	n, err := rdb.ZCount(ctx, prefix+"sip:reg:"+sipUser, strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("registrations of %s: %w", sipUser, err)
	}
	return int(n), nil
}

// Contacts returns the live contacts of an agent's SIP user, dropping expired ones.
func (r *Registrar) Contacts(ctx context.Context, sipUser string) ([]sip.Uri, error) {
	now := time.Now().UnixMilli()
	k := r.key(sipUser)
	if err := r.rdb.ZRemRangeByScore(ctx, k, "-inf", strconv.FormatInt(now, 10)).Err(); err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", sipUser, err)
	}
	vals, err := r.rdb.ZRange(ctx, k, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", sipUser, err)
	}
	out := make([]sip.Uri, 0, len(vals))
	for _, v := range vals {
		var u sip.Uri
		if SafeHeaderValue(v) != nil || sip.ParseUri(v, &u) != nil {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// serve handles one REGISTER.
func (r *Registrar) serve(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := r.handle(ctx, req)
	if err != nil {
		if !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrMalformed) {
			r.log.Warn("REGISTER failed", "source", req.Source(), "err", err)
		}
		res = Response(req, err)
	}
	tx.Respond(res)
}

func (r *Registrar) handle(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	to := req.To()
	if to == nil || to.Address.User == "" || req.CallID() == nil {
		return nil, ErrMalformed
	}
	user := to.Address.User
	if err := SafeHeaderValue(user); err != nil {
		return nil, ErrMalformed
	}
	scope := "reg:" + user
	cred := credentials(req)
	if cred == nil {
		return r.nonces.challenge(ctx, req, r.realm, scope, false)
	}
	fresh, err := r.nonces.consume(ctx, cred.Nonce, scope)
	if err != nil {
		return nil, err
	}
	if !fresh {
		// Unknown, used or expired nonce: challenge again; stale tells the phone its password was not the problem.
		return r.nonces.challenge(ctx, req, r.realm, scope, true)
	}
	acct, err := telephony.SIPAccountByUser(ctx, r.db, user)
	if errors.Is(err, org.ErrNotFound) || (err == nil && (cred.Username != user || cred.Realm != acct.Realm)) {
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if !verify(cred, string(req.Method), acct.HA1) {
		r.log.Info("REGISTER with wrong password", "sip_user", user, "source", req.Source())
		return nil, ErrBadCredentials
	}
	if err := r.bind(ctx, req, user); err != nil {
		return nil, err
	}
	return r.ok(ctx, req, user)
}

// bind applies the Contact headers of an authenticated REGISTER.
func (r *Registrar) bind(ctx context.Context, req *sip.Request, user string) error {
	defExp := 3600 * time.Second
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return ErrMalformed
		}
		defExp = time.Duration(n) * time.Second
	}
	k := r.key(user)
	now := time.Now()
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return ErrMalformed
		}
		if c.Address.Wildcard {
			if defExp != 0 {
				return ErrMalformed // RFC 3261 10.3 step 6: "*" only with Expires: 0
			}
			return r.rdb.Del(ctx, k).Err()
		}
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return ErrMalformed
			}
			exp = time.Duration(n) * time.Second
		}
		u := c.Address.Clone()
		u.Headers = nil // URI headers have no place in a binding
		contact := u.String()
		if SafeHeaderValue(contact) != nil || u.Host == "" {
			return ErrMalformed
		}
		if exp == 0 {
			if err := r.rdb.ZRem(ctx, k, contact).Err(); err != nil {
				return err
			}
			continue
		}
		exp = min(max(exp, r.minExp), r.maxExp)
		if err := r.rdb.ZAdd(ctx, k, redis.Z{Score: float64(now.Add(exp).UnixMilli()), Member: contact}).Err(); err != nil {
			return err
		}
		r.rdb.Expire(ctx, k, r.maxExp+time.Minute)
	}
	return nil
}

// ok answers 200 with every current binding and its remaining time (RFC 3261 10.3 step 8).
func (r *Registrar) ok(ctx context.Context, req *sip.Request, user string) (*sip.Response, error) {
	zs, err := r.rdb.ZRangeByScoreWithScores(ctx, r.key(user), &redis.ZRangeBy{Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, z := range zs {
		var u sip.Uri
		if sip.ParseUri(z.Member.(string), &u) != nil {
			continue
		}
		left := int(time.Until(time.UnixMilli(int64(z.Score))).Seconds())
		p := sip.NewParams()
		p.Add("expires", strconv.Itoa(max(left, 1)))
		res.AppendHeader(&sip.ContactHeader{Address: u, Params: p})
	}
	return res, nil
}
