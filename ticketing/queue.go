package ticketing

import (
	"context"
	"errors"
	"fmt"
	"hotline/ticketing/org"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout (every key starts with the configured prefix P):
//
//	P events                    stream, capped (MAXLEN ~): every outbox row as fields topic, key, payload (JSON)
//	P queue:<unit>:urgent       stream per unit with consumer group "handlers": urgent tickets to act on
//	P queue:<unit>:normal       the same for normal tickets; claims take urgent entries first
//	P queue:<unit>:members      hash ticket id → "<urgent|normal>|<entry id>|<seq>": at most one entry per ticket
//	P queues                    set of unit ids that have had a queue (metrics, rebuild)
//	P outbox:<id>               marker (24 h) that outbox row <id> was published, so a replay changes nothing
//
// A unit's queue holds the tickets waiting for that unit: dispatched tickets in their lead unit's queue until
// signed, new and returned ones in the dispatch desk's queue until dispatched. Redis carries work, not truth:
// the queues can be rebuilt from PostgreSQL at any time (RebuildQueues).

// Group is the consumer group of every unit queue.
const Group = "handlers"

// Queue key names.
func EventsKey(prefix string) string { return prefix + "events" }
func QueueKey(prefix string, unit org.UnitID, urgent bool) string {
	if urgent {
		return fmt.Sprintf("%squeue:%d:urgent", prefix, unit)
	}
	return fmt.Sprintf("%squeue:%d:normal", prefix, unit)
}
func membersKey(prefix string, unit org.UnitID) string {
	return fmt.Sprintf("%squeue:%d:members", prefix, unit)
}

// queueScript applies one outbox row atomically: skip it if its marker exists, else set the marker, append to
// the event stream, remove the ticket from the units it leaves, add it to the unit it enters (once: an entry
// with the same seq already there is kept; an older one is replaced).
//
// ARGV: 1 marker key ("" = no marker), 2 marker ttl, 3 events key ("" = no event), 4 maxlen, 5 topic, 6 key,
// 7 payload, 8 prefix, 9 ticket id, 10 number of units to remove, then those units, then add unit ("" = none),
// urgent (1/0), seq.
var queueScript = redis.NewScript(`
local p = ARGV[8]
local tid = ARGV[9]
if ARGV[1] ~= '' then
  if not redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) then return 0 end
end
if ARGV[3] ~= '' then
  redis.call('XADD', ARGV[3], 'MAXLEN', '~', ARGV[4], '*', 'topic', ARGV[5], 'key', ARGV[6], 'payload', ARGV[7])
end
local function remove(unit)
  local members = p .. 'queue:' .. unit .. ':members'
  local v = redis.call('HGET', members, tid)
  if v then
    local prio, id = string.match(v, '^(%a+)|([^|]+)|')
    local s = p .. 'queue:' .. unit .. ':' .. prio
    redis.call('XACK', s, 'handlers', id)
    redis.call('XDEL', s, id)
    redis.call('HDEL', members, tid)
  end
end
local nrem = tonumber(ARGV[10])
for i = 1, nrem do remove(ARGV[10 + i]) end
local a = 11 + nrem
local unit = ARGV[a]
if unit and unit ~= '' then
  local prio = 'normal'
  if ARGV[a + 1] == '1' then prio = 'urgent' end
  local seq = ARGV[a + 2]
  local members = p .. 'queue:' .. unit .. ':members'
  local v = redis.call('HGET', members, tid)
  if v then
    local oldseq = string.match(v, '|([^|]*)$')
    if oldseq == seq then return 1 end
    remove(unit)
  end
  local s = p .. 'queue:' .. unit .. ':' .. prio
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, 'handlers', '0', 'MKSTREAM')
  end
  local id = redis.call('XADD', s, '*', 'ticket', tid, 'seq', seq)
  redis.call('HSET', members, tid, prio .. '|' .. id .. '|' .. seq)
  redis.call('SADD', p .. 'queues', unit)
end
return 1
`)

func queueArgs(marker string, ttl time.Duration, events string, maxLen int64, topic, key string, payload []byte, prefix string, q *queueOps) []any {
	args := []any{marker, int64(ttl / time.Second), events, maxLen, topic, key, payload, prefix, "", 0}
	if q == nil {
		return args
	}
	args[8] = strconv.FormatInt(int64(q.Ticket), 10)
	args[9] = len(q.Remove)
	for _, u := range q.Remove {
		args = append(args, int64(u))
	}
	if q.Add != nil {
		urgent := "0"
		if q.Add.Urgent {
			urgent = "1"
		}
		args = append(args, int64(q.Add.Unit), urgent, q.Add.Seq)
	}
	return args
}

// Queues is the Redis side of the unit queues: claim, reclaim, depth, rebuild.
type Queues struct {
	db     org.DB
	rdb    *redis.Client
	prefix string
}

// NewQueues returns the queues under prefix.
func NewQueues(db org.DB, rdb *redis.Client, prefix string) *Queues {
	return &Queues{db: db, rdb: rdb, prefix: prefix}
}

// QueueEntry is a ticket taken from a unit's queue.
type QueueEntry struct {
	Ticket  org.TicketID `json:"ticket_id"`
	EntryID string       `json:"entry_id"`
	Urgent  bool         `json:"urgent"`
}

func consumer(a org.Actor) string { return "u" + strconv.FormatInt(int64(a.UserID), 10) }

// Claim takes the next ticket of the actor's unit queue, urgent first, for the actor: the entry stays pending
// for the actor until the ticket is signed (which acknowledges it). Entries whose ticket no longer waits for the
// unit (signed, returned or moved while Redis lagged) are dropped on the way. ErrNotFound: the queue is empty.
func (q *Queues) Claim(ctx context.Context, a org.Actor, unit org.UnitID) (QueueEntry, error) {
	if err := q.canUse(a, unit); err != nil {
		return QueueEntry{}, err
	}
	for range 50 {
		e, err := q.read(ctx, a, unit)
		if err != nil {
			return QueueEntry{}, err
		}
		ok, err := q.valid(ctx, unit, e)
		if err != nil {
			return QueueEntry{}, err
		}
		if ok {
			return e, nil
		}
	}
	return QueueEntry{}, fmt.Errorf("claim from unit %d: %w", unit, org.ErrNotFound)
}

func (q *Queues) canUse(a org.Actor, unit org.UnitID) error {
	if (a.Role == org.RoleStaff || a.Role == org.RoleHead || a.Role == org.RoleDispatcher || a.Role == org.RoleAgent) && a.UnitID != unit {
		return fmt.Errorf("queue of unit %d: %w", unit, org.ErrForbidden)
	}
	if a.Role == org.RoleCampaignManager || a.Role == org.RoleSupervisor {
		return fmt.Errorf("queue of unit %d: %w", unit, org.ErrForbidden)
	}
	return nil
}

func (q *Queues) read(ctx context.Context, a org.Actor, unit org.UnitID) (QueueEntry, error) {
	for _, urgent := range []bool{true, false} {
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: consumer(a),
			Streams: []string{QueueKey(q.prefix, unit, urgent), ">"}, Count: 1, Block: -1}).Result()
		if errors.Is(err, redis.Nil) || (err != nil && strings.HasPrefix(err.Error(), "NOGROUP")) {
			continue
		}
		if err != nil {
			return QueueEntry{}, fmt.Errorf("claim from unit %d: %w", unit, err)
		}
		if len(res) > 0 && len(res[0].Messages) > 0 {
			return entryOf(res[0].Messages[0], urgent), nil
		}
	}
	return QueueEntry{}, fmt.Errorf("claim from unit %d: %w", unit, org.ErrNotFound)
}

func entryOf(m redis.XMessage, urgent bool) QueueEntry {
	id, _ := strconv.ParseInt(fmt.Sprint(m.Values["ticket"]), 10, 64)
	return QueueEntry{Ticket: org.TicketID(id), EntryID: m.ID, Urgent: urgent}
}

// valid checks the entry against PostgreSQL and drops it from Redis when its ticket no longer waits there.
func (q *Queues) valid(ctx context.Context, unit org.UnitID, e QueueEntry) (bool, error) {
	var status Status
	var lead org.UnitID
	err := q.db.QueryRow(ctx, `SELECT status, lead_unit_id FROM tickets WHERE id = $1`, int64(e.Ticket)).Scan(&status, &lead)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		return false, fmt.Errorf("claim: check ticket %d: %w", e.Ticket, err)
	}
	if err == nil && status == StatusDispatched && lead == unit {
		return true, nil
	}
	desk := err == nil && (status == StatusNew || status == StatusReturned)
	if desk { // the desk's own queue: the ticket waits there while new or returned
		var deskID org.UnitID
		if q.db.QueryRow(ctx, `SELECT id FROM units WHERE code = $1`, org.CodeDesk).Scan(&deskID) == nil && deskID == unit {
			return true, nil
		}
	}
	s := QueueKey(q.prefix, unit, e.Urgent)
	pipe := q.rdb.TxPipeline()
	pipe.XAck(ctx, s, Group, e.EntryID)
	pipe.XDel(ctx, s, e.EntryID)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("claim: drop stale entry: %w", err)
	}
	// Only forget the member if it still points at this entry (a newer entry may have replaced it).
	mk := membersKey(q.prefix, unit)
	if v, err := q.rdb.HGet(ctx, mk, strconv.FormatInt(int64(e.Ticket), 10)).Result(); err == nil && strings.Contains(v, "|"+e.EntryID+"|") {
		q.rdb.HDel(ctx, mk, strconv.FormatInt(int64(e.Ticket), 10))
	}
	return false, nil
}

// Reclaim takes over an entry another handler claimed at least minIdle ago and never signed for (its claimant
// went away): the sign-by deadline passing is reported by the SLA sweeper, and this hands the ticket on.
func (q *Queues) Reclaim(ctx context.Context, a org.Actor, unit org.UnitID, minIdle time.Duration) (QueueEntry, error) {
	if err := q.canUse(a, unit); err != nil {
		return QueueEntry{}, err
	}

	for _, urgent := range []bool{true, false} {
		msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: QueueKey(q.prefix, unit, urgent), Group: Group,
			MinIdle: minIdle, Start: "0", Count: 1, Consumer: consumer(a)}).Result()
		if errors.Is(err, redis.Nil) || (err != nil && strings.HasPrefix(err.Error(), "NOGROUP")) {
			continue
		}
		if err != nil {
			return QueueEntry{}, fmt.Errorf("reclaim from unit %d: %w", unit, err)
		}
		for _, m := range msgs {
			e := entryOf(m, urgent)
			ok, err := q.valid(ctx, unit, e)
			if err != nil {
				return QueueEntry{}, err
			}
			if ok {
				return e, nil
			}
		}
	}
	return QueueEntry{}, fmt.Errorf("reclaim from unit %d: %w", unit, org.ErrNotFound)
}

// MinReclaimIdle is the shortest idle time after which people may take over a claimed entry (the API refuses
// less): below it a colleague's entry could be taken while they are still reading it.
const MinReclaimIdle = 5 * time.Minute

// Entries lists a unit's queue in order (urgent first) without claiming, to the unit's own users (and admins).
func (q *Queues) Entries(ctx context.Context, a org.Actor, unit org.UnitID) ([]QueueEntry, error) {
	if err := q.canUse(a, unit); err != nil {
		return nil, err
	}
	var out []QueueEntry
	for _, urgent := range []bool{true, false} {
		msgs, err := q.rdb.XRange(ctx, QueueKey(q.prefix, unit, urgent), "-", "+").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("queue of unit %d: %w", unit, err)
		}
		for _, m := range msgs {
			out = append(out, entryOf(m, urgent))
		}
	}
	return out, nil
}

// Depth returns the number of tickets in each unit's queue.
func (q *Queues) Depth(ctx context.Context) (map[org.UnitID]int64, error) {
	units, err := q.rdb.SMembers(ctx, q.prefix+"queues").Result()
	if err != nil {
		return nil, fmt.Errorf("queue depth: %w", err)
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(units))
	for i, u := range units {
		id, _ := strconv.ParseInt(u, 10, 64)
		cmds[i] = pipe.HLen(ctx, membersKey(q.prefix, org.UnitID(id)))
	}
	if len(units) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("queue depth: %w", err)
		}
	}
	out := make(map[org.UnitID]int64, len(units))
	for i, u := range units {
		id, _ := strconv.ParseInt(u, 10, 64)
		out[org.UnitID(id)] = cmds[i].Val()
	}
	return out, nil
}

// RebuildQueues deletes every unit queue and refills them from PostgreSQL: dispatched tickets into their lead
// unit's queue in order of dispatch, new and returned ones into the desk's queue in order of arrival. Use it after
// Redis lost its data (`hotline queues rebuild`). It returns the number of tickets queued.
func (q *Queues) RebuildQueues(ctx context.Context) (int, error) {
	var deskID org.UnitID
	if err := q.db.QueryRow(ctx, `SELECT id FROM units WHERE code = $1`, org.CodeDesk).Scan(&deskID); err != nil {
		return 0, fmt.Errorf("rebuild queues: dispatch desk: %w", err)
	}
	iter := q.rdb.Scan(ctx, 0, q.prefix+"queue:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("rebuild queues: scan: %w", err)
	}
	keys = append(keys, q.prefix+"queues")
	for i := 0; i < len(keys); i += 500 {
		if err := q.rdb.Del(ctx, keys[i:min(i+500, len(keys))]...).Err(); err != nil {
			return 0, fmt.Errorf("rebuild queues: delete: %w", err)
		}
	}
	rows, err := q.db.Query(ctx, `SELECT id, status, lead_unit_id, urgency, version FROM tickets
		WHERE status IN ('new', 'returned', 'dispatched')
		ORDER BY CASE WHEN status = 'dispatched' THEN dispatched_at ELSE updated_at END, id`)
	if err != nil {
		return 0, fmt.Errorf("rebuild queues: %w", err)
	}
	defer rows.Close()
	var batch []*queueOps
	for rows.Next() {
		var id int64
		var status Status
		var lead org.UnitID
		var urgency Urgency
		var version int
		if err := rows.Scan(&id, &status, &lead, &urgency, &version); err != nil {
			return 0, fmt.Errorf("rebuild queues: %w", err)
		}
		unit := lead
		if status != StatusDispatched {
			unit = deskID
		}
		batch = append(batch, &queueOps{Ticket: org.TicketID(id), Add: &queueAdd{Unit: unit, Urgent: urgency == UrgencyUrgent, Seq: version}})
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rebuild queues: %w", err)
	}
	for i := 0; i < len(batch); i += 500 {
		part := batch[i:min(i+500, len(batch))]
		err := runScripts(ctx, q.rdb, len(part), func(pipe redis.Pipeliner, j int) {
			pipe.EvalSha(ctx, queueScript.Hash(), nil, queueArgs("", 0, "", 0, "", "", nil, q.prefix, part[j])...)
		})
		if err != nil {
			return 0, fmt.Errorf("rebuild queues: %w", err)
		}
	}
	n := len(batch)
	return n, nil
}
