package sipua

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// Stored trunks: the ones an admin adds in the console (table sip_trunks), next to HOTLINE_SIP_TRUNKS. The
// variable's entry wins over a stored trunk of the same name, so an operator can always override what is in the
// database; every SIP process reloads the table (RunTrunkReload).

// StoredTrunk is a trunk as the admin API shows it: never the password or its hash.
type StoredTrunk struct {
	Name      string    `json:"name"`
	Networks  []string  `json:"networks"`
	Numbers   []string  `json:"numbers"`
	Skills    []string  `json:"skills"`
	Username  string    `json:"username"`
	HasSecret bool      `json:"has_password"`
	Active    bool      `json:"active"`
	UpdatedAt time.Time `json:"updated_at"`
	// FromEnv: a trunk of HOTLINE_SIP_TRUNKS with this name overrides this one (set by the web layer).
	FromEnv bool `json:"overridden_by_env,omitempty"`
}

// TrunkInput is what an admin saves; an empty Password keeps the stored one (same username and realm).
type TrunkInput struct {
	Networks []string `json:"networks"`
	Numbers  []string `json:"numbers"`
	Skills   []string `json:"skills"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Active   *bool    `json:"active"`
}

var trunkName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

const trunkColumns = `name, networks, numbers, skills, username, ha1 <> '', active, updated_at`

func scanStored(row pgx.CollectableRow) (StoredTrunk, error) {
	var t StoredTrunk
	err := row.Scan(&t.Name, &t.Networks, &t.Numbers, &t.Skills, &t.Username, &t.HasSecret, &t.Active, &t.UpdatedAt)
	return t, err
}

// ListStoredTrunks returns the stored trunks by name (admins).
func ListStoredTrunks(ctx context.Context, db org.DB, a org.Actor) ([]StoredTrunk, error) {
	if err := org.MayAdminister(a); err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT `+trunkColumns+` FROM sip_trunks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list trunks: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanStored)
	if err != nil {
		return nil, fmt.Errorf("list trunks: %w", err)
	}
	if ts == nil {
		ts = []StoredTrunk{}
	}
	return ts, nil
}

// SaveTrunk creates or replaces a stored trunk with its admin audit row (without the password), in one
// transaction. realm is HOTLINE_SIP_REALM, which the digest hash is bound to.
func SaveTrunk(ctx context.Context, db org.TxBeginner, a org.Actor, src org.Source, name string, in TrunkInput, realm string) (StoredTrunk, error) {
	if err := org.MayAdminister(a); err != nil {
		return StoredTrunk{}, err
	}
	v := &org.ValidationError{}
	if !trunkName.MatchString(name) {
		v.Add("name", "1-64 of A-Z a-z 0-9 _ . -")
	}
	nets := []string{}
	for _, n := range in.Networks {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !strings.Contains(n, "/") {
			if ad, err := netip.ParseAddr(n); err == nil {
				n = netip.PrefixFrom(ad, ad.BitLen()).String()
			}
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			v.Add("networks", fmt.Sprintf("%q is not an address or network (10.1.0.0/24)", n))
			continue
		}
		nets = append(nets, p.Masked().String())
	}
	clean := func(l []string) []string {
		out := []string{}
		for _, x := range l {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	numbers, skills := clean(in.Numbers), clean(in.Skills)
	in.Username = strings.TrimSpace(in.Username)
	if len(nets) == 0 && in.Username == "" {
		v.Add("networks", "give the trunk's source networks or credentials")
	}
	if in.Username != "" && SafeHeaderValue(in.Username) != nil {
		v.Add("username", "not a valid SIP user")
	}
	if in.Password != "" && len(in.Password) < 8 {
		v.Add("password", "at least 8 characters")
	}
	if err := v.Err(); err != nil {
		return StoredTrunk{}, err
	}
	active := in.Active == nil || *in.Active
	var out StoredTrunk
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+trunkColumns+` FROM sip_trunks WHERE name = $1 FOR UPDATE`, name)
		prev, err := pgx.CollectRows(rows, scanStored)
		if err != nil {
			return fmt.Errorf("save trunk %s: %w", name, err)
		}
		var before any
		ha1 := ""
		if len(prev) == 1 {
			before = prev[0]
			if in.Password == "" && in.Username != "" {
				// Keep the stored secret only when it still belongs to this user and realm.
				if err := tx.QueryRow(ctx, `SELECT ha1 FROM sip_trunks WHERE name = $1 AND username = $2 AND realm = $3`,
					name, in.Username, realm).Scan(&ha1); errors.Is(err, pgx.ErrNoRows) {
					return org.Invalid("password", "required: the username or the realm changed")
				} else if err != nil {
					return fmt.Errorf("save trunk %s: %w", name, err)
				}
			}
		}
		if in.Username != "" && in.Password != "" {
			ha1 = md5hex(in.Username + ":" + realm + ":" + in.Password)
		}
		if in.Username != "" && ha1 == "" {
			return org.Invalid("password", "required with a username")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sip_trunks (name, networks, numbers, skills, username, realm, ha1, active, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
			ON CONFLICT (name) DO UPDATE SET networks = EXCLUDED.networks, numbers = EXCLUDED.numbers, skills = EXCLUDED.skills,
				username = EXCLUDED.username, realm = EXCLUDED.realm, ha1 = EXCLUDED.ha1, active = EXCLUDED.active, updated_at = now()`,
			name, nets, numbers, skills, in.Username, realm, ha1, active); err != nil {
			return fmt.Errorf("save trunk %s: %w", name, err)
		}
		rows, _ = tx.Query(ctx, `SELECT `+trunkColumns+` FROM sip_trunks WHERE name = $1`, name)
		if out, err = pgx.CollectExactlyOneRow(rows, scanStored); err != nil {
			return fmt.Errorf("save trunk %s: %w", name, err)
		}
		return org.WriteAdminAudit(ctx, tx, a, src, org.AdminTrunkSave, "trunk:"+name, before, out)
	})
	return out, err
}

// DeleteTrunk removes a stored trunk, with its audit row (calls from it are refused from the next reload).
func DeleteTrunk(ctx context.Context, db org.TxBeginner, a org.Actor, src org.Source, name string) error {
	if err := org.MayAdminister(a); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `DELETE FROM sip_trunks WHERE name = $1 RETURNING `+trunkColumns, name)
		prev, err := pgx.CollectExactlyOneRow(rows, scanStored)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("trunk %s: %w", name, org.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete trunk %s: %w", name, err)
		}
		return org.WriteAdminAudit(ctx, tx, a, src, org.AdminTrunkDelete, "trunk:"+name, prev, nil)
	})
}

// LoadTrunks returns the active stored trunks as the SIP server uses them.
func LoadTrunks(ctx context.Context, db org.DB) ([]Trunk, error) {
	rows, err := db.Query(ctx, `SELECT name, networks, numbers, skills, username, ha1 FROM sip_trunks WHERE active ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("load trunks: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Trunk, error) {
		var t Trunk
		var nets []string
		if err := row.Scan(&t.Name, &nets, &t.Numbers, &t.Skills, &t.Username, &t.HA1); err != nil {
			return t, err
		}
		for _, n := range nets {
			if p, err := netip.ParsePrefix(n); err == nil {
				t.Networks = append(t.Networks, p)
			}
		}
		return t, nil
	})
}

// MergeTrunks is the trunk list in force: every trunk of the environment, then each stored trunk whose name the
// environment does not define (the environment wins).
func MergeTrunks(env, stored []Trunk) []Trunk {
	out := append([]Trunk(nil), env...)
	names := map[string]bool{}
	for _, t := range env {
		names[t.Name] = true
	}
	for _, t := range stored {
		if !names[t.Name] {
			out = append(out, t)
		}
	}
	return out
}

// RunTrunkReload reloads the stored trunks into the server every interval until ctx ends; a failed load keeps the
// list in force (logged), so a database hiccup never drops the trunks.
func (s *Server) RunTrunkReload(ctx context.Context, db org.DB, env []Trunk, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		stored, err := LoadTrunks(ctx, db)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reload stored SIP trunks", "err", err)
			}
			continue
		}
		s.SetTrunks(MergeTrunks(env, stored))
	}
}
