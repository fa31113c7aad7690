// 坐席工作台: the state bar, the incoming-call panel (screen-pop), the ticket form, callback tasks with one-click
// call-back, and ticket search.
import { h, ref, reactive, onMounted, onUnmounted, EP, api, session, onLive, toast, toastError, Frame, now, duration, cst, maskPhone,
  AGENT_STATE, PAUSE_REASONS, SYS_REASON, MONITORING, HH_STATUS, STATUS, ticketLink, categories } from './lib.js';
import { TicketForm } from './ticketform.js';
import { SearchPanel } from './search.js';

const StateBar = {
  setup() {
    const st = reactive({ agent: null, registered: null, error: '' });
    const load = async () => {
      try {
        const j = await api('GET', '/api/v1/agents/me');
        st.agent = j.agent; st.registered = j.registered; st.error = '';
      } catch (e) { st.error = e.status === 404 ? '未配置分机' : '状态读取失败'; }
    };
    const set = async (state, reason) => {
      try {
        st.agent = await api('PUT', '/api/v1/agents/me/state', { state, reason: reason || '' });
        toast('状态：' + (AGENT_STATE[state] || state));
      } catch (e) { toastError(e); load(); }
    };
    onMounted(load);
    const timer = setInterval(load, 20000); // the phone's registration has no event; re-read it now and then
    onUnmounted(() => clearInterval(timer));
    onLive((f) => {
      if (f.type === 'reload') { load(); return; }
      if (f.type === 'agent.state' && st.agent && f.data && f.data.user_id === st.agent.user_id) {
        Object.assign(st.agent, { state: f.data.state, reason: f.data.reason, since: f.data.at, call_id: f.data.call_id });
      }
    });
    return () => {
      const a = st.agent;
      const state = a ? a.state : 'offline';
      const type = { ready: 'success', paused: 'warning', busy: 'danger', acw: 'primary', offline: 'info' }[state];
      const since = a && a.since ? (now.value - new Date(a.since).getTime()) / 1000 : 0;
      const reason = a && a.reason ? (SYS_REASON[a.reason] || a.reason) : '';
      return h('div', { class: 'statebar', id: 'state-bar' }, [
        h('strong', null, '坐席状态'),
        h(EP.ElTag, { type, effect: 'dark', size: 'large', id: 'agent-state', 'data-state': state }, () => (AGENT_STATE[state] || state) + (reason && state !== 'busy' ? '（' + reason + '）' : '')),
        h('span', { class: 'timer', title: '当前状态持续时间' }, a ? duration(since) : ''),
        h(EP.ElButton, { type: 'success', disabled: !a || state === 'ready' || state === 'busy', onClick: () => set('ready'), id: 'btn-ready' }, () => '就绪'),
        h(EP.ElDropdown, { trigger: 'click', disabled: !a || state === 'busy', onCommand: (r) => set('paused', r) }, {
          default: () => h(EP.ElButton, { type: 'warning', disabled: !a || state === 'busy', id: 'btn-pause' }, () => '小休 ▾'),
          dropdown: () => h(EP.ElDropdownMenu, null, () => PAUSE_REASONS.map((r) => h(EP.ElDropdownItem, { command: r }, () => r))),
        }),
        state === 'acw' ? h('span', { class: 'muted' }, '话后处理中，结束后自动就绪') : null,
        h(EP.ElButton, { disabled: !a || state === 'offline' || state === 'busy', onClick: () => set('offline'), id: 'btn-offline' }, () => '签出'),
        h('span', { class: 'grow' }),
        h('span', null, a ? '分机 ' + a.sip_user : st.error),
        st.registered === null ? h(EP.ElTag, { type: 'info' }, () => '话机状态未知')
          : st.registered > 0 ? h(EP.ElTag, { type: 'success', id: 'sip-registered' }, () => '话机已注册')
            : h(EP.ElTag, { type: 'danger', id: 'sip-registered' }, () => '话机未注册'),
      ]);
    };
  },
};

// CallPanel shows the screen-pop of the call ringing at this agent's phone, with what is known of the caller.
const CallPanel = {
  emits: ['start'],
  setup(props, { emit, expose }) {
    const call = ref(null); // screen-pop data + {ended, households: [...with details]}
    const linked = ref(null);
    const cats = ref(new Map());
    categories().then((c) => { cats.value = new Map(c.map((x) => [x.code, x.name])); }).catch(() => {});
    const loadHousehold = async (hh) => {
      try {
        const [d, tl] = await Promise.all([api('GET', `/api/v1/households/${hh.id}`), api('GET', `/api/v1/households/${hh.id}/timeline?limit=3`)]);
        hh.status = d.household.status;
        hh.risk_types = d.household.risk_types;
        hh.last_contact_at = d.household.last_contact_at;
        hh.timeline = tl.timeline || [];
      } catch (e) { hh.timeline = []; }
    };
    onLive((f) => {
      const d = f.data || {};
      if (f.type === 'call.screen_pop' && (!session.user || !d.agent_id || d.agent_id === session.user.id)) {
        const hhs = (d.households || []).map((x) => reactive({ ...x, timeline: null }));
        call.value = { ...d, households: hhs, ended: false };
        linked.value = null;
        hhs.forEach(loadHousehold);
        toast('来电：' + maskPhone(d.caller), 'warning');
      } else if (f.type === 'call.ended' && call.value && d.call_id === call.value.call_id) {
        call.value = { ...call.value, ended: true };
      }
    });
    expose({ linkedTo: (t) => { linked.value = t; } });
    const start = (hh) => emit('start', {
      callId: call.value.call_id, callerMasked: maskPhone(call.value.caller), householdId: hh ? hh.id : null,
      regionCode: hh ? hh.region : '', householdName: hh ? `${hh.head}（${hh.region_name}）` : '',
    });
    return () => {
      const c = call.value;
      if (!c) {
        return h(EP.ElCard, { shadow: 'never', id: 'call-panel' }, { header: () => '来电', default: () => h(EP.ElEmpty, { description: '暂无来电。就绪后，来电振铃时此处显示来电人信息。', imageSize: 60 }) });
      }
      return h(EP.ElCard, { shadow: 'always', class: 'pop', id: 'call-panel' }, {
        header: () => h('div', { style: 'display:flex;align-items:center;gap:8px' }, [
          h('span', null, c.ended ? '通话已结束' : '来电振铃 / 通话中'),
          h(EP.ElTag, { type: c.ended ? 'info' : 'danger', effect: 'dark', size: 'small' }, () => c.ended ? '已挂断' : '进行中'),
          h('span', { class: 'muted' }, cst(c.offered_at)),
        ]),
        default: () => [
          h('div', { class: 'caller', id: 'pop-caller' }, maskPhone(c.caller)),
          h('div', { class: 'muted' }, `通话 #${c.call_id}` + (c.dialled ? ` · 拨打 ${c.dialled}` : '')),
          linked.value ? h(EP.ElAlert, { type: 'success', closable: false, style: 'margin-top:8px', title: `已建工单 ${linked.value.number}，通话与录音已关联` }) : null,
          c.households.length === 0 ? h('p', { class: 'muted' }, '未匹配到监测农户。') : null,
          ...c.households.map((hh) => h('div', { class: 'hh', key: hh.id, 'data-household': hh.id }, [
            h('div', null, [
              h('span', { class: 'name' }, hh.head),
              h('span', { class: 'muted' }, hh.region_name),
            ]),
            h('div', { class: 'meta' }, [
              h(EP.ElTag, { size: 'small', type: 'danger' }, () => MONITORING[hh.monitoring_type] || hh.monitoring_type || '监测户'), ' ',
              hh.status ? h(EP.ElTag, { size: 'small' }, () => '状态：' + (HH_STATUS[hh.status] || hh.status)) : null, ' ',
              ...(hh.risk_flags || []).map((r) => h(EP.ElTag, { size: 'small', type: 'warning', style: 'margin-right:4px' }, () => r)),
            ]),
            hh.open_tickets && hh.open_tickets.length ? h('div', null, [h('span', { class: 'muted' }, '未办结工单：'),
              h('ul', null, hh.open_tickets.map((t) => h('li', { key: t.id }, [ticketLink(t), ' ', cats.value.get(t.title) || t.title, ' ', h('span', { class: 'muted' }, STATUS[t.status] || t.status)])))])
              : h('div', { class: 'muted' }, '无未办结工单'),
            hh.timeline && hh.timeline.length ? h('div', null, [h('span', { class: 'muted' }, '最近联系：'),
              h('ul', null, hh.timeline.map((e, i) => h('li', { key: i }, cst(e.at) + ' ' + e.summary)))]) : null,
            h(EP.ElButton, { type: 'primary', size: 'small', style: 'margin-top:6px', disabled: !!linked.value, onClick: () => start(hh), class: 'start-ticket' }, () => '为此户建单'),
          ])),
          h(EP.ElButton, { size: 'small', style: 'margin-top:8px', disabled: !!linked.value, onClick: () => start(null), id: 'start-ticket-plain' }, () => '建单（不关联农户）'),
        ],
      });
    };
  },
};

// Callbacks lists 漏接回拨 (missed calls, voicemails) and 回访 tasks the dialer handed to agents; 回拨 rings the
// agent's phone first, then the caller — the number is never shown.
const Callbacks = {
  setup() {
    const missed = ref([]), manual = ref([]);
    const load = async () => {
      try {
        const [a, b] = await Promise.all([api('GET', '/api/v1/callbacks?status=open&limit=50'), api('GET', '/api/v1/callbacks/manual').catch(() => ({ callbacks: [] }))]);
        missed.value = a.callbacks || []; manual.value = b.callbacks || [];
      } catch (e) { /* shown as empty */ }
    };
    onMounted(load);
    onLive((f) => { if (f.type === 'reload' || f.type === 'callback.changed' || f.type === 'callback.manual') load(); });
    const dial = async (req) => {
      try {
        await api('POST', '/api/v1/click-to-call', req);
        toast('正在呼叫您的话机，接起后自动接通对方', 'success');
      } catch (e) { toastError(e); }
    };
    const close = async (cb) => {
      try { await api('POST', `/api/v1/callbacks/${cb.id}/close`, { note: '已处理' }); load(); } catch (e) { toastError(e); }
    };
    return () => h(EP.ElCard, { shadow: 'never', id: 'callbacks' }, {
      header: () => `回拨与回访（${missed.value.length + manual.value.length}）`,
      default: () => h(EP.ElTabs, null, () => [
        h(EP.ElTabPane, { label: `漏接回拨 ${missed.value.length}` }, () => missed.value.length === 0 ? h('p', { class: 'muted' }, '没有待回拨的来电')
          : h(EP.ElTable, { data: missed.value, size: 'small', maxHeight: 260 }, () => [
            h(EP.ElTableColumn, { label: '来电', width: 120 }, { default: ({ row }) => maskPhone(row.caller) }),
            h(EP.ElTableColumn, { label: '原因', width: 80 }, { default: ({ row }) => row.reason === 'voicemail' ? '留言' : '未接通' }),
            h(EP.ElTableColumn, { label: '时间', width: 130 }, { default: ({ row }) => cst(row.updated_at) }),
            h(EP.ElTableColumn, { label: '操作' }, { default: ({ row }) => [
              // By task id: the server reads the caller's number from the task (with or without a ticket) and
              // closes the task once the caller is reached.
              h(EP.ElButton, { size: 'small', type: 'primary', link: true, class: 'callback-dial', 'data-callback-id': row.id,
                onClick: () => dial({ callback_id: row.id }) }, () => '回拨'),
              h(EP.ElButton, { size: 'small', link: true, onClick: () => close(row) }, () => '完成'),
            ] }),
          ])),
        h(EP.ElTabPane, { label: `回访 ${manual.value.length}` }, () => manual.value.length === 0 ? h('p', { class: 'muted' }, '没有待人工回访的工单')
          : h(EP.ElTable, { data: manual.value, size: 'small', maxHeight: 260 }, () => [
            h(EP.ElTableColumn, { label: '工单', width: 90 }, { default: ({ row }) => row.ticket_id ? h('a', { href: '/tickets/' + row.ticket_id }, '#' + row.ticket_id) : '—' }),
            h(EP.ElTableColumn, { label: '已拨', width: 60 }, { default: ({ row }) => String(row.attempts) }),
            h(EP.ElTableColumn, { label: '操作' }, { default: ({ row }) => h(EP.ElButton, { size: 'small', type: 'primary', link: true,
              onClick: () => dial(row.ticket_id ? { ticket_id: row.ticket_id } : { household_id: row.household_id }) }, () => '回拨回访') }),
          ])),
      ]),
    });
  },
};

export const AgentPage = {
  setup() {
    const form = ref(null), panel = ref(null);
    const tab = ref('form');
    const start = (c) => { tab.value = 'form'; form.value.prefill(c); };
    const saved = (t) => { panel.value && panel.value.linkedTo(t); };
    return () => h(Frame, { active: '/agent' }, () => [
      h(StateBar),
      h(EP.ElRow, { gutter: 12 }, () => [
        h(EP.ElCol, { span: 9 }, () => [h(CallPanel, { ref: panel, onStart: start }), h(Callbacks)]),
        h(EP.ElCol, { span: 15 }, () => h(EP.ElCard, { shadow: 'never' }, () => h(EP.ElTabs, { modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; } }, () => [
          h(EP.ElTabPane, { label: '工单登记', name: 'form' }, () => h(TicketForm, { ref: form, onSaved: saved })),
          h(EP.ElTabPane, { label: '工单查询', name: 'search' }, () => h(SearchPanel)),
        ]))),
      ]),
    ]);
  },
};
