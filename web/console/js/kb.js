// 知识库: agents search policy answers while on a call (words of the title, tags or text, in Chinese); the owner
// division (and admins) write a new version, and every version stays readable with who changed what.
import { h, reactive, onMounted, EP, api, session, model, toast, errorText, APIError, Frame, cst, debounce, units } from './lib.js';
import { ReplyTemplatesPane } from './replytpl.js';

export const KBPage = {
  setup() {
    const st = reactive({ q: '', list: [], current: null, versions: [], error: '', busy: false,
      // 答复模板 sit in a tab of their own (/kb?tab=templates opens it).
      tab: new URLSearchParams(location.search).get('tab') === 'templates' ? 'templates' : 'kb' });
    const ed = reactive({ open: false, id: 0, version: 0, title: '', body: '', tags: '', note: '', busy: false, fields: {} });
    const search = async () => {
      try {
        const j = await api('GET', '/api/v1/kb/articles?q=' + encodeURIComponent(st.q.trim()));
        st.list = j.articles || [];
        st.error = '';
      } catch (e) { st.error = errorText(e); }
    };
    const later = debounce(search, 250);
    const open = async (id) => {
      try {
        const [a, v] = await Promise.all([api('GET', `/api/v1/kb/articles/${id}`), api('GET', `/api/v1/kb/articles/${id}/versions`)]);
        st.current = a;
        st.versions = v.versions || [];
      } catch (e) { toast(errorText(e), 'error'); }
    };
    const mine = reactive({ division: false });
    onMounted(() => { search(); units().then((us) => { const x = us.get(u().unitId); mine.division = !!x && x.kind === 'division'; }).catch(() => {}); });
    const u = () => session.user || {};
    // The provincial divisions keep their own articles; admins all (the API decides; this only hides what it would refuse).
    const mayWrite = (a) => u().role === 'admin' || ((u().role === 'staff' || u().role === 'head') && mine.division && (!a || a.owner_unit_id === u().unitId));
    const edit = (a) => {
      Object.assign(ed, { open: true, id: a ? a.id : 0, version: a ? a.version : 0, title: a ? a.title : '', body: a ? a.body : '',
        tags: a ? (a.tags || []).join('、') : '', note: '', fields: {} });
    };
    const save = async () => {
      ed.busy = true;
      const body = { title: ed.title, body: ed.body, tags: ed.tags.split(/[、,，\s]+/).filter(Boolean), note: ed.note };
      try {
        const a = ed.id ? await api('PUT', `/api/v1/kb/articles/${ed.id}`, { ...body, version: ed.version })
          : await api('POST', '/api/v1/kb/articles', body);
        ed.open = false;
        toast(`已保存（第 ${a.version} 版）`);
        await search();
        await open(a.id);
      } catch (e) {
        ed.fields = (e instanceof APIError && e.body.fields) || {};
        EP.ElMessage({ message: e instanceof APIError && e.status === 409 ? '该条目已被他人修改，请重新打开后再编辑。' : errorText(e), type: 'error', duration: 6000 });
      } finally { ed.busy = false; }
    };
    return () => h(Frame, { active: '/kb' }, () => [
      h(EP.ElTabs, { ...model(st, 'tab'), id: 'kb-tabs' }, () => [
      h(EP.ElTabPane, { label: '政策知识', name: 'kb' }, () =>
      h(EP.ElRow, { gutter: 12 }, () => [
        h(EP.ElCol, { span: 9 }, () => h(EP.ElCard, { shadow: 'never', id: 'kb-search' }, {
          header: () => h('div', { style: 'display:flex;gap:8px' }, [
            h(EP.ElInput, { ...model(st, 'q', { placeholder: '搜索政策：雨露计划、小额信贷、监测标准…', clearable: true, id: 'kb-q' }), onInput: later }),
            mayWrite(null) ? h(EP.ElButton, { type: 'primary', onClick: () => edit(null), id: 'kb-new' }, () => '新建') : null,
          ]),
          default: () => st.error ? h('p', { class: 'muted' }, st.error) : st.list.length === 0 ? h('p', { class: 'muted' }, '没有找到。')
            : st.list.map((a) => h('div', { key: a.id, class: 'kb-hit', style: 'padding:6px 0;border-bottom:1px solid #eee;cursor:pointer', onClick: () => open(a.id), 'data-article': a.id }, [
              h('div', null, [h('strong', null, a.title), ' ', h('span', { class: 'muted' }, `${a.owner_unit} · 第 ${a.version} 版`)]),
              h('div', { class: 'muted', style: 'font-size:12px' }, a.snippet),
            ])),
        })),
        h(EP.ElCol, { span: 15 }, () => st.current ? [
          h(EP.ElCard, { shadow: 'never', id: 'kb-article' }, {
            header: () => h('div', { style: 'display:flex;align-items:center;gap:10px' }, [
              h('strong', null, st.current.title),
              h(EP.ElTag, { size: 'small' }, () => `第 ${st.current.version} 版`),
              st.current.status === 'retired' ? h(EP.ElTag, { size: 'small', type: 'info' }, () => '已停用') : null,
              h('span', { class: 'muted' }, `${st.current.owner_unit} · ${st.current.updater_name} · ${cst(st.current.updated_at)}`),
              mayWrite(st.current) ? h(EP.ElButton, { size: 'small', onClick: () => edit(st.current), id: 'kb-edit' }, () => '修改') : null,
            ]),
            default: () => [
              (st.current.tags || []).length ? h('div', { style: 'margin-bottom:8px' }, st.current.tags.map((t) => h(EP.ElTag, { key: t, size: 'small', effect: 'plain', style: 'margin-right:4px' }, () => t))) : null,
              h('div', { class: 'content-box', style: 'white-space:pre-wrap', id: 'kb-body' }, st.current.body),
            ],
          }),
          h(EP.ElCard, { shadow: 'never', id: 'kb-versions' }, {
            header: () => `版本记录（${st.versions.length}）`,
            default: () => h(EP.ElTimeline, null, () => st.versions.map((v) => h(EP.ElTimelineItem, { key: v.version, timestamp: cst(v.updated_at), placement: 'top' }, () => [
              h('div', null, [h('strong', null, `第 ${v.version} 版`), ' ', h('span', { class: 'muted' }, v.updater_name), v.note ? ' · ' + v.note : '']),
              h('details', null, [h('summary', null, v.title), h('div', { style: 'white-space:pre-wrap' }, v.body)]),
            ]))),
          }),
        ] : h(EP.ElEmpty, { description: '在左侧搜索并选择一条政策答复' })),
      ])),
      h(EP.ElTabPane, { label: '答复模板', name: 'templates', lazy: true }, () => h(ReplyTemplatesPane)),
      ]),
      h(EP.ElDialog, { modelValue: ed.open, 'onUpdate:modelValue': (v) => { ed.open = v; }, title: ed.id ? '修改知识条目' : '新建知识条目', width: '640px', id: 'kb-dialog' }, {
        default: () => h(EP.ElForm, { labelPosition: 'top' }, () => [
          h(EP.ElFormItem, { label: '标题', error: ed.fields.title }, () => h(EP.ElInput, model(ed, 'title', { id: 'kb-title' }))),
          h(EP.ElFormItem, { label: '标签（顿号分隔）', error: ed.fields.tags }, () => h(EP.ElInput, model(ed, 'tags'))),
          h(EP.ElFormItem, { label: '内容', error: ed.fields.body }, () => h(EP.ElInput, model(ed, 'body', { type: 'textarea', rows: 10, id: 'kb-text' }))),
          h(EP.ElFormItem, { label: '修改说明', error: ed.fields.note }, () => h(EP.ElInput, model(ed, 'note', { placeholder: '例如：2026年标准调整' }))),
        ]),
        footer: () => [h(EP.ElButton, { onClick: () => { ed.open = false; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: ed.busy, onClick: save, id: 'kb-save' }, () => '保存为新版本')],
      }),
    ]);
  },
};
