// One campaign: launch, pause, resume or cancel it; a live progress bar with counts by outcome and the estimated
// finish; the last answers as they arrive; the results table with filters and its CSV and Excel exports. It follows
// the campaign.progress events of the websocket and polls every few seconds besides (events may be missed while
// offline; the poll also brings the answers).
import { h, ref, reactive, onMounted, onUnmounted, EP, api, toast, toastError, Frame, cst, options, onLive, duration, now } from './lib.js';
import { PURPOSE, CSTATUS, CSTATUS_TYPE, canManage, promptPlayer } from './campaigns.js';

const TSTATE = { pending: '待拨打', queued: '排队中', dialing: '拨打中', completed: '已完成', exhausted: '未接通（次数用尽）', opted_out: '已退订',
  manual: '转人工', cancelled: '已取消' };
const OUTCOME = { in_progress: '通话中', answered: '已接听', no_answer: '无人接听', busy: '占线', failed: '失败', interrupted: '中断' };
const OUTCOME_TYPE = { answered: 'success', no_answer: 'warning', busy: 'warning', failed: 'danger', interrupted: 'danger', in_progress: 'primary' };
const FINAL = ['completed', 'exhausted', 'opted_out', 'manual', 'cancelled'];
const ACTIONS = { launch: ['启动', 'primary', ['draft']], pause: ['暂停', 'warning', ['running']], resume: ['继续', 'primary', ['paused']],
  cancel: ['取消任务', 'danger', ['draft', 'running', 'paused']] };

export const CampaignRunPage = {
  props: { id: Number },
  setup(props) {
    const c = ref(null);
    const prog = ref(null);
    const answers = ref([]);
    const results = ref({ total: 0, rows: [], questions: [] });
    const filter = reactive({ state: '', outcome: '', risk: false, region: '' });
    const page = ref(1);
    const base = '/api/v1/campaigns/' + props.id;
    const loadCampaign = async () => { c.value = await api('GET', base); };
    const loadProgress = async () => { prog.value = await api('GET', base + '/progress'); };
    const loadAnswers = async () => { answers.value = (await api('GET', base + '/answers?limit=15')).answers || []; };
    const filterQuery = () => {
      const p = new URLSearchParams();
      if (filter.state) p.set('state', filter.state);
      if (filter.outcome) p.set('outcome', filter.outcome);
      if (filter.risk) p.set('risk', 'true');
      if (filter.region.trim()) p.set('region', filter.region.trim());
      return p;
    };
    const loadResults = async () => {
      const p = filterQuery();
      p.set('limit', '20');
      p.set('offset', String((page.value - 1) * 20));
      results.value = await api('GET', base + '/results?' + p);
    };
    const refresh = async () => {
      try {
        await Promise.all([loadCampaign(), loadProgress(), loadAnswers(), loadResults()]);
      } catch (e) { toastError(e); }
    };
    onMounted(refresh);
    // Poll while the campaign may change by itself; events make it sooner.
    const timer = setInterval(() => {
      if (c.value && (c.value.status === 'running' || c.value.status === 'paused')) refresh();
    }, 3000);
    onUnmounted(() => clearInterval(timer));
    onLive((f) => {
      if (f.type === 'reload') { refresh(); return; }
      if (f.type === 'campaign.progress' && f.data && Number(f.data.campaign_id) === props.id) {
        prog.value = f.data;
        if (c.value && f.data.status && f.data.status !== c.value.status) refresh(); else loadAnswers().catch(() => {});
      }
    });

    const act = async (a) => {
      const [label] = ACTIONS[a];
      if (a === 'cancel' || a === 'launch') {
        const msg = a === 'launch' ? '启动后将按条件锁定呼叫名单并开始外呼。确定启动？' : '取消后不再呼叫，正在进行的通话会结束并记录。确定取消任务？';
        try { await EP.ElMessageBox.confirm(msg, label, { confirmButtonText: label, cancelButtonText: '返回', type: a === 'cancel' ? 'warning' : 'info' }); } catch (e) { return; }
      }
      try {
        c.value = await api('POST', base + '/' + a);
        toast('已' + label);
        refresh();
      } catch (e) { toastError(e); refresh(); }
    };

    const progressView = () => {
      const p = prog.value;
      if (!p) return null;
      const total = p.targets || 0;
      const done = FINAL.reduce((s, k) => s + ((p.targets_by_state || {})[k] || 0), 0);
      const pct = total ? Math.round((done / total) * 100) : 0;
      const eta = p.estimated_finish ? (new Date(p.estimated_finish).getTime() - now.value) / 1000 : null;
      return h('div', { id: 'campaign-progress', 'data-done': String(done), 'data-total': String(total) }, [
        h(EP.ElProgress, { percentage: pct, strokeWidth: 18, textInside: true, status: c.value && c.value.status === 'finished' ? 'success' : undefined, id: 'progress-bar' }),
        h('div', { style: 'margin-top:8px;display:flex;gap:6px;flex-wrap:wrap;align-items:center' }, [
          h('span', null, `名单 ${total} 户，已结束 ${done} 户；拨打 ${p.attempts || 0} 次`),
          ...Object.entries(p.attempts_by_outcome || {}).map(([o, n]) => h(EP.ElTag, { type: OUTCOME_TYPE[o] || 'info', size: 'small', class: 'outcome', 'data-outcome': o, 'data-count': String(n) },
            () => (OUTCOME[o] || o) + ' ' + n)),
          h('span', { class: 'muted' }, Object.entries(p.targets_by_state || {}).map(([s, n]) => (TSTATE[s] || s) + ' ' + n).join(' · ')),
          eta !== null && c.value && c.value.status === 'running' ? h('span', { id: 'campaign-eta' }, '预计 ' + (eta > 0 ? duration(eta) + '后完成' : '即将完成') + '（' + cst(p.estimated_finish) + '）') : null,
          p.rate ? h('span', { class: 'muted' }, `当前速率 ${p.rate.toFixed(1)} 次/秒`) : null,
        ]),
      ]);
    };

    const answerText = (a) => Object.entries(a.answers || {}).map(([q, k]) => q + '=' + (k || '未按')).join('，') || '—';
    const exportHref = (fmt) => base + '/export.' + fmt + (filterQuery().toString() ? '?' + filterQuery() : '');

    return () => {
      const cv = c.value;
      return h(Frame, { active: '/campaigns' }, () => (!cv ? h('p', { class: 'muted' }, '加载中…') : h('div', { id: 'campaign-run' }, [
        h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, {
          header: () => h('div', { style: 'display:flex;gap:10px;align-items:center;flex-wrap:wrap' }, [
            h('b', { id: 'campaign-name' }, '#' + cv.id + ' ' + cv.name),
            h(EP.ElTag, { type: CSTATUS_TYPE[cv.status], id: 'campaign-status', 'data-status': cv.status, effect: 'dark' }, () => CSTATUS[cv.status] || cv.status),
            h('span', { class: 'muted' }, PURPOSE[cv.purpose] || cv.purpose),
            h('span', { style: 'flex:1' }),
            ...(canManage() ? Object.entries(ACTIONS).filter(([, v]) => v[2].includes(cv.status)).map(([a, [label, type]]) =>
              h(EP.ElButton, { type, size: 'small', id: 'btn-' + a, onClick: () => act(a) }, () => label)) : []),
            h(EP.ElButton, { size: 'small', onClick: () => location.assign('/campaigns') }, () => '返回列表'),
          ]),
          default: () => [
            progressView(),
            h(EP.ElDescriptions, { column: 3, size: 'small', border: true, style: 'margin-top:12px' }, () => [
              h(EP.ElDescriptionsItem, { label: '呼叫时段' }, () => (cv.windows.spans || []).map((s) => s.start + '–' + s.end).join('，') + (cv.windows.call_on_holidays ? '（含节假日）' : '（节假日不呼叫）')),
              h(EP.ElDescriptionsItem, { label: '速率 / 并发' }, () => `${cv.pace} 次/秒 / ${cv.max_concurrent} 路`),
              h(EP.ElDescriptionsItem, { label: '每户每日上限' }, () => String(cv.daily_cap)),
              h(EP.ElDescriptionsItem, { label: '重拨' }, () => `无人接听 ${Math.round(cv.retry.no_answer.delay_ms / 60000)} 分钟后，最多 ${cv.retry.no_answer.max_attempts} 次；占线 ${Math.round(cv.retry.busy.delay_ms / 60000)} 分钟后，最多 ${cv.retry.busy.max_attempts} 次`),
              h(EP.ElDescriptionsItem, { label: '退订键' }, () => cv.optout_key || '不设'),
              h(EP.ElDescriptionsItem, { label: '启动时间' }, () => cst(cv.launched_at) || '—'),
            ]),
            h('div', { style: 'margin-top:10px' }, (cv.script.questions || []).map((q) => h('div', { class: 'row' }, [
              h('b', null, q.id + '：'), promptPlayer(q.prompt), ` 有效键 ${q.keys}` + (q.risk_keys ? `，风险键 ${q.risk_keys}` : '') +
                (q.next && Object.keys(q.next).length ? '，分支 ' + Object.entries(q.next).map(([k, v]) => k + '→' + (v === 'end' ? '结束' : v)).join(' ') : ''),
            ]))),
          ],
        }),
        h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '最新答复', default: () =>
          h(EP.ElTable, { data: answers.value, size: 'small', emptyText: '还没有结束的通话', id: 'answers', rowKey: 'attempt_id' }, () => [
            h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.ended_at) }),
            h(EP.ElTableColumn, { label: '监测户', width: 90 }, { default: ({ row }) => String(row.household_id) }),
            h(EP.ElTableColumn, { label: '号码', width: 130 }, { default: ({ row }) => row.phone_masked }),
            h(EP.ElTableColumn, { label: '结果', width: 100 }, { default: ({ row }) => h(EP.ElTag, { type: OUTCOME_TYPE[row.outcome] || 'info', size: 'small' }, () => OUTCOME[row.outcome] || row.outcome) }),
            h(EP.ElTableColumn, { label: '答复', minWidth: 200 }, { default: ({ row }) => h('span', { class: 'answer' }, answerText(row)) }),
            h(EP.ElTableColumn, { label: '风险', width: 120 }, { default: ({ row }) => (row.risk.length ? h(EP.ElTag, { type: 'danger', size: 'small' }, () => row.risk.join(' ')) : '') }),
          ]) }),
        h(EP.ElCard, { shadow: 'never' }, { header: () => '呼叫结果', default: () => [
          h('div', { style: 'display:flex;gap:8px;margin-bottom:8px;flex-wrap:wrap;align-items:center' }, [
            h(EP.ElSelect, { modelValue: filter.state, 'onUpdate:modelValue': (v) => { filter.state = v; page.value = 1; loadResults(); }, placeholder: '状态', clearable: true, style: 'width:160px', id: 'rf-state' }, () => options(TSTATE)),
            h(EP.ElSelect, { modelValue: filter.outcome, 'onUpdate:modelValue': (v) => { filter.outcome = v; page.value = 1; loadResults(); }, placeholder: '最后结果', clearable: true, style: 'width:140px', id: 'rf-outcome' }, () => options(OUTCOME)),
            h(EP.ElInput, { modelValue: filter.region, 'onUpdate:modelValue': (v) => { filter.region = v; }, placeholder: '区域代码', style: 'width:130px', clearable: true,
              onChange: () => { page.value = 1; loadResults(); } }),
            h(EP.ElCheckbox, { modelValue: filter.risk, 'onUpdate:modelValue': (v) => { filter.risk = v; page.value = 1; loadResults(); }, id: 'rf-risk', class: 'rf-risk' }, () => '仅风险答复'),
            h('span', { style: 'flex:1' }),
            h('a', { href: exportHref('csv'), id: 'export-csv', class: 'el-button el-button--small', download: '' }, '导出 CSV'),
            h('a', { href: exportHref('xlsx'), id: 'export-xlsx', class: 'el-button el-button--small el-button--success', download: '' }, '导出 Excel'),
          ]),
          h(EP.ElTable, { data: results.value.rows, size: 'small', emptyText: '没有符合条件的对象', id: 'results', 'data-total': String(results.value.total) }, () => [
            h(EP.ElTableColumn, { label: '监测户', width: 90 }, { default: ({ row }) => String(row.household_id) }),
            h(EP.ElTableColumn, { label: '区域', width: 120 }, { default: ({ row }) => row.region_code }),
            h(EP.ElTableColumn, { label: '状态', width: 150 }, { default: ({ row }) => TSTATE[row.state] || row.state }),
            h(EP.ElTableColumn, { label: '次数', width: 60 }, { default: ({ row }) => String(row.attempts) }),
            h(EP.ElTableColumn, { label: '最后结果', width: 100 }, { default: ({ row }) => OUTCOME[row.last_outcome] || row.last_outcome || '—' }),
            ...results.value.questions.map((q) => h(EP.ElTableColumn, { label: q, width: 90 }, { default: ({ row }) => (row.answers || {})[q] || '' })),
            h(EP.ElTableColumn, { label: '风险', minWidth: 100 }, { default: ({ row }) => row.risk.join(' ') }),
          ]),
          h(EP.ElPagination, { total: results.value.total, pageSize: 20, currentPage: page.value, layout: 'total, prev, pager, next', small: true, style: 'margin-top:8px',
            'onUpdate:currentPage': (v) => { page.value = v; loadResults(); } }),
        ] }),
      ])));
    };
  },
};
