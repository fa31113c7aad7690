// 答复模板 (常用答复): the desk, unit heads, supervisors and admins keep the templates (on the knowledge-base page);
// everyone who replies picks one in the ticket's action dialog, and the server fills its placeholders from the
// ticket (as this user may see it), so a confidential caller's name stays out of a clerk's reply.
import { h, ref, reactive, onMounted, EP, api, session, model, toast, errorText, APIError, cst, categories } from './lib.js';

// The roles the API lets write templates (kb.authorizeTemplates); the page only hides what the server would refuse.
export const mayEditTemplates = () => ['admin', 'supervisor', 'dispatcher', 'head'].includes((session.user || {}).role);

// templateError says a refused save or render in plain Chinese (the server names the field and, for the body,
// the unknown placeholder).
export function templateError(e) {
  if (e instanceof APIError && e.status === 404) return '模板已停用或被删除，或您无权查看该工单，请刷新后重试。';
  if (e instanceof APIError && e.body && e.body.fields) {
    const f = e.body.fields;
    const out = [];
    if (f.name) out.push(/same|this name/.test(f.name) ? '该类别下已有同名模板' : '模板名称须为 1 至 100 个字');
    if (f.category) out.push('类别不存在');
    if (f.body) {
      const unknown = String(f.body).match(/unknown placeholder (\{[a-z_]+\})/);
      out.push(unknown ? `模板内容含有不支持的占位符 ${unknown[1]}` : '模板内容须为 1 至 5000 个字');
    }
    if (out.length) return out.join('；');
  }
  return errorText(e);
}

// TemplatePicker: a filterable list of the templates for the ticket's category (and the general ones); choosing
// one renders it for the ticket and puts the text into target[field], asking first if something is typed there.
export const TemplatePicker = {
  props: { ticketId: Number, category: String, target: Object, field: String },
  setup(props) {
    const st = reactive({ list: [], loaded: false, error: '', busy: false, pick: null });
    onMounted(async () => {
      try {
        const j = await api('GET', '/api/v1/reply-templates?category=' + encodeURIComponent(props.category || ''));
        st.list = j.templates || [];
      } catch (e) { st.error = '答复模板加载失败：' + errorText(e); }
      st.loaded = true;
    });
    const choose = async (id) => {
      st.pick = id;
      if (!id) return;
      st.busy = true;
      try {
        const j = await api('POST', `/api/v1/reply-templates/${id}/render`, { ticket_id: props.ticketId });
        const typed = (props.target[props.field] || '').trim();
        if (typed && typed !== j.text.trim()) {
          try {
            await EP.ElMessageBox.confirm('答复框中已有内容，用模板替换吗？替换后原内容不保留。', '替换答复内容',
              { confirmButtonText: '替换', cancelButtonText: '保留原内容', type: 'warning' });
          } catch { return; }
        }
        props.target[props.field] = j.text;
      } catch (e) {
        EP.ElMessage({ message: '插入模板未成功：' + templateError(e), type: 'error', duration: 6000 });
      } finally {
        st.busy = false;
        st.pick = null;
      }
    };
    return () => {
      if (st.error) return h('div', { class: 'muted', id: 'tpl-error' }, st.error);
      if (st.loaded && st.list.length === 0) return h('div', { class: 'muted', id: 'tpl-none' }, '暂无适用于本类别的答复模板。');
      return h(EP.ElSelect, {
        modelValue: st.pick, 'onUpdate:modelValue': choose, id: 'tpl-pick', class: 'tpl-pick', filterable: true, clearable: true,
        loading: !st.loaded || st.busy, placeholder: '插入模板：选择常用答复（可输入名称筛选）', style: 'width:100%',
      }, () => st.list.map((t) => h(EP.ElOption, { key: t.id, value: t.id, label: t.name }, () => [
        h('span', { class: 'tpl-option', 'data-template': t.id }, t.name), h('span', { class: 'muted', style: 'float:right;font-size:12px' }, t.category ? '本类别' : '通用'),
      ])));
    };
  },
};

// ReplyTemplatesPane: the 答复模板 tab of the knowledge-base page. Editors create and change templates (with the
// placeholders the server fills listed as help); other roles read them.
export const ReplyTemplatesPane = {
  setup() {
    const st = reactive({ list: [], placeholders: {}, category: '', error: '' });
    const cats = ref([]);
    const ed = reactive({ open: false, id: 0, name: '', category: '', body: '', active: true, busy: false, fields: {} });
    const catName = (code) => (cats.value.find((c) => c.code === code) || {}).name || code;
    const load = async () => {
      try {
        const j = await api('GET', '/api/v1/reply-templates?category=' + encodeURIComponent(st.category || ''));
        st.list = j.templates || [];
        st.placeholders = j.placeholders || {};
        st.error = '';
      } catch (e) { st.error = '答复模板加载失败：' + errorText(e); }
    };
    onMounted(() => { load(); categories().then((c) => { cats.value = c; }).catch(() => {}); });
    const edit = (t) => {
      Object.assign(ed, { open: true, id: t ? t.id : 0, name: t ? t.name : '', category: t ? t.category : '', body: t ? t.body : '',
        active: t ? t.active : true, fields: {} });
    };
    const insert = (p) => { ed.body = (ed.body || '') + p; ed.fields.body = ''; };
    // A field's error goes once the field is changed.
    const bind = (k, extra) => ({ ...model(ed, k, extra), 'onUpdate:modelValue': (v) => { ed[k] = v; ed.fields[k] = ''; } });
    const save = async () => {
      if (ed.id && !ed.active) {
        // The list shows active templates only, so a stopped one cannot be turned back on from this page.
        try {
          await EP.ElMessageBox.confirm('停用后该模板不再出现在模板列表和答复时的选择中，且无法在本页面恢复。确定停用吗？', '停用答复模板',
            { confirmButtonText: '停用', cancelButtonText: '取消', type: 'warning' });
        } catch { return; }
      }
      ed.busy = true;
      ed.fields = {};
      const body = { name: ed.name, category: ed.category || '', body: ed.body, active: ed.active };
      try {
        if (ed.id) await api('PUT', `/api/v1/reply-templates/${ed.id}`, body);
        else await api('POST', '/api/v1/reply-templates', body);
        ed.open = false;
        toast(ed.active ? '答复模板已保存' : '答复模板已停用');
        await load();
      } catch (e) {
        const f = (e instanceof APIError && e.body && e.body.fields) || {};
        ed.fields = { name: f.name ? templateError(new APIError(400, { fields: { name: f.name } })) : '',
          category: f.category ? '类别不存在' : '', body: f.body ? templateError(new APIError(400, { fields: { body: f.body } })) : '' };
        EP.ElMessage({ message: '保存未成功：' + templateError(e), type: 'error', duration: 6000 });
      } finally { ed.busy = false; }
    };
    const editable = mayEditTemplates();
    return () => [
      h('div', { style: 'display:flex;gap:8px;align-items:center;margin-bottom:8px' }, [
        h(EP.ElSelect, { ...model(st, 'category', { clearable: true, filterable: true, placeholder: '全部类别', style: 'width:240px', id: 'tpl-filter' }),
          onChange: load }, () => cats.value.map((c) => h(EP.ElOption, { key: c.code, value: c.code, label: c.name }))),
        h('span', { class: 'muted' }, editable ? '选择类别时也列出通用模板。' : '承办人在办结答复、阶段性答复时可直接选用；如需新增或修改请联系热线中心。'),
        h('span', { style: 'flex:1' }),
        editable ? h(EP.ElButton, { type: 'primary', onClick: () => edit(null), id: 'tpl-new' }, () => '新建模板') : null,
      ]),
      st.error ? h('p', { class: 'muted' }, st.error) : h(EP.ElTable, { data: st.list, size: 'small', id: 'tpl-list', emptyText: '暂无答复模板' }, () => [
        h(EP.ElTableColumn, { prop: 'name', label: '名称', width: 180 }, { default: ({ row }) => h('span', { class: 'tpl-name', 'data-template': row.id }, row.name) }),
        h(EP.ElTableColumn, { label: '类别', width: 140 }, { default: ({ row }) => row.category ? catName(row.category) : h(EP.ElTag, { size: 'small', type: 'info' }, () => '通用') }),
        h(EP.ElTableColumn, { label: '内容' }, { default: ({ row }) => h('div', { style: 'white-space:pre-wrap' }, row.body) }),
        h(EP.ElTableColumn, { label: '更新时间', width: 150 }, { default: ({ row }) => cst(row.updated_at) }),
        editable ? h(EP.ElTableColumn, { label: '', width: 80 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', onClick: () => edit(row), class: 'tpl-edit', 'data-template': row.id }, () => '修改') }) : null,
      ]),
      h(EP.ElDialog, { modelValue: ed.open, 'onUpdate:modelValue': (v) => { ed.open = v; }, title: ed.id ? '修改答复模板' : '新建答复模板', width: '640px', id: 'tpl-dialog' }, {
        default: () => h(EP.ElForm, { labelPosition: 'top' }, () => [
          h(EP.ElFormItem, { label: '名称', error: ed.fields.name }, () => h(EP.ElInput, bind('name', { id: 'tpl-name', maxlength: 100 }))),
          h(EP.ElFormItem, { label: '适用类别（不选则所有类别通用）', error: ed.fields.category }, () => h(EP.ElSelect,
            bind('category', { id: 'tpl-category', clearable: true, filterable: true, placeholder: '通用', style: 'width:100%' }),
            () => cats.value.map((c) => h(EP.ElOption, { key: c.code, value: c.code, label: c.name })))),
          h(EP.ElFormItem, { label: '模板内容', error: ed.fields.body }, () => h(EP.ElInput, bind('body', { type: 'textarea', rows: 8, maxlength: 5000, id: 'tpl-body' }))),
          h('div', { class: 'muted', id: 'tpl-placeholders' }, [
            h('div', { style: 'margin-bottom:4px' }, '可用占位符（点击插入到末尾，选用模板时按工单内容自动填写）：'),
            ...Object.entries(st.placeholders).sort().map(([p, d]) => h(EP.ElTag, { key: p, size: 'small', effect: 'plain', style: 'margin:0 6px 6px 0;cursor:pointer',
              onClick: () => insert(p), class: 'tpl-ph', 'data-ph': p }, () => `${p} ${d}`)),
          ]),
          ed.id ? h(EP.ElFormItem, { label: '启用' }, () => h(EP.ElSwitch, model(ed, 'active', { id: 'tpl-active', activeText: '启用', inactiveText: '停用（不再出现在选择列表）' }))) : null,
        ]),
        footer: () => [h(EP.ElButton, { onClick: () => { ed.open = false; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: ed.busy, onClick: save, id: 'tpl-save' }, () => '保存')],
      }),
    ];
  },
};
