// 12345对接 (admins): the administration of the exchange with the province's 12345 platforms, which was only a JSON
// API: the codes that came without a mapping (their orders wait at the dispatch desk) with a 映射 form, the saved
// category/region mappings, the sends to the platform with 重发 for a dead one, and the daily reconciliations with
// 立即对账. The server refuses everyone but admins; this page only asks.
import { h, ref, reactive, onMounted, EP, api, toast, errorText, Frame, cst, APIError, model, options, categories,
  EXCHANGE_ACTION, OUTBOUND_TYPE } from './lib.js';

const OUT_STATE = { pending: '待发送', sent: '已发送', dead: '死信' };
const KIND = { category: '类别', region: '区划' };
const PATH_KIND = { category: 'categories', region: 'regions' };
const DIFF = { missing_here: '平台未办结、我方未受理', closed_here: '平台未办结、我方已办结或撤单', missing_there: '我方未办结、平台无此单' };
const FIELD = { code: '平台编码', ours: '对应我方', kind: '类型' };
const REASON = { 'not an active category of ours': '不是启用中的类别', 'not a Hunan region code': '不是湖南省的区划代码',
  '1-64 characters': '应为1至64个字符', 'regions have no default row': '区划不能设置默认映射（*）', 'category or region': '应为类别或区划' };

// cls makes a platform code safe inside a CSS class name.
const cls = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, '_');

// mappingError says why a mapping was not saved or deleted, in one plain sentence.
function mappingError(e, verb) {
  if (e instanceof APIError && e.status === 400 && e.body && e.body.fields) {
    return verb + '未成功，请检查：' + Object.entries(e.body.fields).map(([k, v]) => (FIELD[k] || k) + '（' + (REASON[v] || v) + '）').join('；');
  }
  if (e instanceof APIError && e.status === 404) {
    return verb === '删除' ? '未删除：该映射已不存在（可能已被他人删除），列表已刷新。' : verb + '未成功：该平台已不在配置中，请刷新页面。';
  }
  return verb + '未成功：' + errorText(e);
}

// retryText says why a 重发 did not happen.
function retryText(e) {
  if (e instanceof APIError && e.status === 409) return '未重发：该记录已不是死信（可能已被他人重发或已发出），列表已刷新。';
  if (e instanceof APIError && e.status === 404) return '未重发：该推送记录不存在。';
  if (e instanceof APIError && e.status === 400) return '未重发：请求有误（' + errorText(e) + '）';
  return '未重发：' + errorText(e);
}

// reconcileText says why 立即对账 did not run.
function reconcileText(e) {
  if (e instanceof APIError && e.status === 404) return '未对账：该平台已不在配置中，请刷新页面。';
  if (e instanceof APIError && e.status === 409) return '未对账：该平台正在对账，请稍后查看结果。';
  return '未对账：' + errorText(e);
}

// lastError puts the sender's reason in Chinese; the platform's own words follow as they came.
function lastError(t) {
  if (!t) return '';
  if (/dial tcp|connection refused|timeout|no such host/.test(t) && !t.startsWith('platform ')) return '无法连接平台：' + t;
  return t.replace(/^platform refused with (\d+): ?/, '平台拒收（HTTP $1）：').replace(/^platform answered (\d+): ?/, '平台暂时不可用（HTTP $1）：')
    .replace(/^platform "[^"]*" is not configured/, '该平台已不在配置中');
}

const loadError = (what) => (e) => EP.ElMessage({ message: '无法加载' + what + '：' + errorText(e), type: 'error', duration: 6000, grouping: true });

// RegionPicker is the ticket form's 市州 → 县市区 → 乡镇街道 choice; the value is the finest level chosen.
const RegionPicker = {
  props: { modelValue: String },
  emits: ['update:modelValue'],
  setup(props, { emit }) {
    const f = reactive({ pref: '', county: '', town: '' });
    const prefs = ref([]), counties = ref([]), towns = ref([]);
    const regions = (parent) => api('GET', '/api/v1/regions' + (parent ? '?parent=' + parent : '')).then((j) => j.regions);
    regions('').then((r) => { prefs.value = r; }).catch(loadError('区划'));
    const pick = () => emit('update:modelValue', f.town || f.county || f.pref || '');
    const setPref = async (v) => { f.pref = v || ''; f.county = ''; f.town = ''; counties.value = []; towns.value = []; pick();
      if (v) counties.value = await regions(v); };
    const setCounty = async (v) => { f.county = v || ''; f.town = ''; towns.value = []; pick();
      if (v) towns.value = await regions(v); };
    const setTown = (v) => { f.town = v || ''; pick(); };
    return () => h('div', { style: 'display:flex;gap:8px;width:100%' }, [
      h(EP.ElSelect, { modelValue: f.pref, 'onUpdate:modelValue': setPref, placeholder: '市州', filterable: true, clearable: true, id: 'map-pref' }, () => options(prefs.value)),
      h(EP.ElSelect, { modelValue: f.county, 'onUpdate:modelValue': setCounty, placeholder: '县市区', filterable: true, clearable: true, id: 'map-county', disabled: !f.pref }, () => options(counties.value)),
      h(EP.ElSelect, { modelValue: f.town, 'onUpdate:modelValue': setTown, placeholder: '乡镇街道', filterable: true, clearable: true, id: 'map-town', disabled: !f.county }, () => options(towns.value)),
    ]);
  },
};

export const ExchangePage = {
  setup() {
    const platforms = ref([]);
    const platform = ref('');
    const tab = ref('unmapped');
    const cats = ref([]);
    const unmapped = ref([]);
    const mappings = ref([]);
    const outbound = ref([]);
    const outState = ref('');
    const recs = ref([]);
    const loading = reactive({ unmapped: false, mappings: false, outbound: false, recs: false });
    const edit = ref(null); // {mode: 'new'|'edit', kind, code, ours}
    const busy = ref(false);
    const reconciling = ref(false);
    const off = ref(false); // the exchange is not configured on this server

    const catName = (code) => (cats.value.find((c) => c.code === code) || {}).name || code;
    const platformPath = () => '/api/v1/exchange/platforms/' + encodeURIComponent(platform.value);

    const loadUnmapped = async () => {
      if (!platform.value) return;
      loading.unmapped = true;
      try { unmapped.value = (await api('GET', platformPath() + '/unmapped')).unmapped || []; } catch (e) { loadError('待映射编码')(e); } finally { loading.unmapped = false; }
    };
    const loadMappings = async () => {
      if (!platform.value) return;
      loading.mappings = true;
      try { mappings.value = (await api('GET', platformPath() + '/mappings')).mappings || []; } catch (e) { loadError('编码映射')(e); } finally { loading.mappings = false; }
    };
    const loadOutbound = async () => {
      const p = new URLSearchParams({ limit: '200' });
      if (outState.value) p.set('state', outState.value);
      loading.outbound = true;
      try { outbound.value = (await api('GET', '/api/v1/exchange/outbound?' + p)).outbound || []; } catch (e) { loadError('推送记录')(e); } finally { loading.outbound = false; }
    };
    const loadRecs = async () => {
      loading.recs = true;
      try { recs.value = (await api('GET', '/api/v1/exchange/reconciliations?limit=60')).reconciliations || []; } catch (e) { loadError('对账结果')(e); } finally { loading.recs = false; }
    };
    const loadPlatform = () => { loadUnmapped(); loadMappings(); };

    onMounted(async () => {
      categories().then((c) => { cats.value = c; }).catch(loadError('类别'));
      try {
        platforms.value = (await api('GET', '/api/v1/exchange/platforms')).platforms || [];
        platform.value = platforms.value[0] || '';
      } catch (e) {
        // No platform configured: the exchange's routes are not there at all; say so once instead of four errors.
        if (e instanceof APIError && e.status === 404) { off.value = true; return; }
        loadError('平台列表')(e);
      }
      loadPlatform();
      loadOutbound();
      loadRecs();
    });

    // ---- mappings ----
    const openMap = (u) => { edit.value = reactive({ mode: 'new', kind: u.kind, code: u.code, ours: '', fixedCode: true }); };
    const openNew = () => { edit.value = reactive({ mode: 'new', kind: 'category', code: '', ours: '', fixedCode: false }); };
    const openEdit = (m) => { edit.value = reactive({ mode: 'edit', kind: m.kind, code: m.code, ours: m.kind === 'category' ? m.ours : '', was: (m.ours_name || m.ours) + '（' + m.ours + '）', fixedCode: true }); };
    const saveMap = async () => {
      const m = edit.value;
      if (!m.code.trim()) { toast('请填写平台编码', 'warning'); return; }
      if (!m.ours) { toast(m.kind === 'category' ? '请选择对应的类别' : '请选择对应的区划', 'warning'); return; }
      busy.value = true;
      try {
        await api('PUT', `${platformPath()}/mappings/${PATH_KIND[m.kind]}/${encodeURIComponent(m.code.trim())}`, { ours: m.ours });
        toast('映射已保存，此后该编码的工单按此分类');
        edit.value = null;
        loadPlatform();
      } catch (e) {
        EP.ElMessageBox.alert(mappingError(e, '保存'), '映射未保存', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };
    const delMap = async (m) => {
      try {
        await EP.ElMessageBox.confirm(`删除${KIND[m.kind]}编码 ${m.code} 的映射？删除后该编码的新工单将不再自动归类，会在派单台等待。`, '删除映射', { type: 'warning', confirmButtonText: '删除', cancelButtonText: '取消' });
      } catch (e) { return; }
      try {
        await api('DELETE', `${platformPath()}/mappings/${PATH_KIND[m.kind]}/${encodeURIComponent(m.code)}`);
        toast('映射已删除');
      } catch (e) {
        EP.ElMessageBox.alert(mappingError(e, '删除'), '映射未删除', { type: 'warning' }).catch(() => {});
      }
      loadPlatform();
    };

    // ---- outbound ----
    // The answer replaces the row whole (a cleared last_error must not linger); the ticket number is kept.
    const replaceRow = (o) => { outbound.value = outbound.value.map((r) => (r.id === o.id ? { ticket_number: r.ticket_number, ...o } : r)); };
    // findRow reads the row again from the newest rows (there is no single-row read); null if it is not among them.
    const findRow = async (id) => ((await api('GET', '/api/v1/exchange/outbound?limit=500')).outbound || []).find((r) => r.id === id) || null;
    const retry = async (row) => {
      try {
        replaceRow(await api('POST', `/api/v1/exchange/outbound/${row.id}/retry`));
        toast('已重新排队发送');
      } catch (e) {
        EP.ElMessageBox.alert(retryText(e), '重发未成功', { type: 'warning' }).catch(() => {});
        findRow(row.id).then((o) => { if (o) replaceRow(o); }).catch(() => {});
        return;
      }
      // The sender sends at once; follow the row until it leaves 待发送 (a few seconds at most, then leave it).
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 500));
        try {
          const o = await findRow(row.id);
          if (!o) return;
          replaceRow(o);
          if (o.state !== 'pending') return;
        } catch (e) { return; }
      }
    };

    // ---- reconciliations ----
    const reconcile = async () => {
      if (!platform.value) return;
      reconciling.value = true;
      try {
        const r = await api('POST', platformPath() + '/reconciliations');
        if (r.error) EP.ElMessageBox.alert('对账未完成：无法从平台取得未办结工单（' + r.error + '）。', '对账未完成', { type: 'warning' }).catch(() => {});
        else toast(r.differences && r.differences.length ? `对账完成，发现 ${r.differences.length} 处差异` : '对账完成，两边一致');
      } catch (e) {
        EP.ElMessageBox.alert(reconcileText(e), '对账未执行', { type: 'warning' }).catch(() => {});
      } finally { reconciling.value = false; }
      loadRecs();
    };

    // ---- views ----
    const stateTag = (s) => h(EP.ElTag, { size: 'small', type: OUTBOUND_TYPE[s] || 'info', class: 'outbound-state', 'data-state': s }, () => OUT_STATE[s] || s);
    const kindTag = (k) => h(EP.ElTag, { size: 'small', type: k === 'category' ? 'primary' : 'success' }, () => KIND[k] || k);

    const unmappedView = () => h(EP.ElCard, { shadow: 'never', key: 'unmapped' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '待映射编码'),
        h(EP.ElButton, { size: 'small', onClick: loadUnmapped, loading: loading.unmapped, id: 'unmapped-refresh' }, () => '刷新'),
        h('span', { class: 'muted' }, '平台推来的类别/区划编码尚无映射：类别未映射的工单在派单台等待人工派单（待派单）。映射后，此后的工单自动归类。'),
      ]),
      default: () => h(EP.ElTable, { data: unmapped.value, size: 'default', emptyText: loading.unmapped ? '加载中…' : '没有待映射的编码', maxHeight: 520,
        id: 'unmapped-list', rowKey: (r) => r.kind + ':' + r.code, rowClassName: ({ row }) => `unmapped-${row.kind}-${cls(row.code)}` }, () => [
        h(EP.ElTableColumn, { label: '类型', width: 80 }, { default: ({ row }) => kindTag(row.kind) }),
        h(EP.ElTableColumn, { label: '平台编码', width: 140 }, { default: ({ row }) => row.code }),
        h(EP.ElTableColumn, { label: '待派单', width: 80 }, { default: ({ row }) => h('span', { class: 'unmapped-waiting' }, String(row.waiting)) }),
        h(EP.ElTableColumn, { label: '收到工单', width: 90 }, { default: ({ row }) => h('span', { class: 'unmapped-count' }, String(row.count)) }),
        h(EP.ElTableColumn, { label: '最近平台工单号', minWidth: 160, showOverflowTooltip: true }, { default: ({ row }) => row.last_order_id }),
        h(EP.ElTableColumn, { label: '首次出现', width: 150 }, { default: ({ row }) => cst(row.first_seen) }),
        h(EP.ElTableColumn, { label: '最近出现', width: 150 }, { default: ({ row }) => cst(row.last_seen) }),
        h(EP.ElTableColumn, { label: '操作', width: 80 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'unmapped-map', onClick: () => openMap(row) }, () => '映射') }),
      ]),
    });

    const mappingsView = () => h(EP.ElCard, { shadow: 'never', key: 'mappings' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '编码映射'),
        h(EP.ElButton, { size: 'small', type: 'primary', onClick: openNew, id: 'mapping-new' }, () => '新增映射'),
        h(EP.ElButton, { size: 'small', onClick: loadMappings, loading: loading.mappings, id: 'mapping-refresh' }, () => '刷新'),
        h('span', { class: 'muted' }, '类别编码 * 为该平台的默认类别；修改只影响此后收到的工单。'),
      ]),
      default: () => h(EP.ElTable, { data: mappings.value, size: 'default', emptyText: loading.mappings ? '加载中…' : '还没有映射', maxHeight: 520,
        id: 'mapping-list', rowKey: (r) => r.kind + ':' + r.code, rowClassName: ({ row }) => `mapping-${row.kind}-${cls(row.code)}` }, () => [
        h(EP.ElTableColumn, { label: '类型', width: 80 }, { default: ({ row }) => kindTag(row.kind) }),
        h(EP.ElTableColumn, { label: '平台编码', width: 140 }, { default: ({ row }) => (row.code === '*' ? '*（默认）' : row.code) }),
        h(EP.ElTableColumn, { label: '对应我方', minWidth: 200 }, { default: ({ row }) => (row.ours_name || (row.kind === 'category' ? catName(row.ours) : '')) + '（' + row.ours + '）' }),
        h(EP.ElTableColumn, { label: '修改时间', width: 150 }, { default: ({ row }) => cst(row.updated_at) }),
        h(EP.ElTableColumn, { label: '操作', width: 110 }, { default: ({ row }) => [
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', class: 'mapping-edit', onClick: () => openEdit(row) }, () => '修改'),
          h(EP.ElButton, { size: 'small', link: true, type: 'danger', class: 'mapping-delete', onClick: () => delMap(row) }, () => '删除'),
        ] }),
      ]),
    });

    const outboundView = () => h(EP.ElCard, { shadow: 'never', key: 'outbound' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '推送记录'),
        h(EP.ElRadioGroup, { id: 'outbound-filter', size: 'small', modelValue: outState.value, 'onUpdate:modelValue': (v) => { outState.value = v; loadOutbound(); } }, () =>
          [['', '全部'], ...Object.entries(OUT_STATE)].map(([value, label]) => h(EP.ElRadioButton, { value, class: 'filter-' + (value || 'all') }, () => label))),
        h(EP.ElButton, { size: 'small', onClick: loadOutbound, loading: loading.outbound, id: 'outbound-refresh' }, () => '刷新'),
        h('span', { class: 'muted' }, '我方回传平台的签收、答复等，最新在前；死信可重发'),
      ]),
      default: () => h(EP.ElTable, { data: outbound.value, size: 'default', emptyText: loading.outbound ? '加载中…' : '没有推送记录', maxHeight: 520,
        id: 'outbound-list', rowKey: 'id', rowClassName: ({ row }) => 'outbound-' + row.id }, () => [
        h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.created_at) }),
        h(EP.ElTableColumn, { label: '平台', width: 90 }, { default: ({ row }) => row.platform }),
        h(EP.ElTableColumn, { label: '动作', width: 100 }, { default: ({ row }) => h('span', { class: 'outbound-action' }, EXCHANGE_ACTION[row.action] || row.action) }),
        h(EP.ElTableColumn, { label: '平台工单号', minWidth: 150, showOverflowTooltip: true }, { default: ({ row }) => row.order_id }),
        h(EP.ElTableColumn, { label: '工单', width: 150 }, { default: ({ row }) => h('a', { href: '/tickets/' + row.ticket_id, class: 'el-link el-link--primary outbound-ticket' }, row.ticket_number || ('#' + row.ticket_id)) }),
        h(EP.ElTableColumn, { label: '状态', width: 90 }, { default: ({ row }) => stateTag(row.state) }),
        h(EP.ElTableColumn, { label: '尝试', width: 60 }, { default: ({ row }) => row.attempts }),
        h(EP.ElTableColumn, { label: '最后错误', minWidth: 200, showOverflowTooltip: true }, { default: ({ row }) => h('span', { class: 'outbound-error' }, lastError(row.last_error)) }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => (row.state === 'dead'
          ? h(EP.ElButton, { size: 'small', link: true, type: 'danger', class: 'outbound-retry', onClick: () => retry(row) }, () => '重发') : null) }),
      ]),
    });

    const diffList = (r) => (r.differences && r.differences.length ? h('ul', { style: 'margin:0;padding-left:18px' }, r.differences.map((d) => h('li', { key: d.order_id + d.kind }, [
      d.order_id, '：', DIFF[d.kind] || d.kind, d.ticket_number ? '（工单 ' + d.ticket_number + '）' : '',
    ]))) : h('span', { class: 'muted' }, '无差异'));

    const reconView = () => h(EP.ElCard, { shadow: 'never', key: 'recon' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '对账'),
        h(EP.ElButton, { size: 'small', type: 'primary', onClick: reconcile, loading: reconciling.value, disabled: !platform.value, id: 'recon-run' }, () => '立即对账' + (platform.value ? '（' + platform.value + '）' : '')),
        h(EP.ElButton, { size: 'small', onClick: loadRecs, loading: loading.recs, id: 'recon-refresh' }, () => '刷新'),
        h('span', { class: 'muted' }, '每日比对两边未办结的工单；差异需人工核查'),
      ]),
      default: () => h(EP.ElTable, { data: recs.value, size: 'default', emptyText: loading.recs ? '加载中…' : '还没有对账记录', maxHeight: 520,
        id: 'recon-list', rowKey: 'id', rowClassName: ({ row }) => 'recon-' + row.id }, () => [
        h(EP.ElTableColumn, { label: '日期', width: 110 }, { default: ({ row }) => row.day }),
        h(EP.ElTableColumn, { label: '平台', width: 90 }, { default: ({ row }) => row.platform }),
        h(EP.ElTableColumn, { label: '开始', width: 150 }, { default: ({ row }) => cst(row.started_at) + (row.manual ? ' 手动' : '') }),
        h(EP.ElTableColumn, { label: '我方未办结', width: 100 }, { default: ({ row }) => row.ours_open }),
        h(EP.ElTableColumn, { label: '平台未办结', width: 100 }, { default: ({ row }) => row.theirs_open }),
        h(EP.ElTableColumn, { label: '差异', minWidth: 260 }, { default: ({ row }) => (row.error
          ? h(EP.ElTag, { size: 'small', type: 'danger', class: 'recon-error' }, () => '未完成：' + row.error) : h('div', { class: 'recon-diffs' }, [
            h('b', null, (row.differences || []).length + ' 处'), ' ', diffList(row)])) }),
      ]),
    });

    const mapDialog = () => h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, width: '640px', id: 'mapping-dialog',
      title: edit.value ? (edit.value.mode === 'edit' ? '修改映射' : '新增映射') + '（平台 ' + platform.value + '）' : '' }, {
      default: () => (edit.value ? h(EP.ElForm, { labelWidth: '90px' }, () => [
        h(EP.ElFormItem, { label: '类型' }, () => h(EP.ElRadioGroup, { modelValue: edit.value.kind, disabled: edit.value.fixedCode, id: 'map-kind',
          'onUpdate:modelValue': (v) => { edit.value.kind = v; edit.value.ours = ''; } }, () => Object.entries(KIND).map(([value, label]) => h(EP.ElRadioButton, { value }, () => label)))),
        h(EP.ElFormItem, { label: '平台编码' }, () => h(EP.ElInput, model(edit.value, 'code', { id: 'map-code', disabled: edit.value.fixedCode, maxlength: 64, placeholder: '平台的类别或区划编码；类别填 * 为默认' }))),
        edit.value.kind === 'category'
          ? h(EP.ElFormItem, { label: '我方类别' }, () => h(EP.ElSelect, model(edit.value, 'ours', { id: 'map-category', filterable: true, placeholder: '选择事项类别', style: 'width:100%' }), () => options(cats.value)))
          : h(EP.ElFormItem, { label: '我方区划' }, () => h('div', { style: 'width:100%' }, [
            h(RegionPicker, { modelValue: edit.value.ours, 'onUpdate:modelValue': (v) => { edit.value.ours = v; } }),
            edit.value.was ? h('div', { class: 'muted' }, '当前：' + edit.value.was) : null,
          ])),
      ]) : null),
      footer: () => [
        h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'),
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: saveMap, id: 'map-save' }, () => '保存'),
      ],
    });

    return () => h(Frame, { active: '/exchange' }, () => (off.value ? [
      h(EP.ElAlert, { type: 'info', closable: false, showIcon: true, id: 'exchange-off', title: '本系统未配置12345平台对接',
        description: '设置 HOTLINE_EXCHANGE_PLATFORMS 与 HOTLINE_EXCHANGE_SECRETS 并重启后，此页面可管理编码映射、推送记录和对账。' }),
    ] : [
      h('div', { style: 'display:flex;align-items:center;gap:12px;margin-bottom:8px' }, [
        h('span', null, '12345平台：'),
        platforms.value.length ? h(EP.ElSelect, { modelValue: platform.value, id: 'exchange-platform', style: 'width:200px', size: 'small',
          'onUpdate:modelValue': (v) => { platform.value = v; loadPlatform(); } }, () => platforms.value.map((p) => h(EP.ElOption, { key: p, value: p, label: p })))
          : h('span', { class: 'muted', id: 'exchange-none' }, '未配置（HOTLINE_EXCHANGE_PLATFORMS）'),
      ]),
      h(EP.ElTabs, { modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; }, id: 'exchange-tabs' }, () => [
        h(EP.ElTabPane, { name: 'unmapped', label: '待映射编码' }),
        h(EP.ElTabPane, { name: 'mappings', label: '编码映射' }),
        h(EP.ElTabPane, { name: 'outbound', label: '推送记录' }),
        h(EP.ElTabPane, { name: 'recon', label: '对账' }),
      ]),
      { unmapped: unmappedView, mappings: mappingsView, outbound: outboundView, recon: reconView }[tab.value](),
      mapDialog(),
    ]));
  },
};
