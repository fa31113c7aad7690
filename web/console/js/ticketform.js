// The agent's ticket form: kind, category, region (市州 → 县市区 → 乡镇街道), content, urgency, confidential; merge
// suggestions while typing; save, save-and-dispatch, close at first contact, merge. After saving, the number and
// query code to read out to the caller. Keyboard: Tab through the fields, Ctrl+Enter saves and dispatches.
import { h, ref, reactive, EP, api, model, newKey, options, debounce, categories, toast, toastError, KIND, URGENCY, STATUS, ticketLink, maskPhone } from './lib.js';

function emptyForm() {
  return { kind: 'help', category: '', pref: '', county: '', town: '', content: '', urgency: 'normal', confidential: false,
    caller_name: '', caller_phone: '', reply: '' };
}

export const TicketForm = {
  props: { context: Object }, // {callId, householdId, callerMasked, regionCode, householdName}
  emits: ['saved'],
  setup(props, { emit, expose }) {
    const f = reactive(emptyForm());
    const ctx = reactive({ callId: null, householdId: null, callerMasked: '', householdName: '' });
    const cats = ref([]);
    const prefs = ref([]), counties = ref([]), towns = ref([]);
    const dups = ref([]);
    const busy = ref(false);
    const saved = ref(null);
    let idem = newKey();

    categories().then((c) => { cats.value = c; }).catch(toastError);
    const regions = (parent) => api('GET', '/api/v1/regions' + (parent ? '?parent=' + parent : '')).then((j) => j.regions);
    regions('').then((r) => { prefs.value = r; }).catch(toastError);

    const setPref = async (v) => { f.pref = v; f.county = ''; f.town = ''; counties.value = []; towns.value = [];
      if (v) counties.value = await regions(v); };
    const setCounty = async (v) => { f.county = v; f.town = ''; towns.value = [];
      if (v) towns.value = await regions(v); };

    const suggest = debounce(async () => {
      if (!f.category || !(ctx.callId || ctx.householdId || f.caller_phone)) { dups.value = []; return; }
      const q = new URLSearchParams({ category: f.category });
      if (ctx.householdId) q.set('household_id', ctx.householdId);
      if (ctx.callId) q.set('call_id', ctx.callId);
      else if (f.caller_phone) q.set('phone', f.caller_phone);
      try { dups.value = (await api('GET', '/api/v1/ticket-suggestions?' + q)).duplicates || []; } catch (e) { dups.value = []; }
    }, 400);

    // prefill starts a ticket from a call and (optionally) one of its households.
    const prefill = async (c) => {
      Object.assign(f, emptyForm());
      ctx.callId = c.callId || null;
      ctx.householdId = c.householdId || null;
      ctx.callerMasked = c.callerMasked || '';
      ctx.householdName = c.householdName || '';
      idem = newKey();
      saved.value = null;
      if (c.householdId) { f.kind = 'help'; f.category = 'monitoring_help'; }
      const code = c.regionCode || '';
      if (code.length >= 6) {
        await setPref(code.slice(0, 4) + '00');
        await setCounty(code.slice(0, 6));
        if (code.length === 9) f.town = code;
      }
      suggest();
      setTimeout(() => { const el = document.getElementById('tf-content'); if (el) el.focus(); }, 0);
    };
    expose({ prefill });

    const body = (dispatch) => {
      const b = { source: 'phone', kind: f.kind, category: f.category, urgency: f.urgency, content: f.content.trim(),
        confidential: f.kind === 'report' && f.confidential, region_code: f.town || f.county || '', caller_name: f.caller_name.trim(), dispatch };
      if (ctx.householdId) b.household_id = ctx.householdId;
      if (ctx.callId) b.call_id = ctx.callId;
      else if (f.caller_phone.trim()) b.caller_phone = f.caller_phone.trim();
      return b;
    };

    // save creates the ticket, then (close / merge) takes the follow-up action on it.
    const save = async (mode, target) => {
      if (!f.category) { toast('请选择类别', 'warning'); return; }
      if (!f.content.trim()) { toast('请填写诉求内容', 'warning'); return; }
      if (mode === 'close' && !f.reply.trim()) { toast('当场办结需填写答复内容', 'warning'); return; }
      busy.value = true;
      try {
        const v = await api('POST', '/api/v1/tickets', body(mode === 'dispatch'), { 'Idempotency-Key': idem });
        let t = v.ticket;
        const code = t.query_code;
        if (mode === 'close') t = (await api('POST', `/api/v1/tickets/${t.id}/close_first_contact`, { version: t.version, reply: f.reply.trim() })).ticket;
        if (mode === 'merge') t = (await api('POST', `/api/v1/tickets/${t.id}/merge`, { version: t.version, target_id: target.id })).ticket;
        saved.value = { ticket: t, code, mode, target };
        emit('saved', t);
        Object.assign(f, emptyForm());
        ctx.callId = null; ctx.householdId = null; ctx.callerMasked = ''; ctx.householdName = '';
        dups.value = [];
        idem = newKey();
      } catch (e) {
        toastError(e);
      } finally {
        busy.value = false;
      }
    };

    const onKey = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); save('dispatch'); } };
    const item = (label, child, extra) => h(EP.ElFormItem, { label, ...(extra || {}) }, () => child);

    return () => h('div', { onKeydown: onKey, id: 'ticket-form' }, [
      ctx.callId || ctx.householdId ? h(EP.ElAlert, { type: 'info', closable: false, showIcon: true, style: 'margin-bottom:10px',
        title: [ctx.callId ? `来电 ${ctx.callerMasked}（通话 #${ctx.callId}，保存后自动关联通话与录音）` : '', ctx.householdName ? `农户：${ctx.householdName}` : ''].filter(Boolean).join('　') }) : null,
      h(EP.ElForm, { labelWidth: '84px', size: 'default' }, () => [
        item('诉求类型', h(EP.ElRadioGroup, model(f, 'kind', { id: 'tf-kind' }), () => Object.entries(KIND).map(([k, v]) => h(EP.ElRadioButton, { value: k }, () => v)))),
        item('类别', h(EP.ElSelect, model(f, 'category', { id: 'tf-category', filterable: true, placeholder: '选择事项类别', style: 'width:100%',
          'onUpdate:modelValue': (v) => { f.category = v; suggest(); } }), () => options(cats.value))),
        item('区域', h('div', { style: 'display:flex;gap:8px;width:100%' }, [
          h(EP.ElSelect, { modelValue: f.pref, 'onUpdate:modelValue': setPref, placeholder: '市州', filterable: true, clearable: true, id: 'tf-pref' }, () => options(prefs.value)),
          h(EP.ElSelect, { modelValue: f.county, 'onUpdate:modelValue': setCounty, placeholder: '县市区', filterable: true, clearable: true, id: 'tf-county', disabled: !f.pref }, () => options(counties.value)),
          h(EP.ElSelect, model(f, 'town', { placeholder: '乡镇街道', filterable: true, clearable: true, id: 'tf-town', disabled: !f.county }), () => options(towns.value)),
        ])),
        h(EP.ElRow, { gutter: 8 }, () => [
          h(EP.ElCol, { span: 12 }, () => item('来电人', h(EP.ElInput, model(f, 'caller_name', { id: 'tf-caller-name', maxlength: 50, placeholder: '可不填' })))),
          h(EP.ElCol, { span: 12 }, () => item('联系电话', ctx.callId ? h(EP.ElInput, { modelValue: ctx.callerMasked, disabled: true })
            : h(EP.ElInput, model(f, 'caller_phone', { id: 'tf-caller-phone', maxlength: 20, placeholder: '可不填',
              'onUpdate:modelValue': (v) => { f.caller_phone = v; suggest(); } })))),
        ]),
        item('诉求内容', h(EP.ElInput, model(f, 'content', { id: 'tf-content', type: 'textarea', rows: 4, maxlength: 4000, showWordLimit: true,
          placeholder: '来电人反映的问题、诉求和经过', 'onUpdate:modelValue': (v) => { f.content = v; suggest(); } }))),
        dups.value.length ? item('疑似重复', h('div', { class: 'dups', id: 'tf-duplicates' }, [
          h('div', { class: 'muted' }, '该来电人/农户近期同类工单尚未办结，可合并到已有工单：'),
          h('ul', { style: 'margin:4px 0;padding-left:18px' }, dups.value.map((d) => h('li', { key: d.id }, [
            ticketLink(d), ' ', h(EP.ElTag, { size: 'small' }, () => STATUS[d.status] || d.status), ' ',
            h('span', { class: 'muted' }, (d.content || '').slice(0, 40)), ' ',
            h(EP.ElButton, { size: 'small', link: true, type: 'warning', disabled: busy.value, onClick: () => save('merge', d) }, () => '合并到此'),
          ]))),
        ])) : null,
        h(EP.ElRow, { gutter: 8 }, () => [
          h(EP.ElCol, { span: 12 }, () => item('紧急程度', h(EP.ElRadioGroup, model(f, 'urgency'), () => Object.entries(URGENCY).map(([k, v]) => h(EP.ElRadio, { value: k }, () => v))))),
          h(EP.ElCol, { span: 12 }, () => item('保密', h(EP.ElSwitch, model(f, 'confidential', { disabled: f.kind !== 'report', activeText: '举报人信息保密' })))),
        ]),
        f.kind === 'consultation' ? item('答复内容', h(EP.ElInput, model(f, 'reply', { id: 'tf-reply', type: 'textarea', rows: 2, maxlength: 2000,
          placeholder: '当场答复的内容（当场办结时填写）' }))) : null,
        item('', h('div', { class: 'actions' }, [
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: () => save('dispatch'), id: 'tf-save-dispatch' }, () => '保存并派单'),
          h(EP.ElButton, { loading: busy.value, onClick: () => save('save'), id: 'tf-save' }, () => '仅保存'),
          f.kind === 'consultation' ? h(EP.ElButton, { type: 'success', loading: busy.value, onClick: () => save('close'), id: 'tf-close' }, () => '当场办结') : null,
          h('span', { class: 'muted' }, 'Ctrl+Enter 保存并派单'),
        ])),
      ]),
      h(EP.ElDialog, { modelValue: !!saved.value, 'onUpdate:modelValue': (v) => { if (!v) saved.value = null; }, title: '工单已保存', width: '420px', id: 'saved-dialog' }, {
        default: () => saved.value ? h('div', { class: 'readout' }, [
          h('p', null, '请向来电人告知工单编号和查询码：'),
          h('div', { class: 'num', id: 'saved-number' }, saved.value.ticket.number),
          saved.value.code ? h('div', null, [h('div', { class: 'muted' }, '查询码'), h('div', { class: 'code', id: 'saved-code' }, saved.value.code)]) : null,
          h('p', { class: 'muted' }, saved.value.mode === 'merge' ? `已合并到工单 ${saved.value.target.number}` :
            saved.value.mode === 'close' ? '已当场办结' : `状态：${STATUS[saved.value.ticket.status] || saved.value.ticket.status}`),
          h('a', { href: '/tickets/' + saved.value.ticket.id }, '查看工单'),
        ]) : null,
        footer: () => h(EP.ElButton, { type: 'primary', onClick: () => { saved.value = null; }, id: 'saved-ok' }, () => '已告知'),
      }),
    ]);
  },
};

export { maskPhone };
