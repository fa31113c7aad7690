// 监测户 (household records): search, the record with members, masked phones, measures and the cadre; the audited
// reveal (a reason is required, the server writes pii_reveals); the loop actions this user may take with the
// statutory clocks; the timeline with recordings where the user may hear them; CSV import with its per-row report,
// and export. Every permission is decided by the server; the page shows what it is allowed.
import { h, ref, reactive, onMounted, EP, api, apiUpload, toast, toastError, errorText, Frame, cst, model, options, session,
  MONITORING, HH_STATUS, APIError } from './lib.js';

const RISK = { illness: '因病', disability: '因残', schooling: '因学', disaster: '因灾', accident: '因意外事故', unstable_work: '因务工就业不稳',
  industry_failure: '因产业项目失败', labour_shortage: '缺劳动力', housing: '住房安全', water: '饮水安全', other: '其他' };
const HH_ACTION = { verify: '核实', publicize_identify: '认定公示', identify: '认定', assist: '开始帮扶', publicize_elimination: '消除风险公示',
  eliminate: '风险消除', not_include: '不纳入', rescreen: '重新排查' };
const CONTACT = { inbound_call: '来电', outbound_call: '外呼接通', outbound_attempt: '外呼未接通', visit: '入户走访', sms: '短信', note: '备注' };
const CLOCK_TYPE = { green: 'success', yellow: 'warning', red: 'danger', running: 'warning', complete: 'success' };

const label = (m, k) => (m && m[k]) || k;

// clockTag shows the statutory clock: identify within 15 days of a lead (green/yellow/red), or a publicity running.
export function clockTag(c) {
  if (!c) return h('span', { class: 'muted' }, '—');
  const text = c.kind === 'publicity' ? (c.level === 'complete' ? '公示期满 ' : '公示至 ') + cst(c.due) : '认定时限 ' + cst(c.due) + (c.level === 'red' ? '（已超期）' : '');
  return h(EP.ElTag, { size: 'small', effect: 'dark', type: CLOCK_TYPE[c.level] || 'info', class: 'hh-clock', 'data-level': c.level }, () => text);
}

// ---- search, import, export -------------------------------------------------------------------------------------

const ImportPanel = {
  setup() {
    const report = ref(null);
    const busy = ref(false);
    const file = ref(null);
    const send = async (accept) => {
      if (!file.value) { toast('请选择 CSV 文件', 'warning'); return; }
      busy.value = true;
      try {
        report.value = await apiUpload('POST', '/api/v1/households/import' + (accept ? '?accept_unknown_columns=1' : ''), file.value, 'text/csv');
        toast('导入完成');
      } catch (e) {
        if (e instanceof APIError && e.status === 422 && e.body.report) {
          report.value = e.body.report;
          try { await EP.ElMessageBox.confirm('文件有系统不认识的列（见下表），未导入任何数据。忽略这些列继续导入？', '未知列', { type: 'warning' }); } catch (x) { return; }
          return send(true);
        }
        EP.ElMessageBox.alert(errorText(e), '导入失败', { type: 'error' }).catch(() => {});
      } finally { busy.value = false; }
    };
    return () => h('div', { id: 'import-panel' }, [
      h('p', { class: 'muted' }, 'CSV（UTF-8 或 GBK），每行一名家庭成员；整户全部导入或全部不导入；重复导入不产生变化。'),
      h('div', { style: 'display:flex;gap:8px;align-items:center' }, [
        h('input', { type: 'file', accept: '.csv,text/csv', id: 'import-file', onChange: (e) => { file.value = e.target.files[0] || null; } }),
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: () => send(false), id: 'import-go' }, () => '导入'),
      ]),
      report.value ? h('div', { id: 'import-report', style: 'margin-top:10px' }, [
        h('p', null, `共 ${report.value.rows} 行（${report.value.encoding}），接受 ${report.value.rows_accepted} 行、${report.value.households} 户：新建 ${report.value.created}，更新 ${report.value.updated}，未变 ${report.value.unchanged}；拒绝 ${(report.value.rejected || []).length} 行。`),
        (report.value.unknown_columns || []).length ? h(EP.ElTable, { data: report.value.unknown_columns, size: 'small' }, () => [
          h(EP.ElTableColumn, { label: '未知列', width: 200 }, { default: ({ row }) => row.column }),
          h(EP.ElTableColumn, { label: '是否应为', width: 200 }, { default: ({ row }) => row.nearest })]) : null,
        (report.value.rejected || []).length ? h(EP.ElTable, { data: report.value.rejected, size: 'small', maxHeight: 300, id: 'import-rejected' }, () => [
          h(EP.ElTableColumn, { label: '行号', width: 70 }, { default: ({ row }) => row.line }),
          h(EP.ElTableColumn, { label: '户', width: 140 }, { default: ({ row }) => row.household }),
          h(EP.ElTableColumn, { label: '原因', minWidth: 300 }, { default: ({ row }) => (row.reasons || []).join('；') })]) : null,
      ]) : null,
    ]);
  },
};

export const HouseholdsPage = {
  setup() {
    const q = reactive({ by: 'name', value: '', status: '', clock: '' });
    const rows = ref(null);
    const next = ref(null);
    const busy = ref(false);
    const params = (after) => {
      const p = new URLSearchParams({ limit: '50' });
      const v = q.value.trim();
      if (v) p.set(q.by, v);
      if (q.status) p.set('status', q.status);
      if (q.clock) p.set('clock', q.clock);
      if (after) p.set('after', after);
      return p;
    };
    const run = async (after) => {
      busy.value = true;
      try {
        const page = await api('GET', '/api/v1/households?' + params(after));
        rows.value = after ? rows.value.concat(page.households) : page.households;
        next.value = page.next || null;
      } catch (e) {
        if (e instanceof APIError && e.status === 403 && (q.by === 'phone' || q.by === 'id_number')) toast('按完整号码查询需要“按完整号码查询”权限（每次查询都记录审计）', 'warning');
        else toastError(e);
      } finally { busy.value = false; }
    };
    const exportURL = () => { const p = params(); p.delete('limit'); return '/api/v1/households/export?' + p; };
    const BY = [['name', '姓名'], ['number', '户编号'], ['id_last4', '身份证后4位'], ['phone', '完整电话（精确）'], ['id_number', '完整身份证号（精确）'], ['region', '区划代码前缀']];
    return () => h(Frame, { active: '/households' }, () => [
      h(EP.ElCard, { shadow: 'never' }, { header: () => '监测户查询', default: () => [
        h('div', { style: 'display:flex;gap:8px;margin-bottom:10px;flex-wrap:wrap' }, [
          h(EP.ElSelect, model(q, 'by', { style: 'width:170px', id: 'hh-by' }), () => BY.map(([value, l]) => h(EP.ElOption, { value, label: l }))),
          h(EP.ElInput, model(q, 'value', { id: 'hh-q', style: 'width:240px', clearable: true, placeholder: '输入后回车', onKeyup: (e) => { if (e.key === 'Enter') run(); } })),
          h(EP.ElSelect, model(q, 'status', { style: 'width:120px', placeholder: '全部状态', clearable: true }), () => options(HH_STATUS)),
          h(EP.ElSelect, model(q, 'clock', { style: 'width:140px', placeholder: '认定时限', clearable: true }), () => options({ yellow: '临期及超期', red: '已超期' })),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: () => run(), id: 'hh-go' }, () => '查询'),
          h('a', { href: exportURL(), class: 'el-button', id: 'hh-export' }, '导出 CSV（号码已遮蔽）'),
        ]),
        h('p', { class: 'muted' }, '按完整电话或身份证号查询是精确匹配，需要专门权限，每分钟次数有限，并记入安全审计。'),
        rows.value === null ? null : h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '没有找到监测户', maxHeight: 460, id: 'hh-list',
          rowClassName: ({ row }) => 'hh-' + row.id, onRowClick: (row) => { location.assign('/households/' + row.id); } }, () => [
          h(EP.ElTableColumn, { label: '户编号', width: 120 }, { default: ({ row }) => h('a', { href: '/households/' + row.id, class: 'el-link el-link--primary' }, row.number) }),
          h(EP.ElTableColumn, { label: '户主', width: 90 }, { default: ({ row }) => row.head_name }),
          h(EP.ElTableColumn, { label: '地址', minWidth: 200, showOverflowTooltip: true }, { default: ({ row }) => row.region_name + ' ' + row.village + (row.group || '') }),
          h(EP.ElTableColumn, { label: '监测类型', width: 120 }, { default: ({ row }) => label(MONITORING, row.monitoring_type) }),
          h(EP.ElTableColumn, { label: '状态', width: 80 }, { default: ({ row }) => label(HH_STATUS, row.status) }),
          h(EP.ElTableColumn, { label: '时限', width: 230 }, { default: ({ row }) => clockTag(row.clock) }),
          h(EP.ElTableColumn, { label: '最近联系', width: 140 }, { default: ({ row }) => (row.last_contact_at ? cst(row.last_contact_at) : '从未') }),
        ]),
        next.value ? h(EP.ElButton, { style: 'margin-top:8px', onClick: () => run(next.value) }, () => '更多') : null,
      ] }),
      session.user && session.user.role !== 'agent' ? h(EP.ElCard, { shadow: 'never', style: 'margin-top:12px' }, { header: () => '导入监测户（CSV）', default: () => h(ImportPanel) }) : null,
    ]);
  },
};

// ---- one household ----------------------------------------------------------------------------------------------

export const HouseholdPage = {
  props: { id: Number },
  setup(props) {
    const hh = ref(null);
    const allowed = ref([]);
    const timeline = ref([]);
    const revealed = reactive({}); // key → full value, shown until the page is left
    const reveal = ref(null); // {key, body, what}
    const err = ref('');
    const load = async () => {
      try {
        const j = await api('GET', '/api/v1/households/' + props.id);
        hh.value = j.household;
        allowed.value = j.allowed_actions || [];
      } catch (e) { err.value = e instanceof APIError && (e.status === 403 || e.status === 404) ? '没有找到该监测户，或不在您的辖区内。' : errorText(e); return; }
      try { timeline.value = (await api('GET', `/api/v1/households/${props.id}/timeline`)).timeline; } catch (e) { toastError(e); }
    };
    onMounted(load);
    const canReveal = () => session.user && (session.user.role === 'admin' || (session.user.permissions || []).includes('reveal_pii'));
    const askReveal = (key, body, what) => { reveal.value = reactive({ key, body, what, reason: '' }); };
    const doReveal = async () => {
      const r = reveal.value;
      try {
        const out = await api('POST', `/api/v1/households/${props.id}/reveal`, { ...r.body, reason: r.reason });
        revealed[r.key] = out.value;
        reveal.value = null;
      } catch (e) { EP.ElMessageBox.alert(errorText(e), '未显示', { type: 'warning' }).catch(() => {}); }
    };
    const masked = (key, value, body, what) => h('span', { class: 'pii' }, [
      h('span', { class: 'pii-value', 'data-key': key }, revealed[key] || value || '—'),
      value && !revealed[key] && canReveal() ? h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'reveal-btn', onClick: () => askReveal(key, body, what) }, () => '显示') : null,
    ]);
    const act = async (a) => {
      let reason = '';
      try {
        reason = (await EP.ElMessageBox.prompt('请填写「' + label(HH_ACTION, a) + '」的依据或说明', label(HH_ACTION, a), { inputPlaceholder: '如 入户核实，家庭收入低于监测线' })).value || '';
      } catch (e) { return; }
      try { await api('POST', `/api/v1/households/${props.id}/actions/${a}`, { reason }); toast('已' + label(HH_ACTION, a)); load(); } catch (e) {
        EP.ElMessageBox.alert(errorText(e), '未执行', { type: 'warning' }).catch(() => {});
        load();
      }
    };
    const info = (l, v) => h(EP.ElDescriptionsItem, { label: l }, () => v);
    return () => h(Frame, { active: '/households' }, () => {
      if (err.value) return h(EP.ElAlert, { type: 'warning', title: err.value, closable: false });
      const x = hh.value;
      if (!x) return h('p', { class: 'muted' }, '加载中…');
      return [
        h(EP.ElCard, { shadow: 'never', id: 'hh-record' }, { header: () => h('span', null, ['监测户 ', h('b', { id: 'hh-number' }, x.number), ' · ', x.head_name, ' ', h(EP.ElTag, { size: 'small' }, () => label(HH_STATUS, x.status)), ' ', clockTag(x.clock)]),
          default: () => [
            h(EP.ElDescriptions, { column: 3, border: true, size: 'small' }, () => [
              info('地址', `${x.region_name} ${x.village}${x.group || ''} ${x.address || ''}`),
              info('监测类型', label(MONITORING, x.monitoring_type)),
              info('风险类型', (x.risk_types || []).map((r) => label(RISK, r)).join('、') || '—'),
              info('帮扶责任人', [x.cadre_name || '—', ' ', masked('cadre', x.cadre_phone, { field: 'cadre_phone' }, '帮扶责任人电话')]),
              info('状态时间', cst(x.status_at)),
              info('最近联系', x.last_contact_at ? cst(x.last_contact_at) : '从未'),
            ]),
            h('h4', null, '家庭成员'),
            h(EP.ElTable, { data: x.members || [], size: 'small', id: 'hh-members' }, () => [
              h(EP.ElTableColumn, { label: '姓名', width: 100 }, { default: ({ row }) => row.name }),
              h(EP.ElTableColumn, { label: '关系', width: 80 }, { default: ({ row }) => row.relation }),
              h(EP.ElTableColumn, { label: '身份证号', minWidth: 240 }, { default: ({ row }) => masked('id' + row.seq, row.id_number, { field: 'id_number', member_seq: row.seq }, row.name + '的身份证号') }),
              h(EP.ElTableColumn, { label: '健康', width: 90 }, { default: ({ row }) => row.health }),
              h(EP.ElTableColumn, { label: '劳动能力', width: 90 }, { default: ({ row }) => row.labour }),
              h(EP.ElTableColumn, { label: '在校生', width: 70 }, { default: ({ row }) => (row.in_school ? '是' : '') }),
            ]),
            h('h4', null, '联系电话'),
            h('div', { id: 'hh-phones' }, (x.phones || []).map((p, i) => h('div', null, [(p.kind || '电话') + '：', masked('phone' + i, p.number, { field: 'phone', phone: p.number }, '电话')]))),
            h('h4', null, '帮扶措施'),
            (x.measures || []).length ? h(EP.ElTable, { data: x.measures, size: 'small' }, () => [
              h(EP.ElTableColumn, { label: '措施', width: 160 }, { default: ({ row }) => row.type }),
              h(EP.ElTableColumn, { label: '起止', width: 200 }, { default: ({ row }) => (row.start || '') + ' — ' + (row.end || '') }),
              h(EP.ElTableColumn, { label: '说明', minWidth: 200 }, { default: ({ row }) => row.note })]) : h('p', { class: 'muted' }, '暂无'),
            h('h4', null, '监测流程'),
            h('p', { class: 'muted' }, '排查 → 核实 → 认定（风险线索起 15 日内，认定前公示 5 日）→ 帮扶 → 风险消除（公示 7 日）；不符合条件的不纳入。'),
            h('div', { id: 'hh-actions' }, allowed.value.length ? allowed.value.map((a) => h(EP.ElButton, { size: 'small', onClick: () => act(a), class: 'hh-act-' + a }, () => label(HH_ACTION, a))) : h('span', { class: 'muted' }, '当前状态下没有可执行的操作')),
          ] }),
        h(EP.ElCard, { shadow: 'never', style: 'margin-top:12px' }, { header: () => '时间线（来电、外呼回答、工单、走访）', default: () =>
          h(EP.ElTimeline, { id: 'hh-timeline' }, () => timeline.value.map((e) => h(EP.ElTimelineItem, { timestamp: cst(e.at), placement: 'top' }, () => h('div', null, [
            h(EP.ElTag, { size: 'small', type: e.type === 'ticket' ? 'warning' : e.type === 'event' ? 'success' : 'info' }, () => (e.type === 'contact' ? label(CONTACT, e.kind) : e.type === 'event' ? '流程：' + label(HH_ACTION, e.kind) : '工单')),
            ' ', e.summary, e.actor ? h('span', { class: 'muted' }, ' · ' + e.actor) : null,
            e.ticket_id ? h('a', { href: '/tickets/' + e.ticket_id, class: 'el-link el-link--primary', style: 'margin-left:6px' }, '查看工单') : null,
            e.answers ? h('div', { class: 'muted' }, '按键回答：' + Object.entries(e.answers).map(([k, v]) => k + '=' + v).join('，')) : null,
            e.recording ? h('audio', { controls: true, preload: 'none', src: e.recording, class: 'recording' }) : null,
          ])))) }),
        h(EP.ElDialog, { modelValue: !!reveal.value, 'onUpdate:modelValue': (v) => { if (!v) reveal.value = null; }, title: reveal.value ? '显示' + reveal.value.what : '', width: '440px', id: 'reveal-dialog' }, {
          default: () => (reveal.value ? [h('p', { class: 'muted' }, '完整号码仅用于工作需要；本次查看将记录您的姓名、时间和理由。'),
            h(EP.ElInput, model(reveal.value, 'reason', { id: 'reveal-reason', placeholder: '查看理由（必填）' }))] : null),
          footer: () => [h(EP.ElButton, { onClick: () => { reveal.value = null; } }, () => '取消'), h(EP.ElButton, { type: 'primary', onClick: doReveal, id: 'reveal-go' }, () => '显示')],
        }),
      ];
    });
  },
};
