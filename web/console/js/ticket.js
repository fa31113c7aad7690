// The ticket page: the matter, the caller (masked), the household, the event timeline, the calls with their
// recordings, and exactly the actions the API allows this user now. A conflict (someone acted first) is said
// plainly and the page shows the new state.
import { h, ref, reactive, onMounted, EP, api, session, model, onLive, toast, errorText, APIError, Frame, cst, units, categories,
  STATUS, STATUS_TYPE, KIND, URGENCY, ACTION, MONITORING, HH_STATUS, SATISFACTION, slaBadge, maskPhone,
  EXCHANGE_ACTION, OUTBOUND_STATE, OUTBOUND_TYPE } from './lib.js';
import { AttachmentsCard } from './attachments.js';
import { TemplatePicker } from './replytpl.js';

// What each action asks for: fields shown in its dialog (none: a confirmation).
const INPUTS = {
  sign: [], dispatch: [['co_unit_ids', '协办单位（可多选）', 'units'], ['note', '备注', 'text']], reply: [['reply', '答复内容', 'textarea', true]],
  return: [['reason', '退单原因', 'textarea', true]], request_extension: [['days', '延期工作日', 'days', true], ['reason', '延期原因', 'textarea', true]],
  approve_extension: [['note', '意见', 'text']], refuse_extension: [['reason', '驳回原因', 'textarea', true]],
  urge: [['note', '催办意见', 'textarea']], supervise: [['note', '督办意见', 'textarea']], assign: [['assignee_id', '承办人', 'user', true]],
  start_callback: [['note', '备注', 'text']], callback_result: [['result', '回访结果', 'result', true], ['note', '回访记录', 'textarea']],
  reopen: [['note', '重办要求', 'textarea', true]], merge: [['target_id', '合并到工单（编号 ID）', 'number', true]],
  close_first_contact: [['reply', '答复内容', 'textarea', true]],
  co_sign: [], co_opinion: [['opinion', '协办意见', 'textarea', true]],
  approve_reply: [['note', '审核意见', 'text']], return_reply: [['reason', '退回意见（承办人修改后重新提交）', 'textarea', true]],
  note: [['note', '办理过程', 'textarea', true]], interim_reply: [['reply', '阶段性答复（来电人可在进度查询中看到）', 'textarea', true]],
  request_suspend: [['reason', '挂起原因', 'textarea', true]], approve_suspend: [['note', '意见', 'text']],
  refuse_suspend: [['reason', '驳回原因', 'textarea', true]], resume: [],
  // correct: its own form (CORRECT below), plus an optional unit chosen by hand with a reason.
  correct: [['note', '修改说明', 'text']],
};
// The actions whose text goes to the caller: a reply template (答复模板) may fill it.
const TEMPLATED = { reply: 'reply', interim_reply: 'reply', close_first_contact: 'reply' };
// The fields a correction (工单修改) may change, as the form shows them.
const CORRECT = [['kind', '诉求类型'], ['category', '类别'], ['region_code', '区域代码'], ['caller_name', '来电人'], ['content', '诉求内容']];
const REVIEW = { pending: '待审核', returned: '审核退回' };
// The 12345 platform's side of a ticket it sent: its order, its own deadline, and whether our sends reached it.
const SYNC_TYPE = { synced: 'success', pending: 'warning', failed: 'danger', none: 'info' };
const CLOCK = { green: ['正常', 'success'], yellow: ['临期', 'warning'], red: ['超期', 'danger'] };
function exchangeCard(x) {
  const clock = CLOCK[x.platform_clock];
  return h(EP.ElCard, { shadow: 'never', id: 'ticket-exchange', 'data-sync': x.sync }, {
    header: () => ['12345工单 ', h(EP.ElTag, { size: 'small', type: SYNC_TYPE[x.sync] || 'info', class: 'exchange-sync' }, () => x.sync_label)],
    default: () => [
      h('div', null, [h('span', { class: 'muted' }, '平台工单号 '), h('strong', { class: 'exchange-order' }, x.order_id),
        x.order_state === 'withdrawn' ? h(EP.ElTag, { size: 'small', type: 'info', style: 'margin-left:6px' }, () => '平台已撤单') : null]),
      x.platform_deadline ? h('div', { style: 'margin-top:6px' }, [h('span', { class: 'muted' }, '平台办理时限 '), cst(x.platform_deadline), ' ',
        clock ? h(EP.ElTag, { size: 'small', type: clock[1], class: 'exchange-clock' }, () => clock[0]) : null]) : null,
      (x.outbound || []).length ? h('div', { style: 'margin-top:8px' }, x.outbound.map((o) => h('div', { key: o.id, class: 'exchange-send', 'data-state': o.state }, [
        h(EP.ElTag, { size: 'small', type: OUTBOUND_TYPE[o.state] || 'info', style: 'margin-right:6px' }, () => OUTBOUND_STATE[o.state] || o.state),
        EXCHANGE_ACTION[o.action] || o.action, ' ', h('span', { class: 'muted' }, cst(o.sent_at || o.created_at)),
        o.state === 'dead' && o.last_error ? h('div', { class: 'muted' }, '原因：' + o.last_error) : null,
      ]))) : h('p', { class: 'muted' }, '尚未向平台反馈。'),
    ],
  });
}
const DIRECTION = { inbound: '呼入', outbound: '呼出' };
// The kinds of a ticket's calls (telephony.CallKind*) and how each ended.
const CALL_KIND = { inbound: '来电', click_to_call: '坐席回拨', callback_survey: '自动回访' };
const CALL_OUTCOME = { answered: '已接通', abandoned: '未接通（来电人挂断）', voicemail: '留言', rejected: '拒接', failed: '未接通',
  no_answer: '无人接听', busy: '占线', interrupted: '中断', in_progress: '进行中' };
const OUTCOMES = { identified: '认定为监测对象', not_included: '不纳入', already_monitored: '已是监测对象' };

export const TicketPage = {
  props: { id: Number },
  setup(props) {
    const st = reactive({ view: null, events: [], calls: [], household: null, unitName: '', error: '' });
    const cats = ref(new Map());
    const dlg = reactive({ open: false, action: '', input: {}, busy: false, seq: 0 });
    categories().then((c) => { cats.value = new Map(c.map((x) => [x.code, x.name])); }).catch(() => {});

    const load = async () => {
      try {
        st.view = await api('GET', `/api/v1/tickets/${props.id}`);
        const t = st.view.ticket;
        const [ev, calls, us] = await Promise.all([
          api('GET', `/api/v1/tickets/${props.id}/events`),
          api('GET', `/api/v1/tickets/${props.id}/calls`).catch(() => ({ calls: [] })),
          units().catch(() => new Map()),
        ]);
        st.events = ev.events || [];
        st.calls = st.view.calls || calls.calls || [];
        st.unitList = [...us.values()].filter((u) => u.kind !== 'desk' && u.kind !== 'bureau');
        st.unitsById = us;
        const u = us.get(t.lead_unit_id);
        st.unitName = u ? u.name : '';
        st.coUnits = (t.co_unit_ids || []).map((id) => (us.get(id) || {}).name || ('#' + id));
        if (t.household_id && !st.household) {
          st.household = await api('GET', `/api/v1/households/${t.household_id}`).then((j) => j.household).catch(() => null);
        }
        document.title = t.number + ' · 工单';
      } catch (e) {
        st.error = e instanceof APIError && e.status === 404 ? '工单不存在或无权查看' : errorText(e);
      }
    };
    onMounted(load);
    onLive((f) => {
      if (f.type === 'reload') { load(); return; }
      const d = f.data || {};
      if ((f.type || '').startsWith('ticket.') && (d.ticket_id === props.id || d.target_id === props.id)) load();
    });

    const people = ref([]);
    const openAction = (a) => {
      dlg.action = a;
      dlg.input = { days: 3, result: 'satisfied' };
      dlg.seq++; // the template picker re-reads the templates each time a dialog opens
      if (a === 'correct') {
        const t = st.view.ticket;
        for (const [k] of CORRECT) dlg.input[k] = t[k] || '';
      }
      dlg.open = true;
      if (a === 'assign' && session.user && session.user.unitId) {
        api('GET', `/api/v1/units/${session.user.unitId}/users`).then((j) => { people.value = j.users; }).catch(() => { people.value = []; });
      }
    };
    const doAction = async () => {
      const t = st.view.ticket;
      const body = { version: t.version };
      for (const [k, , kind, required] of INPUTS[dlg.action] || []) {
        let v = dlg.input[k];
        if (typeof v === 'string') v = v.trim();
        if (kind === 'number' || kind === 'days') v = Number(v) || 0;
        if (required && !v) { toast('请填写' + (INPUTS[dlg.action].find((x) => x[0] === k) || [])[1], 'warning'); return; }
        if (v !== undefined && v !== '') body[k] = v;
      }
      if (dlg.action === 'reply' && t.category === 'monitoring_verify') body.outcome = dlg.input.outcome || '';
      if (dlg.action === 'correct') {
        // Only what changed is sent; the server refuses a correction that changes nothing.
        body.changes = {};
        for (const [k] of CORRECT) {
          const v = (dlg.input[k] || '').trim();
          if (v !== (t[k] || '')) body.changes[k] = v;
        }
        if (dlg.input.unit_id) { body.unit_id = Number(dlg.input.unit_id); body.reason = (dlg.input.reason || '').trim(); }
      }
      dlg.busy = true;
      try {
        st.view = await api('POST', `/api/v1/tickets/${t.id}/${dlg.action}`, body);
        toast((ACTION[dlg.action] || dlg.action) + '成功');
        dlg.open = false;
      } catch (e) {
        dlg.open = false;
        EP.ElMessageBox.alert(errorText(e), (ACTION[dlg.action] || dlg.action) + '未成功', { type: 'warning' }).catch(() => {});
      } finally {
        dlg.busy = false;
        load();
      }
    };

    const field = ([k, label, kind]) => {
      let input;
      if (kind === 'textarea') input = h(EP.ElInput, model(dlg.input, k, { type: 'textarea', rows: 4, maxlength: 2000, id: 'act-' + k }));
      else if (kind === 'days') input = h(EP.ElInputNumber, model(dlg.input, k, { min: 1, max: 30, id: 'act-' + k }));
      else if (kind === 'user') input = h(EP.ElSelect, model(dlg.input, k, { id: 'act-' + k, filterable: true, placeholder: '选择本单位承办人', style: 'width:100%' }),
        () => people.value.map((u) => h(EP.ElOption, { key: u.id, value: u.id, label: u.name })));
      else if (kind === 'units') input = h(EP.ElSelect, model(dlg.input, k, { id: 'act-' + k, multiple: true, filterable: true, placeholder: '不选则无协办单位', style: 'width:100%' }),
        () => (st.unitList || []).map((u) => h(EP.ElOption, { key: u.id, value: u.id, label: u.name })));
      else if (kind === 'number') input = h(EP.ElInput, model(dlg.input, k, { id: 'act-' + k, inputmode: 'numeric' }));
      else if (kind === 'result') input = h(EP.ElRadioGroup, model(dlg.input, k), () => Object.entries(SATISFACTION).map(([v, l]) => h(EP.ElRadio, { value: v }, () => l)));
      else input = h(EP.ElInput, model(dlg.input, k, { id: 'act-' + k, maxlength: 500 }));
      return h(EP.ElFormItem, { label, key: k }, () => input);
    };

    const item = (label, content) => h(EP.ElDescriptionsItem, { label }, () => content);

    return () => h(Frame, { active: '' }, () => {
      if (st.error) return h(EP.ElResult, { icon: 'warning', title: st.error });
      if (!st.view) return h('p', { class: 'muted' }, '加载中…');
      const t = st.view.ticket;
      const allowed = st.view.allowed_actions || [];
      const hh = st.household;
      return [
        h(EP.ElRow, { gutter: 12 }, () => [
          h(EP.ElCol, { span: 16 }, () => [
            h(EP.ElCard, { shadow: 'never', id: 'ticket-card' }, {
              header: () => h('div', { style: 'display:flex;align-items:center;gap:10px' }, [
                h('span', { id: 'ticket-number' }, '工单 ' + t.number),
                h(EP.ElTag, { type: STATUS_TYPE[t.status], effect: 'dark', id: 'ticket-status', 'data-status': t.status }, () => STATUS[t.status] || t.status),
                slaBadge(t),
                t.urgency === 'urgent' ? h(EP.ElTag, { type: 'danger' }, () => '紧急') : null,
                t.supervised ? h(EP.ElTag, { type: 'danger', effect: 'plain' }, () => '督办') : null,
                t.urge_count ? h(EP.ElTag, { type: 'warning', effect: 'plain' }, () => `催办 ${t.urge_count} 次`) : null,
                t.suspend_status === 'suspended' ? h(EP.ElTag, { type: 'info', effect: 'dark', id: 'ticket-suspended' }, () => '挂起中') : null,
                t.suspend_status === 'requested' ? h(EP.ElTag, { type: 'info', effect: 'plain' }, () => '挂起申请中') : null,
                REVIEW[t.review_status] ? h(EP.ElTag, { type: 'warning', id: 'ticket-review', 'data-review': t.review_status }, () => REVIEW[t.review_status]) : null,
              ]),
              default: () => [
                h(EP.ElDescriptions, { column: 3, border: true, size: 'small' }, () => [
                  item('诉求类型', KIND[t.kind] || t.kind), item('类别', cats.value.get(t.category) || t.category), item('紧急程度', URGENCY[t.urgency] || t.urgency),
                  item('来电人', t.caller_name || (t.confidential ? '（保密）' : '—')), item('联系电话', t.caller_phone ? maskPhone(t.caller_phone) : '—'),
                  item('区域', st.view.region_name || t.region_code || '—'),
                  item('承办单位', st.unitName || '—'), item('协办单位', (st.coUnits || []).join('、') || '—'), item('受理时间', cst(t.created_at)),
                  item('签收期限', cst(t.sign_by) || '—'), item('办结期限', cst(t.reply_by) || '—'), item('延期', t.extension_status && t.extension_status !== 'none' ? `${{ requested: '申请中', approved: '已批准', refused: '已驳回' }[t.extension_status] || t.extension_status} ${t.extension_days || ''}天` : '—'),
                ]),
                t.beyond_calendar ? h(EP.ElAlert, { type: 'warning', closable: false, id: 'ticket-beyond-calendar', style: 'margin-top:8px',
                  title: '期限超出已载入的节假日日历：按周末计算，国务院公布次年安排后可能变化' }) : null,
                t.suspend_status === 'suspended' && t.suspend_left_ms != null ? h('p', { class: 'muted' },
                  `挂起于 ${cst(t.suspended_at)}，办结时限剩余 ${(t.suspend_left_ms / 86400000).toFixed(1)} 个工作日（解除挂起后继续计时）`) : null,
                h('h4', null, '诉求内容'),
                h('div', { class: 'content-box', id: 'ticket-content' }, t.content),
                t.reply_text ? [h('h4', null, '答复'), h('div', { class: 'content-box', id: 'ticket-reply' }, t.reply_text)] : null,
                t.pending_reply ? [h('h4', null, '答复稿（' + (REVIEW[t.review_status] || '') + '）'), h('div', { class: 'content-box', id: 'ticket-pending-reply' }, t.pending_reply)] : null,
                (st.view.co_tasks || []).length ? [h('h4', null, '协办意见'), h(EP.ElTable, { data: st.view.co_tasks, size: 'small', id: 'ticket-co-tasks' }, () => [
                  h(EP.ElTableColumn, { prop: 'unit_name', label: '协办单位', width: 160 }),
                  h(EP.ElTableColumn, { label: '期限', width: 150 }, { default: ({ row }) => h('span', { class: row.overdue ? 'danger' : '' }, cst(row.due_at)) }),
                  h(EP.ElTableColumn, { label: '签收', width: 90 }, { default: ({ row }) => row.signed_at ? '已签收' : '未签收' }),
                  h(EP.ElTableColumn, { label: '意见' }, { default: ({ row }) => row.opinion_at ? `${row.opinion}（${row.opinion_by}，${cst(row.opinion_at)}）` : h('span', { class: 'muted' }, '尚未提交') }),
                ])] : null,
                t.satisfaction ? h('p', null, '回访结果：' + (SATISFACTION[t.satisfaction] || t.satisfaction)) : null,
                t.merged_into ? h('p', null, ['已合并到 ', h('a', { href: '/tickets/' + t.merged_into }, '#' + t.merged_into)]) : null,
                h('h4', null, '办理'),
                allowed.length === 0 ? h('p', { class: 'muted', id: 'no-actions' }, '当前没有您可以执行的操作。')
                  : h('div', { class: 'actions', id: 'ticket-actions' }, allowed.map((a) => h(EP.ElButton, {
                    type: ['sign', 'reply', 'dispatch'].includes(a) ? 'primary' : a === 'return' ? 'danger' : 'default',
                    onClick: () => openAction(a), 'data-action': a, class: 'act-' + a,
                  }, () => ACTION[a] || a))),
              ],
            }),
            h(EP.ElCard, { shadow: 'never', id: 'ticket-calls' }, {
              header: () => `通话与录音（${st.calls.length}）`,
              default: () => st.calls.length === 0 ? h('p', { class: 'muted' }, '没有关联的通话。') : st.calls.map((c) => h('div', {
                key: `${c.kind}-${c.id || c.click_call_id || c.attempt_id}`, style: 'margin-bottom:8px', class: 'ticket-call', 'data-kind': c.kind,
              }, [
                h(EP.ElTag, { size: 'small', type: c.kind === 'inbound' ? 'info' : 'success', style: 'margin-right:6px' },
                  () => `${DIRECTION[c.direction] || '通话'} · ${CALL_KIND[c.kind] || '通话'}`),
                h('span', null, (c.id ? `#${c.id} · ` : '') + `${cst(c.offered_at)} · ${maskPhone(c.caller)}` +
                  (c.agent_name ? ` · 坐席 ${c.agent_name}` : '') + (c.outcome ? ` · ${CALL_OUTCOME[c.outcome] || c.outcome}` : '') +
                  (c.ended_at ? ` · 结束 ${cst(c.ended_at)}` : '') + (c.talk_seconds ? ` · 通话 ${Math.round(c.talk_seconds)} 秒` : '')),
                ...c.recordings.map((r) => h('div', { key: r.id }, [
                  h('span', { class: 'muted', style: 'margin-right:8px' }, r.kind === 'voicemail' ? '留言录音' : '通话录音'),
                  r.url ? h('audio', { controls: true, preload: 'none', src: r.url, 'data-recording': r.id })
                    : h('span', { class: 'muted' }, '无权收听'),
                ])),
              ])),
            }),
            h(AttachmentsCard, { ticketId: props.id, onChanged: load }),
          ]),
          h(EP.ElCol, { span: 8 }, () => [
            st.view.exchange ? exchangeCard(st.view.exchange) : null,
            hh ? h(EP.ElCard, { shadow: 'never', id: 'ticket-household' }, {
              header: () => '农户档案',
              default: () => [
                h('div', null, [h('strong', null, hh.head_name), ' ', h('span', { class: 'muted' }, `户编号 ${hh.number || hh.id}`)]),
                h('div', { class: 'muted' }, hh.region_name + (hh.village ? hh.village : '')),
                h('div', { style: 'margin-top:6px' }, [
                  h(EP.ElTag, { size: 'small', type: 'danger' }, () => MONITORING[hh.monitoring_type] || hh.monitoring_type), ' ',
                  h(EP.ElTag, { size: 'small' }, () => HH_STATUS[hh.status] || hh.status),
                ]),
                hh.last_contact_at ? h('div', { class: 'muted', style: 'margin-top:6px' }, '最近联系：' + cst(hh.last_contact_at)) : null,
              ],
            }) : null,
            h(EP.ElCard, { shadow: 'never', id: 'ticket-timeline' }, {
              header: () => '办理过程',
              default: () => h(EP.ElTimeline, null, () => st.events.map((e) => h(EP.ElTimelineItem, { key: e.id, timestamp: cst(e.at), placement: 'top' }, () => [
                h('div', null, [h('strong', null, ACTION[e.action] || e.action), ' ', h('span', { class: 'muted' }, e.actor_name || '系统')]),
                e.to_status && e.to_status !== e.from_status ? h('div', { class: 'muted' }, `${STATUS[e.from_status] || e.from_status} → ${STATUS[e.to_status] || e.to_status}`) : null,
                e.note ? h('div', null, e.note) : null,
                e.data && e.data.reason ? h('div', null, '原因：' + e.data.reason) : null,
                e.data && e.data.opinion ? h('div', null, '意见：' + e.data.opinion) : null,
                e.data && e.data.changes ? Object.entries(e.data.changes).map(([k, c]) => h('div', { key: k, class: 'muted' },
                  `${(CORRECT.find((x) => x[0] === k) || [k, k])[1]}：` + (c.changed ? '已修改' : `${c.before ?? '—'} → ${c.after ?? '—'}`))) : null,
                e.data && e.data.rerouted ? h('div', null, '已改派承办单位') : null,
                e.data && e.data.due_kind === 'co_opinion' ? h('div', { class: 'co-alert' },
                  `协办单位 ${((st.unitsById && st.unitsById.get(e.data.unit_id)) || {}).name || ('#' + e.data.unit_id)} 的协办意见期限 ${cst(e.data.due_at)}`) : null,
                e.action === 'interim_reply' && e.data ? h('div', null, '阶段性答复：' + e.data.reply) : null,
              ]))),
            }),
          ]),
        ]),
        h(EP.ElDialog, { modelValue: dlg.open, 'onUpdate:modelValue': (v) => { dlg.open = v; }, title: ACTION[dlg.action] || dlg.action, width: '480px', id: 'action-dialog' }, {
          default: () => h(EP.ElForm, { labelPosition: 'top' }, () => [
            (INPUTS[dlg.action] || []).length === 0 ? h('p', null, `确认${ACTION[dlg.action] || dlg.action}工单 ${t.number}？`) : null,
            ...(dlg.action === 'correct' ? [
              h(EP.ElFormItem, { label: '诉求类型' }, () => h(EP.ElSelect, model(dlg.input, 'kind', { id: 'fix-kind', style: 'width:100%' }),
                () => Object.entries(KIND).map(([v, l]) => h(EP.ElOption, { key: v, value: v, label: l })))),
              h(EP.ElFormItem, { label: '类别' }, () => h(EP.ElSelect, model(dlg.input, 'category', { id: 'fix-category', filterable: true, style: 'width:100%' }),
                () => [...cats.value.entries()].map(([v, l]) => h(EP.ElOption, { key: v, value: v, label: l })))),
              h(EP.ElFormItem, { label: '区域代码' }, () => h(EP.ElInput, model(dlg.input, 'region_code', { id: 'fix-region', maxlength: 6 }))),
              h(EP.ElFormItem, { label: '来电人' }, () => h(EP.ElInput, model(dlg.input, 'caller_name', { id: 'fix-caller', maxlength: 100 }))),
              h(EP.ElFormItem, { label: '诉求内容' }, () => h(EP.ElInput, model(dlg.input, 'content', { id: 'fix-content', type: 'textarea', rows: 4, maxlength: 10000 }))),
              ['dispatched', 'signed'].includes(t.status) ? h(EP.ElFormItem, { label: '改派承办单位（不选则按派单规则重新计算）' }, () =>
                h(EP.ElSelect, model(dlg.input, 'unit_id', { id: 'fix-unit', filterable: true, clearable: true, style: 'width:100%' }),
                  () => (st.unitList || []).map((u) => h(EP.ElOption, { key: u.id, value: u.id, label: u.name })))) : null,
              dlg.input.unit_id ? h(EP.ElFormItem, { label: '改派理由' }, () => h(EP.ElInput, model(dlg.input, 'reason', { id: 'fix-reason', type: 'textarea', rows: 2 }))) : null,
            ] : []),
            TEMPLATED[dlg.action] ? h(EP.ElFormItem, { label: '插入模板', key: `tpl-${dlg.seq}` }, () =>
              h(TemplatePicker, { ticketId: t.id, category: t.category, target: dlg.input, field: TEMPLATED[dlg.action] })) : null,
            ...(INPUTS[dlg.action] || []).map(field),
            dlg.action === 'reply' && t.category === 'monitoring_verify' ? h(EP.ElFormItem, { label: '核实结果' }, () =>
              h(EP.ElRadioGroup, model(dlg.input, 'outcome'), () => Object.entries(OUTCOMES).map(([v, l]) => h(EP.ElRadio, { value: v }, () => l)))) : null,
          ]),
          footer: () => [
            h(EP.ElButton, { onClick: () => { dlg.open = false; } }, () => '取消'),
            h(EP.ElButton, { type: 'primary', loading: dlg.busy, onClick: doAction, id: 'act-confirm' }, () => '确定'),
          ],
        }),
      ];
    });
  },
};
