// 通知投递 (admins): the notification delivery log, newest first, filtered by status and paged by id; a row opens
// its attempt log; a dead delivery (retry budget spent, or refused for good) can be sent again with 重试.
// Recipients are shown masked as the API returns them; the server refuses everyone but admins.
// Beside it: the message templates, the notification rules (which event reaches whom by which channel with which
// template) and where each unit is reached (its robot, its head, its liaison; phones masked).
import { h, ref, reactive, onMounted, EP, api, toast, errorText, Frame, cst, APIError, model, options, ACTION, STATUS } from './lib.js';

export const DELIVERY_STATUS = { pending: '待发送', sent: '已发送', dead: '死信', suppressed: '已抑制' };
const DELIVERY_TYPE = { pending: 'warning', sent: 'success', dead: 'danger', suppressed: 'info' };
const CHANNEL = { sms: '短信', wecom_robot: '企业微信群', wecom_app: '企业微信', email: '邮件' };
const PAGE = 50;

// topicName is a delivery's event in Chinese: the SLA and digest kinds by name, a ticket action by its action's
// name; an unknown one as it is.
const TOPIC = { 'sla.yellow': '临期提醒（黄牌）', 'sla.red': '超期（红牌）', 'sla.co_yellow': '协办意见临期', 'sla.co_red': '协办意见超期',
  'digest.daily': '每日汇总' };
export function topicName(t) {
  if (TOPIC[t]) return TOPIC[t];
  if (t === 'ticket.created') return ACTION.create; // the one ticket event not named after its action
  const a = (t || '').startsWith('ticket.') ? ACTION[t.slice(7)] : '';
  return a || t;
}

// retryText says why a retry did not happen, in one plain sentence.
function retryText(e) {
  if (e instanceof APIError && e.status === 409) return '未重试：该投递已不是失败状态（可能已被他人重试），列表已刷新。';
  if (e instanceof APIError && e.status === 404) return '未重试：该投递不存在。';
  return '未重试：' + errorText(e);
}

const TPL_FIELD = { body: '正文', title: '标题', provider_params: '短信模板参数', name: '模板名' };

// templateError says what is wrong with an edited template, field by field, in Chinese.
function templateError(e) {
  const f = e instanceof APIError && e.body && e.body.fields;
  if (!f) return errorText(e);
  return '请检查：' + Object.entries(f).map(([k, v]) => (TPL_FIELD[k] || k) + '（' + String(v).replace('unknown placeholders', '未知占位符').replace('required', '必填').replace('too long', '过长') + '）').join('；');
}

// TemplatesPanel lists the message templates; 编辑 opens the text with a preview rendered by the server from
// sample values (the edit itself, before it is saved).
const TemplatesPanel = {
  setup() {
    const rows = ref([]);
    const edit = ref(null);
    const preview = ref(null);
    const busy = ref(false);
    const load = async () => {
      try { rows.value = (await api('GET', '/api/v1/notify/templates')).templates || []; } catch (e) { EP.ElMessage({ message: '无法加载模板：' + errorText(e), type: 'error' }); }
    };
    onMounted(load);
    const body = () => ({ description: edit.value.description, title: edit.value.title, body: edit.value.body,
      provider_template: edit.value.provider_template, provider_params: edit.value.provider_params || [] });
    const doPreview = async () => {
      try { preview.value = await api('POST', `/api/v1/notify/templates/${edit.value.name}/preview`, body()); } catch (e) {
        preview.value = null;
        EP.ElMessageBox.alert(templateError(e), '无法预览', { type: 'warning' }).catch(() => {});
      }
    };
    const save = async () => {
      busy.value = true;
      try {
        await api('PUT', `/api/v1/notify/templates/${edit.value.name}`, body());
        toast('模板已保存');
        edit.value = null;
        load();
      } catch (e) {
        EP.ElMessageBox.alert(templateError(e), '模板未保存', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };
    const open = (t) => { edit.value = reactive({ ...t }); preview.value = null; doPreview(); };
    return () => h('div', { id: 'template-panel' }, [
      h(EP.ElTable, { data: rows.value, size: 'default', emptyText: '没有模板', maxHeight: 520, id: 'template-list', rowKey: 'name',
        rowClassName: ({ row }) => 'template-' + row.name }, () => [
        h(EP.ElTableColumn, { label: '模板', width: 190 }, { default: ({ row }) => row.name }),
        h(EP.ElTableColumn, { label: '用途', width: 200, showOverflowTooltip: true }, { default: ({ row }) => row.description }),
        h(EP.ElTableColumn, { label: '正文', minWidth: 260, showOverflowTooltip: true }, { default: ({ row }) => row.body }),
        h(EP.ElTableColumn, { label: '短信模板号', width: 190, showOverflowTooltip: true }, { default: ({ row }) => row.provider_template || '—' }),
        h(EP.ElTableColumn, { label: '修改时间', width: 150 }, { default: ({ row }) => cst(row.updated_at) }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'template-edit', onClick: () => open(row) }, () => '编辑') }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: edit.value ? '编辑模板 ' + edit.value.name : '', width: '720px', id: 'template-dialog' },
        { default: () => (edit.value ? h(EP.ElForm, { labelWidth: '90px' }, () => [
          h(EP.ElFormItem, { label: '标题' }, () => h(EP.ElInput, model(edit.value, 'title', { id: 'tpl-title', placeholder: '企业微信、邮件用；短信无标题' }))),
          h(EP.ElFormItem, { label: '正文' }, () => h(EP.ElInput, model(edit.value, 'body', { id: 'tpl-body', type: 'textarea', rows: 5 }))),
          h(EP.ElFormItem, { label: '' }, () => h('span', { class: 'muted' }, '占位符如 {number}、{query_code}、{unit}；预览用示例值填充。')),
          h(EP.ElFormItem, { label: '预览' }, () => h('div', { id: 'tpl-preview', style: 'white-space:pre-wrap;background:#f5f7fa;padding:8px;border-radius:4px;width:100%;min-height:40px' },
            preview.value ? (preview.value.title ? preview.value.title + '\n' : '') + preview.value.body : '')),
        ]) : null),
        footer: () => [
          h(EP.ElButton, { onClick: doPreview, id: 'tpl-preview-btn' }, () => '预览'),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save, id: 'tpl-save' }, () => '保存'),
        ] }),
    ]);
  },
};

// ---- 通知规则 ---------------------------------------------------------------------------------------------------

// The choices a rule offers, as the API validates them (notify/deliver/admin.go): a ticket event is
// ticket.<action> (the creation is ticket.created; the SLA alerts are their own topics, not actions).
const TOPICS = ['ticket.created', ...Object.keys(ACTION).filter((a) => !['create', 'sla_yellow', 'sla_red'].includes(a)).map((a) => 'ticket.' + a),
  ...Object.keys(TOPIC)];
const RECIPIENT = { caller: '来电人', unit_group: '单位工作群', unit_head: '单位负责人', unit_liaison: '单位联络员' };
const SOURCE = { phone: '电话', voicemail: '留言', campaign: '外呼', web: '网站', api: '接口', 12345: '12345平台' };
const RULE_FIELD = { topic: '事件', to_status: '工单状态', sources: '来源', recipient: '接收方', channel: '渠道', template: '模板' };

// fieldErrors turns a validation error into Chinese text per field; a field's English reason is replaced by
// what the form can do about it.
const FIELD_TEXT = {
  topic: () => '请选择事件',
  recipient: () => '请选择接收方',
  channel: (m) => (m.includes('SMS only') ? '来电人只能用短信通知' : '请选择渠道'),
  template: (m) => (m.includes('no such') ? '模板不存在' : '请选择模板'),
  robot_webhook: () => '请填写 http(s) 开头的机器人地址',
  head_phone: () => '请填写11位手机号码',
  liaison_phone: () => '请填写11位手机号码',
  email: () => '邮箱格式不正确',
};
function fieldErrors(e) {
  const f = (e instanceof APIError && e.body && e.body.fields) || null;
  if (!f) return null;
  const out = {};
  for (const [k, v] of Object.entries(f)) out[k] = FIELD_TEXT[k] ? FIELD_TEXT[k](String(v)) : String(v);
  return out;
}

// saveText says in one sentence why a save failed when no single field is at fault.
function saveText(e) {
  if (e instanceof APIError && e.status === 409) return '已有相同事件、工单状态、接收方和渠道的规则，请修改那一条。';
  if (e instanceof APIError && e.status === 404) return '该记录已不存在，请刷新。';
  return errorText(e);
}

const ruleBody = (r) => ({ topic: r.topic, to_status: r.to_status || '', sources: r.sources || [], recipient: r.recipient,
  channel: r.channel, template: r.template, enabled: !!r.enabled });

// RulesPanel lists the rules; 启用 saves at once, 编辑 / 新增规则 open a dialog whose errors sit under their fields.
const RulesPanel = {
  setup() {
    const rows = ref([]);
    const templates = ref([]);
    const edit = ref(null);
    const errs = ref({});
    const busy = ref(false);
    const load = async () => {
      try { rows.value = (await api('GET', '/api/v1/notify/rules')).rules || []; } catch (e) { EP.ElMessage({ message: '无法加载通知规则：' + errorText(e), type: 'error' }); }
    };
    onMounted(async () => {
      load();
      try { templates.value = (await api('GET', '/api/v1/notify/templates')).templates || []; } catch (e) { /* the rules still show */ }
    });
    const saving = ref({}); // rule ids whose switch is being saved: a second click waits for the first
    const toggle = async (row, on) => {
      if (saving.value[row.id]) return;
      const was = row.enabled;
      row.enabled = on;
      saving.value = { ...saving.value, [row.id]: true };
      try {
        const r = await api('PUT', '/api/v1/notify/rules/' + row.id, ruleBody(row));
        rows.value = rows.value.map((x) => (x.id === r.id ? r : x));
        toast(on ? '规则已启用' : '规则已停用');
      } catch (e) {
        row.enabled = was;
        EP.ElMessageBox.alert(saveText(e), '未保存', { type: 'warning' }).catch(() => {});
      } finally { saving.value = { ...saving.value, [row.id]: false }; }
    };
    const open = (r) => {
      errs.value = {};
      edit.value = reactive(r ? { id: r.id, ...ruleBody(r) } : { id: 0, topic: '', to_status: '', sources: [], recipient: '', channel: '', template: '', enabled: true });
    };
    const save = async () => {
      busy.value = true;
      errs.value = {};
      try {
        const e = edit.value;
        await api(e.id ? 'PUT' : 'POST', '/api/v1/notify/rules' + (e.id ? '/' + e.id : ''), ruleBody(e));
        toast(e.id ? '规则已保存' : '规则已新增');
        edit.value = null;
        load();
      } catch (e) {
        const f = fieldErrors(e);
        if (f) errs.value = f;
        else EP.ElMessageBox.alert(saveText(e), '规则未保存', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };
    const item = (field, control) => h(EP.ElFormItem, { label: RULE_FIELD[field], error: errs.value[field] || '', class: 'rule-field-' + field }, () => control);
    const sel = (field, opts, extra) => h(EP.ElSelect, model(edit.value, field, { id: 'rule-' + field, class: 'rule-' + field, style: 'width:100%', ...(extra || {}) }), () => opts);
    return () => h('div', { id: 'rule-panel' }, [
      h('div', { style: 'display:flex;gap:12px;align-items:center;margin-bottom:10px' }, [
        h(EP.ElButton, { type: 'primary', size: 'small', id: 'rule-new', onClick: () => open(null) }, () => '新增规则'),
        h('span', { class: 'muted' }, '事件发生时，按规则用所选渠道和模板通知接收方；停用的规则不发送。'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'default', emptyText: '没有规则', maxHeight: 520, id: 'rule-list', rowKey: 'id',
        rowClassName: ({ row }) => 'rule-' + row.id }, () => [
        h(EP.ElTableColumn, { label: '事件', minWidth: 150 }, { default: ({ row }) => topicName(row.topic) }),
        h(EP.ElTableColumn, { label: '工单状态', width: 90 }, { default: ({ row }) => (row.to_status ? STATUS[row.to_status] || row.to_status : '任意') }),
        h(EP.ElTableColumn, { label: '来源', width: 120 }, { default: ({ row }) => ((row.sources || []).length ? row.sources.map((x) => SOURCE[x] || x).join('、') : '任意') }),
        h(EP.ElTableColumn, { label: '接收方', width: 110 }, { default: ({ row }) => RECIPIENT[row.recipient] || row.recipient }),
        h(EP.ElTableColumn, { label: '渠道', width: 100 }, { default: ({ row }) => CHANNEL[row.channel] || row.channel }),
        h(EP.ElTableColumn, { label: '模板', minWidth: 170, showOverflowTooltip: true }, { default: ({ row }) => row.template }),
        h(EP.ElTableColumn, { label: '启用', width: 70 }, { default: ({ row }) => h(EP.ElSwitch, { modelValue: row.enabled, class: 'rule-enabled', loading: !!saving.value[row.id],
          'onUpdate:modelValue': (v) => toggle(row, v) }) }),
        h(EP.ElTableColumn, { label: '修改时间', width: 150 }, { default: ({ row }) => cst(row.updated_at) }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'rule-edit', onClick: () => open(row) }, () => '编辑') }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: edit.value && edit.value.id ? '编辑通知规则' : '新增通知规则', width: '560px', id: 'rule-dialog' },
        { default: () => (edit.value ? h(EP.ElForm, { labelWidth: '90px' }, () => [
          item('topic', sel('topic', TOPICS.map((t) => h(EP.ElOption, { key: t, value: t, label: topicName(t) + '（' + t + '）' })), { filterable: true, placeholder: '选择事件' })),
          item('to_status', sel('to_status', [h(EP.ElOption, { key: '', value: '', label: '任意' }), ...options(STATUS)], { placeholder: '任意' })),
          item('sources', sel('sources', options(SOURCE), { multiple: true, placeholder: '任意来源' })),
          item('recipient', sel('recipient', options(RECIPIENT), { placeholder: '选择接收方' })),
          item('channel', sel('channel', options(CHANNEL), { placeholder: '选择渠道' })),
          item('template', sel('template', templates.value.map((t) => h(EP.ElOption, { key: t.name, value: t.name, label: t.name + (t.description ? '（' + t.description + '）' : '') })), { filterable: true, placeholder: '选择模板' })),
          h(EP.ElFormItem, { label: '启用' }, () => h(EP.ElSwitch, model(edit.value, 'enabled', { id: 'rule-enabled-edit' }))),
        ]) : null),
        footer: () => [
          h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save, id: 'rule-save' }, () => '保存'),
        ] }),
    ]);
  },
};

// ---- 单位联系方式 -------------------------------------------------------------------------------------------------

const UNIT_FIELD = [['robot_webhook', '群机器人地址', 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…'],
  ['head_wecom_user', '负责人企业微信', '企业微信用户ID'], ['head_phone', '负责人手机', '11位手机号码'],
  ['liaison_phone', '联络员手机', '11位手机号码'], ['email', '邮箱', 'name@example.gov.cn']];
// The fields the API only shows masked: left as shown they are kept as stored ("keep"), since the masked text is
// not the value; typed over they are replaced, emptied they are cleared.
const MASKED = ['robot_webhook', 'head_phone', 'liaison_phone'];

// UnitsPanel lists the units that have contacts set; 编辑 or 添加单位 open a dialog.
const UnitsPanel = {
  setup() {
    const rows = ref([]);
    const units = ref([]);
    const edit = ref(null);
    const shown = ref({}); // the masked values the dialog opened with
    const errs = ref({});
    const busy = ref(false);
    const load = async () => {
      try { rows.value = (await api('GET', '/api/v1/notify/units')).units || []; } catch (e) { EP.ElMessage({ message: '无法加载单位联系方式：' + errorText(e), type: 'error' }); }
    };
    onMounted(async () => {
      load();
      try { units.value = ((await api('GET', '/api/v1/units')).units || []).filter((u) => u.active !== false); } catch (e) { /* the list still shows */ }
    });
    const open = (row) => {
      errs.value = {};
      const v = { unit_id: row ? row.unit_id : null, unit_name: row ? row.unit_name : '' };
      for (const [k] of UNIT_FIELD) v[k] = row ? row[k] || '' : '';
      shown.value = { ...v };
      edit.value = reactive(v);
    };
    const save = async () => {
      const e = edit.value;
      if (!e.unit_id) { errs.value = { unit_id: '请选择单位' }; return; }
      const body = { keep: [] };
      for (const [k] of UNIT_FIELD) body[k] = (e[k] || '').trim();
      for (const k of MASKED) if (body[k] !== '' && body[k] === shown.value[k]) body.keep.push(k);
      busy.value = true;
      errs.value = {};
      try {
        await api('PUT', '/api/v1/notify/units/' + e.unit_id, body);
        toast('联系方式已保存');
        edit.value = null;
        load();
      } catch (err) {
        const f = fieldErrors(err);
        if (f) errs.value = f;
        else EP.ElMessageBox.alert(saveText(err), '未保存', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };
    const dash = (v) => v || '—';
    return () => h('div', { id: 'unit-contact-panel' }, [
      h('div', { style: 'display:flex;gap:12px;align-items:center;margin-bottom:10px' }, [
        h(EP.ElButton, { type: 'primary', size: 'small', id: 'unit-contact-new', onClick: () => open(null) }, () => '添加单位'),
        h('span', { class: 'muted' }, '手机号码保存后只显示脱敏值；编辑时不改动即保持原号码，清空即删除。'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'default', emptyText: '尚未设置任何单位的联系方式', maxHeight: 520, id: 'unit-contact-list', rowKey: 'unit_id',
        rowClassName: ({ row }) => 'unit-contact-' + row.unit_id }, () => [
        h(EP.ElTableColumn, { label: '单位', minWidth: 150 }, { default: ({ row }) => row.unit_name }),
        h(EP.ElTableColumn, { label: '群机器人', minWidth: 180, showOverflowTooltip: true }, { default: ({ row }) => dash(row.robot_webhook) }),
        h(EP.ElTableColumn, { label: '负责人企业微信', width: 130 }, { default: ({ row }) => dash(row.head_wecom_user) }),
        h(EP.ElTableColumn, { label: '负责人手机', width: 120 }, { default: ({ row }) => h('span', { class: 'unit-head-phone' }, dash(row.head_phone)) }),
        h(EP.ElTableColumn, { label: '联络员手机', width: 120 }, { default: ({ row }) => h('span', { class: 'unit-liaison-phone' }, dash(row.liaison_phone)) }),
        h(EP.ElTableColumn, { label: '邮箱', minWidth: 160, showOverflowTooltip: true }, { default: ({ row }) => dash(row.email) }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'unit-contact-edit', onClick: () => open(row) }, () => '编辑') }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: edit.value && edit.value.unit_name ? '联系方式：' + edit.value.unit_name : '添加单位联系方式', width: '600px', id: 'unit-contact-dialog' },
        { default: () => (edit.value ? h(EP.ElForm, { labelWidth: '120px' }, () => [
          edit.value.unit_name ? null : h(EP.ElFormItem, { label: '单位', error: errs.value.unit_id || '', class: 'unit-field-unit' }, () => h(EP.ElSelect, model(edit.value, 'unit_id', { id: 'unit-contact-unit', filterable: true, style: 'width:100%', placeholder: '选择单位' }),
            () => units.value.map((u) => h(EP.ElOption, { key: u.id, value: u.id, label: u.name })))),
          ...UNIT_FIELD.map(([k, label, ph]) => h(EP.ElFormItem, { label, error: errs.value[k] || '', class: 'unit-field-' + k }, () => h(EP.ElInput, model(edit.value, k, { id: 'unit-' + k.replaceAll('_', '-'), placeholder: ph, clearable: true })))),
        ]) : null),
        footer: () => [
          h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save, id: 'unit-contact-save' }, () => '保存'),
        ] }),
    ]);
  },
};

export const NotifyPage = {
  setup() {
    const status = ref('');
    const rows = ref([]);
    const loading = ref(false);
    const more = ref(false);
    const cursors = ref([]); // before_id of each page shown before this one
    const before = ref(0);
    const detail = ref(null);

    const load = async () => {
      const p = new URLSearchParams({ limit: String(PAGE) });
      if (status.value) p.set('status', status.value);
      if (before.value) p.set('before_id', String(before.value));
      loading.value = true;
      try {
        const j = await api('GET', '/api/v1/notify/deliveries?' + p);
        rows.value = j.deliveries || [];
        more.value = rows.value.length === PAGE;
      } catch (e) {
        EP.ElMessage({ message: '无法加载投递记录：' + errorText(e), type: 'error', duration: 6000 });
      } finally { loading.value = false; }
    };
    const first = () => { cursors.value = []; before.value = 0; load(); };
    const next = () => { cursors.value.push(before.value); before.value = rows.value[rows.value.length - 1].id; load(); };
    const prev = () => { before.value = cursors.value.pop() || 0; load(); };
    onMounted(load);

    // The answer replaces the row whole: fields the API leaves out (a cleared last_error) must not linger.
    const replaceRow = (d) => { rows.value = rows.value.map((r) => (r.id === d.id ? { ...d, log: undefined } : r)); };
    // refreshRow reloads one delivery (with its attempts) into the table, and into the open detail.
    const refreshRow = async (id) => {
      const d = await api('GET', '/api/v1/notify/deliveries/' + id);
      replaceRow(d);
      if (detail.value && detail.value.id === id) detail.value = d;
      return d;
    };
    const open = async (row) => {
      try { detail.value = await api('GET', '/api/v1/notify/deliveries/' + row.id); } catch (e) { EP.ElMessage({ message: errorText(e), type: 'error' }); }
    };
    const retry = async (row) => {
      try {
        replaceRow(await api('POST', `/api/v1/notify/deliveries/${row.id}/retry`));
        toast('已重新排队发送');
      } catch (e) {
        EP.ElMessageBox.alert(retryText(e), '重试未成功', { type: 'warning' }).catch(() => {});
        refreshRow(row.id).catch(() => {});
        return;
      }
      // The worker sends at once; follow the row until it leaves 待发送 (a few seconds at most, then leave it).
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 500));
        try { if ((await refreshRow(row.id)).status !== 'pending') return; } catch (e) { return; }
      }
    };

    const statusTag = (s) => h(EP.ElTag, { size: 'small', type: DELIVERY_TYPE[s] || 'info', class: 'delivery-status', 'data-status': s }, () => DELIVERY_STATUS[s] || s);

    const attempts = (d) => h(EP.ElTable, { data: d.log || [], size: 'small', emptyText: '尚无发送尝试', id: 'delivery-attempts' }, () => [
      h(EP.ElTableColumn, { label: '次', width: 50 }, { default: ({ row }) => row.n }),
      h(EP.ElTableColumn, { label: '开始', width: 150 }, { default: ({ row }) => cst(row.started_at) }),
      h(EP.ElTableColumn, { label: '结果', width: 80 }, { default: ({ row }) => (row.ok == null ? h(EP.ElTag, { size: 'small', type: 'info' }, () => '未完成')
        : h(EP.ElTag, { size: 'small', type: row.ok ? 'success' : 'danger' }, () => (row.ok ? '成功' : '失败'))) }),
      h(EP.ElTableColumn, { label: '错误 / 回执', minWidth: 200, showOverflowTooltip: true }, { default: ({ row }) => row.error || row.provider_ref || '' }),
      h(EP.ElTableColumn, { label: '幂等键', width: 150, showOverflowTooltip: true }, { default: ({ row }) => row.idempotency_key }),
    ]);

    const detailView = (d) => h('div', { id: 'delivery-detail', 'data-id': String(d.id) }, [
      h(EP.ElDescriptions, { column: 2, border: true, size: 'small' }, () => [
        h(EP.ElDescriptionsItem, { label: '状态' }, () => statusTag(d.status)),
        h(EP.ElDescriptionsItem, { label: '渠道' }, () => CHANNEL[d.channel] || d.channel),
        h(EP.ElDescriptionsItem, { label: '接收方' }, () => d.to + '（' + d.recipient + '）'),
        h(EP.ElDescriptionsItem, { label: '事件 / 模板' }, () => topicName(d.topic) + ' / ' + d.template),
        h(EP.ElDescriptionsItem, { label: '工单' }, () => (d.ticket_id ? h('a', { href: '/tickets/' + d.ticket_id, class: 'el-link el-link--primary' }, '#' + d.ticket_id) : '—')),
        h(EP.ElDescriptionsItem, { label: '发送时间' }, () => (d.sent_at ? cst(d.sent_at) : '—')),
        h(EP.ElDescriptionsItem, { label: '内容', span: 2 }, () => h('div', { style: 'white-space:pre-wrap' }, (d.title ? d.title + '\n' : '') + d.body)),
        d.last_error ? h(EP.ElDescriptionsItem, { label: '最后错误', span: 2 }, () => d.last_error) : null,
      ]),
      h('h4', { style: 'margin:14px 0 6px' }, '发送尝试'),
      attempts(d),
    ]);

    const tab = ref('deliveries');
    return () => h(Frame, { active: '/notify' }, () => [
      h(EP.ElTabs, { modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; }, id: 'notify-tabs' }, () => [
        h(EP.ElTabPane, { name: 'deliveries', label: '投递记录' }),
        h(EP.ElTabPane, { name: 'templates', label: '消息模板' }),
        h(EP.ElTabPane, { name: 'rules', label: '通知规则' }),
        h(EP.ElTabPane, { name: 'units', label: '单位联系方式' }),
      ]),
      tab.value === 'templates' ? h(EP.ElCard, { shadow: 'never' }, { header: () => '消息模板', default: () => h(TemplatesPanel) }) :
      tab.value === 'rules' ? h(EP.ElCard, { shadow: 'never' }, { header: () => '通知规则', default: () => h(RulesPanel) }) :
      tab.value === 'units' ? h(EP.ElCard, { shadow: 'never' }, { header: () => '单位联系方式', default: () => h(UnitsPanel) }) :
      h(EP.ElCard, { shadow: 'never' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '通知投递'),
        h(EP.ElRadioGroup, { id: 'delivery-filter', size: 'small', modelValue: status.value, 'onUpdate:modelValue': (v) => { status.value = v; first(); } }, () =>
          [['', '全部'], ...Object.entries(DELIVERY_STATUS)].map(([value, label]) => h(EP.ElRadioButton, { value, class: 'filter-' + (value || 'all') }, () => label))),
        h(EP.ElButton, { size: 'small', onClick: load, loading: loading.value, id: 'delivery-refresh' }, () => '刷新'),
        h('span', { class: 'muted' }, '接收方号码已脱敏；失败的投递可重试'),
      ]),
      default: () => [
        h(EP.ElTable, { data: rows.value, size: 'default', emptyText: loading.value ? '加载中…' : '没有投递记录', maxHeight: 520, id: 'delivery-list', rowKey: 'id',
          rowClassName: ({ row }) => 'delivery-' + row.id }, () => [
          h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.created_at) }),
          h(EP.ElTableColumn, { label: '渠道', width: 100 }, { default: ({ row }) => CHANNEL[row.channel] || row.channel }),
          h(EP.ElTableColumn, { label: '接收方', width: 150, showOverflowTooltip: true }, { default: ({ row }) => row.to }),
          h(EP.ElTableColumn, { label: '事件 / 模板', minWidth: 180, showOverflowTooltip: true }, { default: ({ row }) => topicName(row.topic) + ' / ' + row.template }),
          h(EP.ElTableColumn, { label: '状态', width: 120 }, { default: ({ row }) => statusTag(row.status) }),
          h(EP.ElTableColumn, { label: '尝试', width: 60 }, { default: ({ row }) => row.attempts }),
          h(EP.ElTableColumn, { label: '最后错误', minWidth: 180, showOverflowTooltip: true }, { default: ({ row }) => row.last_error || '' }),
          h(EP.ElTableColumn, { label: '操作', width: 110 }, { default: ({ row }) => [
            h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'delivery-open', onClick: () => open(row) }, () => '详情'),
            row.status === 'dead' ? h(EP.ElButton, { size: 'small', link: true, type: 'danger', class: 'delivery-retry', onClick: () => retry(row) }, () => '重试') : null,
          ] }),
        ]),
        h('div', { style: 'display:flex;gap:8px;margin-top:10px' }, [
          h(EP.ElButton, { size: 'small', disabled: !before.value, onClick: prev, id: 'delivery-prev' }, () => '上一页'),
          h(EP.ElButton, { size: 'small', disabled: !more.value, onClick: next, id: 'delivery-next' }, () => '下一页'),
        ]),
      ],
    }), h(EP.ElDrawer, { modelValue: !!detail.value, 'onUpdate:modelValue': (v) => { if (!v) detail.value = null; }, title: detail.value ? '投递 #' + detail.value.id : '', size: '50%' },
      () => (detail.value ? [
        detailView(detail.value),
        detail.value.status === 'dead' ? h(EP.ElButton, { type: 'danger', style: 'margin-top:12px', id: 'detail-retry', onClick: () => retry(detail.value) }, () => '重试') : null,
      ] : null))]);
  },
};
