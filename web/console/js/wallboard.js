// 监控大屏: the supervisors' live wallboard — calls waiting and the longest wait, calls in progress, agents by
// state, today's 接通率 and 15-second answer rate, tickets opened / dispatched / gone overdue today, and the
// tickets now yellow and red. It re-reads on every event of the stream (calls, agents, tickets, SLA alerts) and
// every 10 s besides, since waits grow and deadlines pass without an event.
import { h, ref, onMounted, onUnmounted, EP, api, onLive, Frame, cst, debounce, duration, ticketLink, AGENT_STATE } from './lib.js';

const pct = (v) => (v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%');
const POLL_MS = 10000;

function tile(id, label, value, sub, tone) {
  return h('div', { class: ['tile', tone || ''], id: 'tile-' + id, 'data-value': String(value) }, [
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, String(value)),
    sub ? h('div', { class: 'tile-sub' }, sub) : null,
  ]);
}

function slaTable(id, rows, tone) {
  return h(EP.ElTable, { data: rows, size: 'small', id, maxHeight: 300, emptyText: '无', rowKey: 'id' }, () => [
    h(EP.ElTableColumn, { label: '工单编号', width: 160 }, { default: ({ row }) => ticketLink(row) }),
    h(EP.ElTableColumn, { label: '类别', minWidth: 130, showOverflowTooltip: true }, { default: ({ row }) => row.category }),
    h(EP.ElTableColumn, { label: '承办单位', minWidth: 170, showOverflowTooltip: true }, { default: ({ row }) => row.unit }),
    h(EP.ElTableColumn, { label: '期限', width: 160 }, { default: ({ row }) =>
      h(EP.ElTag, { size: 'small', effect: 'dark', type: tone }, () => ({ sign: '签收', reply: '办结', callback: '回访' }[row.due_kind] || '') + ' ' + cst(row.due_at)) }),
  ]);
}

export const WallboardPage = {
  setup() {
    const b = ref(null);
    const err = ref('');
    const load = async () => {
      try {
        b.value = await api('GET', '/api/v1/stats/wallboard');
        err.value = '';
      } catch (e) { err.value = e.status === 403 ? '监控大屏仅供督办人员和管理员使用' : '数据暂时无法更新，稍后自动重试'; }
    };
    const refresh = debounce(load, 300);
    let timer = null;
    onMounted(() => { load(); timer = setInterval(load, POLL_MS); });
    onUnmounted(() => clearInterval(timer));
    onLive(() => refresh());

    return () => {
      const v = b.value;
      const body = [];
      if (err.value) body.push(h(EP.ElAlert, { type: 'warning', title: err.value, closable: false, showIcon: true, style: 'margin-bottom:12px' }));
      if (v) {
        const c = v.calls, k = v.call_kpis_today, t = v.tickets;
        const agents = c ? c.agents_by_state : {};
        body.push(h('div', { class: 'tiles' }, [
          c ? tile('waiting', '排队等待', c.waiting, '最长等待 ' + duration(c.longest_wait_seconds), c.waiting > 0 ? 'warn' : '') : null,
          c ? tile('in-progress', '通话中', c.in_progress, '坐席 就绪 ' + (agents.ready || 0) + ' · 通话 ' + (agents.busy || 0)) : null,
          k ? tile('answer-rate', '今日接通率', pct(k.offered ? k.answer_rate : null), '呼入 ' + k.offered + ' · 接通 ' + k.answered) : null,
          k ? tile('answer-15s', '15秒接通率', pct(k.offered ? k.answer_15s_rate : null), '15 秒内接通 ' + k.answered_in_15s) : null,
          tile('created', '今日受理', t.created_today),
          tile('dispatched', '今日派单', t.dispatched_today),
          tile('overdue-today', '今日超期', t.overdue_today, null, t.overdue_today > 0 ? 'bad' : ''),
          tile('yellow', '临期工单', t.yellow, null, t.yellow > 0 ? 'warn' : ''),
          tile('red', '超期工单', t.red, null, t.red > 0 ? 'bad' : ''),
        ]));
        if (c) {
          body.push(h('div', { class: 'agent-states', id: 'agent-states' }, Object.entries(AGENT_STATE).map(([st, label]) =>
            h('span', { class: 'agent-state', 'data-state': st }, [label + ' ', h('b', null, String(agents[st] || 0))]))));
        }
        body.push(h(EP.ElRow, { gutter: 12 }, () => [
          h(EP.ElCol, { span: 12 }, () => h(EP.ElCard, { shadow: 'never' }, {
            header: () => '超期工单（红）' + (t.red > t.red_tickets.length ? `，显示前 ${t.red_tickets.length} 件` : ''),
            default: () => slaTable('red-tickets', t.red_tickets, 'danger'),
          })),
          h(EP.ElCol, { span: 12 }, () => h(EP.ElCard, { shadow: 'never' }, {
            header: () => '临期工单（黄）' + (t.yellow > t.yellow_tickets.length ? `，显示前 ${t.yellow_tickets.length} 件` : ''),
            default: () => slaTable('yellow-tickets', t.yellow_tickets, 'warning'),
          })),
        ]));
        body.push(h('div', { class: 'muted', id: 'board-at' }, '更新于 ' + cst(v.at) + '（实时事件触发刷新，另每 10 秒刷新）'));
      }
      return h(Frame, { active: '/wallboard' }, () => body);
    };
  },
};
