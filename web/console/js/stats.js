// 统计分析: the case KPIs (按时签收率, 按时办结率, 满意率, 重办率, 退单率, 延期率, 重复来电率, average times) for a
// period, grouped by unit, region, category or period; charts with Apache ECharts (vendored, loaded on this page
// only): volume by day, by category and by prefecture, SLA performance by unit, KPI trends by week; and the report
// downloads (日报 / 周报 / 月报 per unit or for the bureau, the leaders' ranking) as .xlsx or CSV.
import { h, ref, reactive, onMounted, onUnmounted, EP, api, session, Frame, toastError, model, options, units } from './lib.js';

const pct = (v) => (v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%');
const hours = (v) => (v === null || v === undefined ? '—' : v.toFixed(1));
const BY = { unit: '承办单位', prefecture: '市州', county: '县市区', category: '事项类别', day: '日', week: '周', month: '月' };
const REPORTS = { daily: '日报', weekly: '周报', monthly: '月报', leaders: '领导月度排名' };

// loadECharts adds the vendored script once (1 MB: only this page needs it).
let echartsP = null;
function loadECharts() {
  echartsP = echartsP || new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/assets/vendor/echarts.min.js';
    s.onload = () => resolve(window.echarts);
    s.onerror = () => reject(new Error('echarts'));
    document.head.appendChild(s);
  });
  return echartsP;
}

const day = (d) => {
  const p = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  return p; // 2026-11-30
};

function monthStart() {
  const t = day(new Date());
  return t.slice(0, 8) + '01';
}
function tomorrow() { return day(new Date(Date.now() + 86400000)); }

const COLS = [
  ['created', '受理量'], ['dispatched', '派单量'], ['on_time_sign_rate', '按时签收率', pct], ['on_time_reply_rate', '按时办结率', pct],
  ['satisfaction_rate', '满意率', pct], ['reopen_rate', '重办率', pct], ['return_rate', '退单率', pct], ['extension_rate', '延期率', pct],
  ['repeat_call_rate', '重复来电率', pct], ['avg_sign_hours', '平均签收用时(时)', hours], ['avg_reply_hours', '平均答复用时(时)', hours],
];

export const StatsPage = {
  setup() {
    const f = reactive({ from: monthStart(), to: tomorrow(), by: 'unit' });
    const rows = ref([]);
    const total = ref(null);
    const loading = ref(false);
    const rep = reactive({ kind: 'monthly', date: day(new Date()), unit: '', month: day(new Date(Date.now() - 28 * 86400000)).slice(0, 7) });
    const charts = {};
    const unitList = ref([]);
    units().then((m) => { unitList.value = [...m.values()].filter((u) => u.kind !== 'desk' && u.active !== false); }).catch(() => {});
    const mayBureau = () => session.user && (session.user.role === 'supervisor' || session.user.role === 'admin');

    const kpis = (by, from, to) => api('GET', `/api/v1/stats/kpis?by=${by}&from=${from}&to=${to}`);

    const loadTable = async () => {
      loading.value = true;
      try {
        const j = await kpis(f.by, f.from, f.to);
        rows.value = j.rows;
        total.value = j.total;
      } catch (e) { toastError(e); } finally { loading.value = false; }
    };

    const draw = (id, option) => {
      const el = document.getElementById(id);
      if (!el || !window.echarts) return;
      charts[id] = charts[id] || window.echarts.init(el);
      charts[id].setOption(option, true);
    };
    const bar = (names, series, horizontal) => ({
      tooltip: { trigger: 'axis' }, legend: series.length > 1 ? {} : undefined, grid: { left: horizontal ? 150 : 40, right: 20, top: 30, bottom: 30 },
      [horizontal ? 'yAxis' : 'xAxis']: { type: 'category', data: names, axisLabel: { interval: 0, fontSize: 11 } },
      [horizontal ? 'xAxis' : 'yAxis']: { type: 'value' },
      series: series.map(([name, data]) => ({ name, type: 'bar', data })),
    });
    const loadCharts = async () => {
      try {
        await loadECharts();
        const [byDay, byCat, byPref, byUnit, byWeek] = await Promise.all(['day', 'category', 'prefecture', 'unit', 'week']
          .map((b) => kpis(b, f.from, f.to)));
        draw('chart-day', { tooltip: { trigger: 'axis' }, grid: { left: 40, right: 20, top: 30, bottom: 30 },
          xAxis: { type: 'category', data: byDay.rows.map((r) => r.key.slice(5)) }, yAxis: { type: 'value' },
          series: [{ name: '受理量', type: 'line', areaStyle: {}, data: byDay.rows.map((r) => r.created) }] });
        draw('chart-category', bar(byCat.rows.map((r) => r.label), [['受理量', byCat.rows.map((r) => r.created)]], true));
        draw('chart-region', bar(byPref.rows.map((r) => r.label), [['受理量', byPref.rows.map((r) => r.created)]]));
        const units = byUnit.rows.filter((r) => r.dispatched > 0).sort((a, b) => b.dispatched - a.dispatched).slice(0, 15);
        const r100 = (v) => (v === null ? null : Math.round(v * 1000) / 10);
        draw('chart-sla', bar(units.map((r) => r.label.replace('乡村振兴局', '')),
          [['按时签收率%', units.map((r) => r100(r.on_time_sign_rate))], ['按时办结率%', units.map((r) => r100(r.on_time_reply_rate))]], true));
        draw('chart-trend', { tooltip: { trigger: 'axis' }, legend: {}, grid: { left: 40, right: 20, top: 30, bottom: 30 },
          xAxis: { type: 'category', data: byWeek.rows.map((r) => r.key.slice(5) + '周') }, yAxis: { type: 'value', max: 100 },
          series: [['按时签收率', 'on_time_sign_rate'], ['按时办结率', 'on_time_reply_rate'], ['满意率', 'satisfaction_rate']]
            .map(([name, k]) => ({ name, type: 'line', data: byWeek.rows.map((r) => r100(r[k])) })) });
      } catch (e) { if (e && e.status) toastError(e); }
    };
    const resize = () => Object.values(charts).forEach((c) => c.resize());
    const reload = () => { loadTable(); loadCharts(); };
    onMounted(() => { reload(); window.addEventListener('resize', resize); });
    onUnmounted(() => { window.removeEventListener('resize', resize); Object.values(charts).forEach((c) => c.dispose()); });

    const reportHref = (format) => {
      if (rep.kind === 'leaders') return `/api/v1/stats/reports/leaders?month=${rep.month}&format=${format}`;
      return `/api/v1/stats/reports/${rep.kind}?date=${rep.date}&format=${format}` + (rep.unit ? '&unit_id=' + rep.unit : '');
    };

    const dateInput = (obj, key, id) => h(EP.ElDatePicker, model(obj, key, { type: 'date', valueFormat: 'YYYY-MM-DD', clearable: false, style: 'width:150px', id }));
    const chartCard = (id, title) => h(EP.ElCol, { span: 12 }, () => h(EP.ElCard, { shadow: 'never' }, { header: () => title, default: () => h('div', { class: 'chart', id }) }));

    return () => h(Frame, { active: '/stats' }, () => [
      h(EP.ElCard, { shadow: 'never' }, {
        header: () => '案件统计',
        default: () => [
          h('div', { class: 'stats-bar' }, [
            h('span', null, '统计周期'), dateInput(f, 'from', 'stats-from'), h('span', null, '至'), dateInput(f, 'to', 'stats-to'),
            h('span', { class: 'muted' }, '（不含截止日）'),
            h('span', null, '分组'),
            h(EP.ElSelect, model(f, 'by', { style: 'width:130px', id: 'stats-by' }), () => options(BY)),
            h(EP.ElButton, { type: 'primary', onClick: reload, id: 'stats-go' }, () => '查询'),
          ]),
          h(EP.ElTable, { data: total.value ? [...rows.value, total.value] : rows.value, size: 'small', id: 'stats-table', border: true,
            emptyText: loading.value ? '加载中…' : '本期无数据', maxHeight: 460 }, () => [
            h(EP.ElTableColumn, { label: BY[f.by] || '分组', minWidth: 200, fixed: true, showOverflowTooltip: true }, { default: ({ row }) => row.label }),
            ...COLS.map(([k, label, fmt]) => h(EP.ElTableColumn, { label, minWidth: 96, align: 'right' }, { default: ({ row }) => (fmt ? fmt(row[k]) : String(row[k])) })),
          ]),
          h('p', { class: 'muted' }, '按时签收率 = 按时签收 ÷ (签收 + 超期未签收)；按时办结率 = 按时办结 ÷ (办结 + 超期未办结)，期限以工单当时的期限为准（含节假日、延期）；满意率 = 满意与基本满意 ÷ 回访；重办率、延期率以办结数为分母；退单率以派单数为分母；重复来电率 = 30 天内同一号码再次来电的工单 ÷ 有号码的工单。'),
        ],
      }),
      h(EP.ElRow, { gutter: 12 }, () => [chartCard('chart-day', '每日受理量'), chartCard('chart-category', '按事项类别'),
        chartCard('chart-region', '按市州'), chartCard('chart-sla', '承办单位按时率（派单量前 15）'), chartCard('chart-trend', '按周趋势（%）')]),
      h(EP.ElCard, { shadow: 'never' }, {
        header: () => '统计报表下载',
        default: () => h('div', { class: 'stats-bar' }, [
          h(EP.ElSelect, model(rep, 'kind', { style: 'width:150px', id: 'report-kind' }), () =>
            options(Object.fromEntries(Object.entries(REPORTS).filter(([k]) => k !== 'leaders' || mayBureau())))),
          rep.kind === 'leaders'
            ? h(EP.ElDatePicker, model(rep, 'month', { type: 'month', valueFormat: 'YYYY-MM', clearable: false, style: 'width:150px' }))
            : dateInput(rep, 'date', 'report-date'),
          rep.kind !== 'leaders' && mayBureau()
            ? h(EP.ElSelect, model(rep, 'unit', { placeholder: '全局（各单位）', style: 'width:240px', clearable: true, filterable: true, id: 'report-unit' }), () =>
              unitList.value.map((u) => h(EP.ElOption, { key: u.id, value: String(u.id), label: u.name }))) : null,
          h('a', { href: reportHref('xlsx'), class: 'el-button el-button--primary', id: 'report-xlsx', download: '' }, '下载 Excel'),
          h('a', { href: reportHref('csv'), class: 'el-button', id: 'report-csv', download: '' }, '下载 CSV'),
        ]),
      }),
    ]);
  },
};
