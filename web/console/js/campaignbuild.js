// 新建外呼任务: whom to call (a target query, counted live as it is edited), what to ask (questions with their
// recorded prompts, valid keys, branches and risk keys, the opt-out key), when and how fast (calling windows, caps,
// pace, retries) — every rule starts from the server's defaults. Saving makes a draft; it is launched from its page.
import { h, ref, reactive, onMounted, EP, api, model, toast, APIError, Frame, options, debounce, MONITORING, HH_STATUS } from './lib.js';
import { PURPOSE, PromptUpload, promptPlayer } from './campaigns.js';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#'];
const DAYS = [[1, '周一'], [2, '周二'], [3, '周三'], [4, '周四'], [5, '周五'], [6, '周六'], [0, '周日']];
const RETRY = { no_answer: '无人接听', busy: '占线', failed: '呼叫失败' };

// fieldText names the fields the server refused, in Chinese where it knows them.
function fieldText(e) {
  const f = e instanceof APIError && e.body && e.body.fields;
  if (!f) return e instanceof APIError ? (e.body && e.body.message) || ('请求失败（' + e.status + '）') : '网络错误，请稍后重试';
  const name = (k) => k.replace(/^script\.questions\[(\d+)\]\.?/, (m, i) => '第' + (Number(i) + 1) + '题 ')
    .replace('prompt', '录音').replace('risk_keys', '风险按键').replace('keys', '有效按键').replace('next', '分支').replace(/^id$/, '编号')
    .replace('caller_id', '主叫号码').replace('name', '任务名称').replace('optout_key', '退订键').replace('windows.spans', '呼叫时段')
    .replace('target_query.region_prefix', '区域代码').replace('script.final', '结束语').replace('script.questions', '题目')
    .replace('max_concurrent', '最大并发').replace('pace', '呼叫速率').replace('daily_cap', '每日上限').replace('ring_timeout_ms', '振铃时长');
  return Object.entries(f).map(([k, v]) => name(k) + '：' + v).join('；');
}

export const CampaignBuildPage = {
  setup() {
    const f = reactive({
      name: '', purpose: 'checkin', caller_id: '', optout_key: '9',
      target: { region_prefix: '', monitoring_types: [], risk_types: [], statuses: [], min_days_since_contact: 0, limit: 0 },
      questions: [{ id: 'q1', prompt: '', keys: '12', risk_keys: '', next: {} }], final: '', silence_s: 5,
      spans: [], days: [], call_on_holidays: false,
      max_concurrent: 30, pace: 5, daily_cap: 3, ring_timeout_s: 30,
      retry: { no_answer: { delay_min: 120, max_attempts: 3 }, busy: { delay_min: 10, max_attempts: 4 }, failed: { delay_min: 30, max_attempts: 2 } },
    });
    const prompts = ref([]);
    const meta = ref({ risk_types: [] });
    const count = ref(null);
    const countErr = ref('');
    const busy = ref(false);
    const loadPrompts = async () => { prompts.value = (await api('GET', '/api/v1/campaign-prompts')).prompts || []; };
    onMounted(async () => {
      try {
        const d = await api('GET', '/api/v1/campaigns/defaults');
        f.spans = d.windows.spans.map((s) => ({ ...s }));
        f.days = (d.windows.days || []).slice();
        f.call_on_holidays = !!d.windows.call_on_holidays;
        Object.assign(f, { max_concurrent: d.max_concurrent, pace: d.pace, daily_cap: d.daily_cap, ring_timeout_s: d.ring_timeout_ms / 1000,
          optout_key: d.optout_key || '', silence_s: (d.script.silence_ms || 5000) / 1000 });
        for (const k of Object.keys(RETRY)) f.retry[k] = { delay_min: Math.round(d.retry[k].delay_ms / 60000), max_attempts: d.retry[k].max_attempts };
        await loadPrompts();
        meta.value = await api('GET', '/api/v1/households/meta');
      } catch (e) { EP.ElMessage({ message: '无法加载默认设置：' + fieldText(e), type: 'error' }); }
      recount();
    });

    const targetQuery = () => ({ region_prefix: f.target.region_prefix.trim(), monitoring_types: f.target.monitoring_types, risk_types: f.target.risk_types,
      statuses: f.target.statuses, min_days_since_contact: Number(f.target.min_days_since_contact) || 0, limit: Number(f.target.limit) || 0 });
    let seq = 0;
    const recount = debounce(async () => {
      const my = ++seq;
      try {
        const c = await api('POST', '/api/v1/campaigns/target-count', { purpose: f.purpose, target_query: targetQuery() });
        if (my === seq) { count.value = c; countErr.value = ''; }
      } catch (e) { if (my === seq) { count.value = null; countErr.value = fieldText(e); } }
    }, 350);
    Vue.watch(() => [JSON.stringify(f.target), f.purpose], recount);

    // An uploaded prompt goes into the first question without one (or the closing words if all have one).
    const uploaded = async (p) => {
      await loadPrompts();
      const q = f.questions.find((x) => !x.prompt);
      if (q) q.prompt = p.name; else if (!f.final) f.final = p.name;
    };
    const addQuestion = () => {
      let i = f.questions.length + 1;
      while (f.questions.some((q) => q.id === 'q' + i)) i++;
      f.questions.push({ id: 'q' + i, prompt: '', keys: '12', risk_keys: '', next: {} });
    };
    const body = () => ({
      name: f.name, purpose: f.purpose, caller_id: f.caller_id.trim(), optout_key: f.optout_key, target_query: targetQuery(),
      script: { questions: f.questions.map((q) => ({ id: q.id.trim(), prompt: q.prompt, keys: q.keys, risk_keys: q.risk_keys || undefined,
        next: Object.fromEntries(Object.entries(q.next).filter(([k, v]) => v && q.keys.includes(k))) })),
      final: f.final || undefined, silence_ms: Math.round(Number(f.silence_s) * 1000) },
      windows: { spans: f.spans.map((s) => ({ start: s.start.trim(), end: s.end.trim() })), days: f.days.length === 7 ? [] : f.days, call_on_holidays: f.call_on_holidays },
      max_concurrent: Number(f.max_concurrent), pace: Number(f.pace), daily_cap: Number(f.daily_cap), ring_timeout_ms: Math.round(Number(f.ring_timeout_s) * 1000),
      retry: Object.fromEntries(Object.keys(RETRY).map((k) => [k, { delay_ms: Math.round(Number(f.retry[k].delay_min) * 60000), max_attempts: Number(f.retry[k].max_attempts) }])),
    });
    const save = async () => {
      busy.value = true;
      try {
        const c = await api('POST', '/api/v1/campaigns', body());
        toast('任务已保存为草稿');
        location.assign('/campaigns/' + c.id);
      } catch (e) {
        EP.ElMessageBox.alert(fieldText(e), '任务未保存', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };

    const num = (obj, key, extra) => h(EP.ElInputNumber, { ...model(obj, key), controlsPosition: 'right', size: 'small', ...extra });
    const promptSelect = (obj, key, id) => h(EP.ElSelect, model(obj, key, { id, placeholder: '选择录音', clearable: true, filterable: true, style: 'width:220px', size: 'small' }),
      () => prompts.value.map((p) => h(EP.ElOption, { key: p.name, value: p.name, label: p.name + (p.builtin ? '（内置）' : '') })));
    const keyBoxes = (q, key, allowed, cls) => h(EP.ElCheckboxGroup, { modelValue: q[key].split(''), size: 'small', class: cls,
      'onUpdate:modelValue': (v) => { q[key] = KEYS.filter((k) => v.includes(k)).join(''); } },
    () => allowed.map((k) => h(EP.ElCheckboxButton, { key: k, value: k, label: k, disabled: key === 'keys' && k === f.optout_key }, () => k)));

    const questionCard = (q, i) => h(EP.ElCard, { shadow: 'never', class: 'question', 'data-question': q.id, style: 'margin-bottom:8px' }, () => [
      h('div', { style: 'display:flex;gap:8px;align-items:center;flex-wrap:wrap' }, [
        h('b', null, '第' + (i + 1) + '题'),
        h(EP.ElInput, model(q, 'id', { size: 'small', style: 'width:110px', placeholder: '编号', id: 'q-id-' + i })),
        promptSelect(q, 'prompt', 'q-prompt-' + i),
        promptPlayer(q.prompt, 'q-audio-' + i),
        f.questions.length > 1 ? h(EP.ElButton, { size: 'small', link: true, type: 'danger', onClick: () => f.questions.splice(i, 1) }, () => '删除') : null,
      ]),
      h('div', { class: 'row' }, [h('span', { class: 'lbl' }, '有效按键'), keyBoxes(q, 'keys', KEYS, 'q-keys')]),
      h('div', { class: 'row' }, [h('span', { class: 'lbl' }, '风险按键'), q.keys ? keyBoxes(q, 'risk_keys', q.keys.split(''), 'q-risk') : h('span', { class: 'muted' }, '先选有效按键'),
        h('span', { class: 'muted' }, ' 按下即视为风险信号，自动生成防返贫监测核实工单')]),
      h('div', { class: 'row' }, [h('span', { class: 'lbl' }, '分支'), ...q.keys.split('').map((k) => h('span', { style: 'margin-right:10px' }, [
        '按 ' + k + ' → ',
        h(EP.ElSelect, { modelValue: q.next[k] || '', 'onUpdate:modelValue': (v) => { q.next[k] = v; }, size: 'small', style: 'width:120px' }, () => [
          h(EP.ElOption, { value: '', label: '下一题' }),
          ...f.questions.filter((x) => x !== q).map((x) => h(EP.ElOption, { key: x.id, value: x.id, label: '跳到 ' + x.id })),
          h(EP.ElOption, { value: 'end', label: '结束' }),
        ]),
      ]))]),
    ]);

    const countView = () => {
      if (countErr.value) return h(EP.ElAlert, { type: 'warning', closable: false, title: countErr.value });
      if (!count.value) return h('span', { class: 'muted' }, '正在统计…');
      const c = count.value;
      return h('div', { id: 'target-count', 'data-count': String(c.targets) }, [
        h('span', { class: 'big', style: 'font-size:22px;font-weight:600;color:#409eff' }, String(c.targets)),
        ' 户将被呼叫', h('span', { class: 'muted' }, `（匹配 ${c.matched} 户，其中 ${c.opted_out} 户在免打扰名单中）`),
      ]);
    };

    return () => h(Frame, { active: '/campaigns' }, () => h('div', { id: 'campaign-build' }, [
      h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '基本信息', default: () => h(EP.ElForm, { labelWidth: '100px', inline: true }, () => [
        h(EP.ElFormItem, { label: '任务名称' }, () => h(EP.ElInput, model(f, 'name', { id: 'cb-name', style: 'width:320px', placeholder: '如：益阳市监测户收入变化电话排查' }))),
        h(EP.ElFormItem, { label: '用途' }, () => h(EP.ElSelect, model(f, 'purpose', { id: 'cb-purpose', style: 'width:140px' }), () => options({ checkin: PURPOSE.checkin, notice: PURPOSE.notice }))),
        h(EP.ElFormItem, { label: '主叫号码' }, () => h(EP.ElInput, model(f, 'caller_id', { id: 'cb-caller', style: 'width:160px', placeholder: '如 073112317' }))),
      ]) }),
      h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '呼叫对象（启动时按条件锁定名单）', default: () => [
        h(EP.ElForm, { labelWidth: '100px', inline: true }, () => [
          h(EP.ElFormItem, { label: '区域代码' }, () => h(EP.ElInput, model(f.target, 'region_prefix', { id: 'cb-region', style: 'width:160px', placeholder: '如 4309（益阳市）', clearable: true }))),
          h(EP.ElFormItem, { label: '监测类型' }, () => h(EP.ElSelect, model(f.target, 'monitoring_types', { multiple: true, clearable: true, style: 'width:260px', placeholder: '全部' }), () => options(MONITORING))),
          h(EP.ElFormItem, { label: '风险类型' }, () => h(EP.ElSelect, model(f.target, 'risk_types', { multiple: true, clearable: true, style: 'width:260px', placeholder: '全部' }), () => options(meta.value.risk_types || []))),
          h(EP.ElFormItem, { label: '监测状态' }, () => h(EP.ElSelect, model(f.target, 'statuses', { multiple: true, clearable: true, style: 'width:260px', placeholder: '全部' }), () => options(HH_STATUS))),
          h(EP.ElFormItem, { label: '未联系天数≥' }, () => num(f.target, 'min_days_since_contact', { min: 0, max: 3650, id: 'cb-days' })),
          h(EP.ElFormItem, { label: '最多户数' }, () => num(f.target, 'limit', { min: 0, max: 1000000, id: 'cb-limit' })),
        ]),
        countView(),
      ] }),
      h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '话术脚本', default: () => [
        h('div', { style: 'margin-bottom:10px' }, h(PromptUpload, { onDone: uploaded })),
        ...f.questions.map(questionCard),
        h(EP.ElButton, { size: 'small', onClick: addQuestion, id: 'cb-add-question' }, () => '添加题目'),
        h(EP.ElForm, { labelWidth: '100px', inline: true, style: 'margin-top:10px' }, () => [
          h(EP.ElFormItem, { label: '结束语' }, () => [promptSelect(f, 'final', 'cb-final'), promptPlayer(f.final, 'cb-final-audio')]),
          h(EP.ElFormItem, { label: '退订键' }, () => h(EP.ElSelect, model(f, 'optout_key', { id: 'cb-optout', style: 'width:110px', size: 'small' }),
            () => [h(EP.ElOption, { value: '', label: '不设' }), ...KEYS.map((k) => h(EP.ElOption, { key: k, value: k, label: '按 ' + k }))])),
          h(EP.ElFormItem, { label: '等待按键(秒)' }, () => num(f, 'silence_s', { min: 1, max: 60 })),
        ]),
      ] }),
      h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '呼叫时段、频率与重拨（已填入默认值）', default: () => [
        h('div', { class: 'row' }, [h('span', { class: 'lbl' }, '呼叫时段'), ...f.spans.map((s, i) => h('span', { style: 'margin-right:12px' }, [
          h(EP.ElInput, model(s, 'start', { size: 'small', style: 'width:70px', id: `cb-span-${i}-start` })), ' – ',
          h(EP.ElInput, model(s, 'end', { size: 'small', style: 'width:70px', id: `cb-span-${i}-end` })),
          f.spans.length > 1 ? h(EP.ElButton, { size: 'small', link: true, onClick: () => f.spans.splice(i, 1), class: 'span-remove' }, () => '×') : null,
        ])), h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => f.spans.push({ start: '09:00', end: '12:00' }) }, () => '添加时段'),
        h('span', { class: 'muted' }, '北京时间')]),
        h('div', { class: 'row' }, [h('span', { class: 'lbl' }, '星期'), h(EP.ElCheckboxGroup, { modelValue: f.days.length ? f.days : DAYS.map((d) => d[0]), size: 'small',
          'onUpdate:modelValue': (v) => { f.days = v; } }, () => DAYS.map(([v, l]) => h(EP.ElCheckbox, { key: v, value: v, label: l }, () => l))),
        h(EP.ElSwitch, { ...model(f, 'call_on_holidays'), id: 'cb-holidays', activeText: '法定节假日也呼叫', style: 'margin-left:16px' })]),
        h(EP.ElForm, { labelWidth: '110px', inline: true, style: 'margin-top:8px' }, () => [
          h(EP.ElFormItem, { label: '最大并发' }, () => num(f, 'max_concurrent', { min: 1, max: 10000, id: 'cb-concurrent' })),
          h(EP.ElFormItem, { label: '速率(次/秒)' }, () => num(f, 'pace', { min: 0.01, max: 2000, step: 0.5, precision: 2, id: 'cb-pace' })),
          h(EP.ElFormItem, { label: '每户每日上限' }, () => num(f, 'daily_cap', { min: 1, max: 20, id: 'cb-daily' })),
          h(EP.ElFormItem, { label: '振铃时长(秒)' }, () => num(f, 'ring_timeout_s', { min: 1, max: 120, id: 'cb-ring' })),
        ]),
        h(EP.ElTable, { data: Object.keys(RETRY), size: 'small', style: 'max-width:560px', id: 'cb-retry' }, () => [
          h(EP.ElTableColumn, { label: '结果', width: 110 }, { default: ({ row }) => RETRY[row] }),
          h(EP.ElTableColumn, { label: '间隔(分钟)', width: 190 }, { default: ({ row }) => num(f.retry[row], 'delay_min', { min: 0, max: 10080 }) }),
          h(EP.ElTableColumn, { label: '最多拨打次数', width: 190 }, { default: ({ row }) => num(f.retry[row], 'max_attempts', { min: 1, max: 20 }) }),
        ]),
      ] }),
      h('div', { style: 'display:flex;gap:8px' }, [
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save, id: 'cb-save' }, () => '保存为草稿'),
        h(EP.ElButton, { onClick: () => location.assign('/campaigns') }, () => '返回列表'),
      ]),
    ]));
  },
};
