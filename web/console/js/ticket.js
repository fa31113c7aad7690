// The ticket page: the matter, the caller (masked), the household, the event timeline, the calls with their
// recordings, and exactly the actions the API allows this user now. A conflict (someone acted first) is said
// plainly and the page shows the new state.
import { h, ref, reactive, onMounted, EP, api, session, model, onLive, toast, errorText, APIError, Frame, cst, units, categories,
  STATUS, STATUS_TYPE, KIND, URGENCY, ACTION, MONITORING, HH_STATUS, SATISFACTION, slaBadge, maskPhone } from './lib.js';
import { AttachmentsCard } from './attachments.js';

// What each action asks for: fields shown in its dialog (none: a confirmation).
const INPUTS = {
  sign: [], dispatch: [['note', '备注', 'text']], reply: [['reply', '答复内容', 'textarea', true]],
  return: [['reason', '退单原因', 'textarea', true]], request_extension: [['days', '延期工作日', 'days', true], ['reason', '延期原因', 'textarea', true]],
  approve_extension: [['note', '意见', 'text']], refuse_extension: [['reason', '驳回原因', 'textarea', true]],
  urge: [['note', '催办意见', 'textarea']], supervise: [['note', '督办意见', 'textarea']], assign: [['assignee_id', '承办人', 'user', true]],
  start_callback: [['note', '备注', 'text']], callback_result: [['result', '回访结果', 'result', true], ['note', '回访记录', 'textarea']],
  reopen: [['note', '重办要求', 'textarea', true]], merge: [['target_id', '合并到工单（编号 ID）', 'number', true]],
  close_first_contact: [['reply', '答复内容', 'textarea', true]],
};
const OUTCOMES = { identified: '认定为监测对象', not_included: '不纳入', already_monitored: '已是监测对象' };

export const TicketPage = {
  props: { id: Number },
  setup(props) {
    const st = reactive({ view: null, events: [], calls: [], household: null, unitName: '', error: '' });
    const cats = ref(new Map());
    const dlg = reactive({ open: false, action: '', input: {}, busy: false });
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
        st.calls = calls.calls || [];
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
              ]),
              default: () => [
                h(EP.ElDescriptions, { column: 3, border: true, size: 'small' }, () => [
                  item('诉求类型', KIND[t.kind] || t.kind), item('类别', cats.value.get(t.category) || t.category), item('紧急程度', URGENCY[t.urgency] || t.urgency),
                  item('来电人', t.caller_name || (t.confidential ? '（保密）' : '—')), item('联系电话', t.caller_phone ? maskPhone(t.caller_phone) : '—'),
                  item('区域', st.view.region_name || t.region_code || '—'),
                  item('承办单位', st.unitName || '—'), item('协办单位', (st.coUnits || []).join('、') || '—'), item('受理时间', cst(t.created_at)),
                  item('签收期限', cst(t.sign_by) || '—'), item('办结期限', cst(t.reply_by) || '—'), item('延期', t.extension_status && t.extension_status !== 'none' ? `${{ requested: '申请中', approved: '已批准', refused: '已驳回' }[t.extension_status] || t.extension_status} ${t.extension_days || ''}天` : '—'),
                ]),
                h('h4', null, '诉求内容'),
                h('div', { class: 'content-box', id: 'ticket-content' }, t.content),
                t.reply_text ? [h('h4', null, '答复'), h('div', { class: 'content-box', id: 'ticket-reply' }, t.reply_text)] : null,
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
              default: () => st.calls.length === 0 ? h('p', { class: 'muted' }, '没有关联的通话。') : st.calls.map((c) => h('div', { key: c.id, style: 'margin-bottom:8px' }, [
                h('span', null, `通话 #${c.id} · ${cst(c.offered_at)} · ${maskPhone(c.caller)}` + (c.talk_seconds ? ` · 通话 ${Math.round(c.talk_seconds)} 秒` : '')),
                ...c.recordings.map((r) => h('div', { key: r.id }, [
                  h('span', { class: 'muted', style: 'margin-right:8px' }, r.kind === 'voicemail' ? '留言录音' : '通话录音'),
                  h('audio', { controls: true, preload: 'none', src: `/api/v1/recordings/${r.id}`, 'data-recording': r.id }),
                ])),
              ])),
            }),
            h(AttachmentsCard, { ticketId: props.id, onChanged: load }),
          ]),
          h(EP.ElCol, { span: 8 }, () => [
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
              ]))),
            }),
          ]),
        ]),
        h(EP.ElDialog, { modelValue: dlg.open, 'onUpdate:modelValue': (v) => { dlg.open = v; }, title: ACTION[dlg.action] || dlg.action, width: '480px', id: 'action-dialog' }, {
          default: () => h(EP.ElForm, { labelPosition: 'top' }, () => [
            (INPUTS[dlg.action] || []).length === 0 ? h('p', null, `确认${ACTION[dlg.action] || dlg.action}工单 ${t.number}？`) : null,
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
