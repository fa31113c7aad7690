// 系统管理 (admins): users, the organisation tree, categories and their reply days, the routing directory with its
// history and a dry run, the admin audit log, and the security audit log (logins, reveals of personal data, exports,
// refusals). Every change is made by the server in one transaction with its
// audit row; this page only asks. Prompts (提示音) are managed on the campaign pages.
import { h, ref, reactive, onMounted, EP, api, apiUpload, toast, toastError, errorText, Frame, cst, model, options, KIND, categories } from './lib.js';

export const ROLE = { agent: '话务员', dispatcher: '派单员', staff: '承办人', head: '负责人', supervisor: '督办',
  campaign_manager: '外呼任务管理', admin: '系统管理员' };
const PERM = { reveal_pii: '查看完整个人信息', lookup_pii: '按完整号码查询', confidential: '查看举报人身份' };
const UNIT_KIND = { bureau: '省局', desk: '派单台', division: '处室', prefecture: '市州局', county: '县市区局' };
const ACTION = { 'user.create': '新建用户', 'user.update': '修改用户', 'user.password_reset': '重置密码', 'user.bootstrap': '初始管理员',
  'unit.create': '新增单位', 'unit.update': '修改单位', 'unit.delete': '删除单位', 'unit.reply_approval': '设置答复审核', 'sip_account.set': '设置坐席SIP账号',
  'routing_rule.create': '新增分派规则', 'routing_rule.update': '修改分派规则', 'category.save': '保存类别',
  'trunk.save': '保存中继', 'trunk.delete': '删除中继', 'holidays.upload': '上传节假日' };

// unitList loads every unit (active or not) for selects and the tree.
async function unitList() { return (await api('GET', '/api/v1/units')).units; }

// ---- users ----------------------------------------------------------------------------------------------------

const UsersPanel = {
  setup() {
    const rows = ref([]);
    const units = ref([]);
    const f = reactive({ q: '', role: '' });
    const edit = ref(null); // {mode: 'new'|'edit'|'password'|'sip', ...fields}
    const busy = ref(false);
    const unitName = (id) => (units.value.find((u) => u.id === id) || {}).short_name || (id ? '#' + id : '—');
    const load = async () => {
      const p = new URLSearchParams();
      if (f.q) p.set('q', f.q);
      if (f.role) p.set('role', f.role);
      try { rows.value = (await api('GET', '/api/v1/admin/users?' + p)).users; } catch (e) { toastError(e); }
    };
    onMounted(async () => {
      try { units.value = await unitList(); } catch (e) { toastError(e); }
      load();
    });
    const desk = () => (units.value.find((u) => u.code === 'desk') || {}).id || 0;
    const openNew = () => { edit.value = reactive({ mode: 'new', username: '', display_name: '', password: '', role: 'agent', unit_id: desk(), permissions: [] }); };
    const openEdit = (u) => { edit.value = reactive({ mode: 'edit', id: u.id, username: u.username, display_name: u.display_name, role: u.role, unit_id: u.unit_id || 0, permissions: [...(u.permissions || [])] }); };
    const openPassword = (u) => { edit.value = reactive({ mode: 'password', id: u.id, username: u.username, password: '' }); };
    const openSIP = (u) => { edit.value = reactive({ mode: 'sip', id: u.id, username: u.username, sip_user: u.username, password: '', skills: '' }); };
    const save = async () => {
      const e = edit.value;
      busy.value = true;
      try {
        if (e.mode === 'new') {
          await api('POST', '/api/v1/admin/users', { username: e.username.trim(), display_name: e.display_name.trim(), password: e.password,
            role: e.role, unit_id: e.unit_id || 0, permissions: e.permissions });
          toast('用户已创建：' + e.username);
        } else if (e.mode === 'edit') {
          await api('PUT', '/api/v1/admin/users/' + e.id, { display_name: e.display_name, role: e.role, unit_id: e.unit_id || 0, permissions: e.permissions });
          toast('已保存');
        } else if (e.mode === 'password') {
          await api('POST', `/api/v1/admin/users/${e.id}/password`, { password: e.password });
          toast('密码已重置，该用户的登录已全部退出');
        } else {
          await api('PUT', `/api/v1/admin/users/${e.id}/sip-account`, { sip_user: e.sip_user, password: e.password,
            skills: e.skills.split(/[,，\s]+/).filter(Boolean) });
          toast('SIP 账号已设置');
        }
        edit.value = null;
        load();
      } catch (err) { EP.ElMessageBox.alert(errorText(err), '未保存', { type: 'warning' }).catch(() => {}); } finally { busy.value = false; }
    };
    const toggle = async (u) => {
      const verb = u.active ? '停用' : '启用';
      try {
        await EP.ElMessageBox.confirm(`${verb}用户 ${u.display_name}（${u.username}）？` + (u.active ? '停用后其登录立即失效。' : ''), verb + '用户', { type: 'warning' });
      } catch (e) { return; }
      try { await api('PUT', '/api/v1/admin/users/' + u.id, { active: !u.active }); toast('已' + verb); load(); } catch (e) { toastError(e); }
    };
    const form = () => {
      const e = edit.value;
      if (!e) return null;
      const items = [];
      if (e.mode === 'new') {
        items.push(h(EP.ElFormItem, { label: '用户名' }, () => h(EP.ElInput, model(e, 'username', { id: 'nu-username', placeholder: '小写字母、数字、_ . -' }))));
      }
      if (e.mode === 'new' || e.mode === 'edit') {
        items.push(h(EP.ElFormItem, { label: '姓名' }, () => h(EP.ElInput, model(e, 'display_name', { id: 'nu-display' }))));
      }
      if (e.mode === 'new' || e.mode === 'password') {
        items.push(h(EP.ElFormItem, { label: e.mode === 'new' ? '初始密码' : '新密码' }, () => h(EP.ElInput, model(e, 'password', { id: 'nu-password', type: 'password', showPassword: true, autocomplete: 'new-password', placeholder: '至少 8 位，不含用户名' }))));
      }
      if (e.mode === 'new' || e.mode === 'edit') {
        items.push(h(EP.ElFormItem, { label: '角色' }, () => h(EP.ElSelect, model(e, 'role', { id: 'nu-role' }), () => options(ROLE))));
        items.push(h(EP.ElFormItem, { label: '所属单位' }, () => h(EP.ElSelect, model(e, 'unit_id', { id: 'nu-unit', filterable: true, style: 'width:100%' }),
          () => [h(EP.ElOption, { value: 0, label: '（无）' }), ...units.value.filter((u) => u.active).map((u) => h(EP.ElOption, { key: u.id, value: u.id, label: u.name }))])));
        items.push(h(EP.ElFormItem, { label: '附加权限' }, () => h(EP.ElCheckboxGroup, model(e, 'permissions'),
          () => Object.entries(PERM).map(([k, v]) => h(EP.ElCheckbox, { value: k, label: k }, () => v)))));
      }
      if (e.mode === 'sip') {
        items.push(h(EP.ElFormItem, { label: 'SIP 用户名' }, () => h(EP.ElInput, model(e, 'sip_user', { id: 'sip-user' }))));
        items.push(h(EP.ElFormItem, { label: 'SIP 密码' }, () => h(EP.ElInput, model(e, 'password', { id: 'sip-password', type: 'password', showPassword: true, autocomplete: 'new-password' }))));
        items.push(h(EP.ElFormItem, { label: '技能组' }, () => h(EP.ElInput, model(e, 'skills', { placeholder: '如 xiang（湘语坐席），逗号分隔' }))));
      }
      return h(EP.ElForm, { labelWidth: '90px' }, () => items);
    };
    const title = () => ({ new: '新建用户', edit: '修改用户', password: '重置密码', sip: '坐席 SIP 账号' }[edit.value ? edit.value.mode : 'new'] + (edit.value && edit.value.username ? ' · ' + edit.value.username : ''));
    return () => h('div', { id: 'users-panel' }, [
      h('div', { class: 'toolbar', style: 'display:flex;gap:8px;margin-bottom:10px' }, [
        h(EP.ElInput, model(f, 'q', { placeholder: '用户名或姓名', clearable: true, style: 'width:220px', id: 'user-q', onKeyup: (e) => { if (e.key === 'Enter') load(); } })),
        h(EP.ElSelect, model(f, 'role', { placeholder: '全部角色', clearable: true, style: 'width:150px', onChange: load }), () => options(ROLE)),
        h(EP.ElButton, { onClick: load }, () => '查询'),
        h(EP.ElButton, { type: 'primary', onClick: openNew, id: 'admin-new-user' }, () => '新建用户'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '没有用户', maxHeight: 520, id: 'user-list', rowKey: 'id', rowClassName: ({ row }) => 'user-' + row.username }, () => [
        h(EP.ElTableColumn, { label: '用户名', width: 130 }, { default: ({ row }) => row.username }),
        h(EP.ElTableColumn, { label: '姓名', width: 110 }, { default: ({ row }) => row.display_name }),
        h(EP.ElTableColumn, { label: '角色', width: 110 }, { default: ({ row }) => ROLE[row.role] || row.role }),
        h(EP.ElTableColumn, { label: '单位', minWidth: 150 }, { default: ({ row }) => unitName(row.unit_id) }),
        h(EP.ElTableColumn, { label: '附加权限', minWidth: 150 }, { default: ({ row }) => (row.permissions || []).map((p) => PERM[p] || p).join('、') || '—' }),
        h(EP.ElTableColumn, { label: '状态', width: 70 }, { default: ({ row }) => h(EP.ElTag, { size: 'small', type: row.active ? 'success' : 'info' }, () => (row.active ? '启用' : '停用')) }),
        h(EP.ElTableColumn, { label: '操作', width: 270 }, { default: ({ row }) => [
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => openEdit(row) }, () => '修改'),
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => openPassword(row), class: 'user-reset' }, () => '重置密码'),
          row.role === 'agent' ? h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => openSIP(row) }, () => 'SIP账号') : null,
          h(EP.ElButton, { size: 'small', link: true, type: row.active ? 'danger' : 'success', onClick: () => toggle(row), class: 'user-toggle' }, () => (row.active ? '停用' : '启用')),
        ] }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: title(), width: '520px', id: 'user-dialog' }, {
        default: form,
        footer: () => [h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save, id: 'user-save' }, () => '保存')],
      }),
    ]);
  },
};

// ---- units ----------------------------------------------------------------------------------------------------

const UnitsPanel = {
  setup() {
    const tree = ref([]);
    const edit = ref(null);
    const busy = ref(false);
    const load = async () => {
      try {
        const us = await unitList();
        const byId = new Map(us.map((u) => [u.id, { ...u, children: [] }]));
        const roots = [];
        for (const u of byId.values()) {
          const p = u.parent_id && byId.get(u.parent_id);
          if (p) p.children.push(u); else roots.push(u);
        }
        for (const u of byId.values()) if (!u.children.length) delete u.children;
        tree.value = roots;
      } catch (e) { toastError(e); }
    };
    onMounted(load);
    const childKind = (u) => ({ bureau: 'division', prefecture: 'county' }[u.kind] || 'division');
    const openAdd = (parent) => { edit.value = reactive({ mode: 'add', parent, code: '', name: '', short_name: '', kind: childKind(parent), region_code: '' }); };
    const openRename = (u) => { edit.value = reactive({ mode: 'rename', unit: u, name: u.name, short_name: u.short_name }); };
    const save = async () => {
      const e = edit.value;
      busy.value = true;
      try {
        if (e.mode === 'add') {
          await api('POST', '/api/v1/admin/units', { code: e.code.trim(), name: e.name.trim(), short_name: e.short_name.trim(), kind: e.kind,
            parent_id: e.parent.id, region_code: e.region_code.trim() });
          toast('单位已新增');
        } else {
          await api('PUT', '/api/v1/admin/units/' + e.unit.id, { name: e.name, short_name: e.short_name });
          toast('已改名');
        }
        edit.value = null;
        load();
      } catch (err) { EP.ElMessageBox.alert(errorText(err), '未保存', { type: 'warning' }).catch(() => {}); } finally { busy.value = false; }
    };
    const toggle = async (u) => {
      const verb = u.active ? '停用' : '启用';
      try { await EP.ElMessageBox.confirm(`${verb}单位 ${u.name}？` + (u.active ? '仍有未办结工单、在用人员或下级单位的单位不能停用。' : ''), verb + '单位', { type: 'warning' }); } catch (e) { return; }
      try { await api('PUT', '/api/v1/admin/units/' + u.id, { active: !u.active }); toast('已' + verb); load(); } catch (e) {
        EP.ElMessageBox.alert(e.status === 409 ? '不能停用：' + (e.body.message || '') : errorText(e), '未' + verb, { type: 'warning' }).catch(() => {});
      }
    };
    // 需审核答复: the unit's replies wait for its head's approval. Switched through the work order's own API, which
    // writes the admin audit row (unit.reply_approval).
    const setApproval = async (u, on) => {
      try {
        await api('PUT', `/api/v1/units/${u.id}/reply-approval`, { required: on });
        u.reply_approval = on;
        toast(on ? `${u.short_name || u.name}：答复需负责人审核` : `${u.short_name || u.name}：答复无需审核`);
      } catch (e) { toastError(e); load(); }
    };
    return () => h('div', { id: 'units-panel' }, [
      h('p', { class: 'muted' }, '单位只能停用，不能删除有工单的单位（其历史工单仍归属该单位）。改名后不会被组织机构初始化数据覆盖。'),
      h(EP.ElTable, { data: tree.value, size: 'small', rowKey: 'id', maxHeight: 560, id: 'unit-tree', defaultExpandAll: false }, () => [
        h(EP.ElTableColumn, { label: '单位', minWidth: 260 }, { default: ({ row }) => row.name }),
        h(EP.ElTableColumn, { label: '代码', width: 150 }, { default: ({ row }) => row.code }),
        h(EP.ElTableColumn, { label: '类型', width: 90 }, { default: ({ row }) => UNIT_KIND[row.kind] || row.kind }),
        h(EP.ElTableColumn, { label: '状态', width: 70 }, { default: ({ row }) => h(EP.ElTag, { size: 'small', type: row.active ? 'success' : 'info' }, () => (row.active ? '启用' : '停用')) }),
        h(EP.ElTableColumn, { label: '需审核答复', width: 100 }, { default: ({ row }) => (['division', 'prefecture', 'county'].includes(row.kind)
          ? h(EP.ElSwitch, { modelValue: !!row.reply_approval, size: 'small', class: 'reply-approval', 'data-unit': row.code,
            'onUpdate:modelValue': (v) => setApproval(row, v) }) : null) }),
        h(EP.ElTableColumn, { label: '操作', width: 210 }, { default: ({ row }) => [
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => openAdd(row) }, () => '新增下级'),
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => openRename(row) }, () => '改名'),
          row.code === '430000' || row.code === 'desk' ? null
            : h(EP.ElButton, { size: 'small', link: true, type: row.active ? 'danger' : 'success', onClick: () => toggle(row) }, () => (row.active ? '停用' : '启用')),
        ] }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, width: '520px',
        title: edit.value ? (edit.value.mode === 'add' ? '新增下级单位 · ' + edit.value.parent.name : '改名 · ' + edit.value.unit.name) : '' }, {
        default: () => (edit.value ? h(EP.ElForm, { labelWidth: '90px' }, () => [
          edit.value.mode === 'add' ? h(EP.ElFormItem, { label: '代码' }, () => h(EP.ElInput, model(edit.value, 'code', { placeholder: '唯一，如 div-xxx' }))) : null,
          h(EP.ElFormItem, { label: '全称' }, () => h(EP.ElInput, model(edit.value, 'name'))),
          h(EP.ElFormItem, { label: '简称' }, () => h(EP.ElInput, model(edit.value, 'short_name', { placeholder: '留空同全称' }))),
          edit.value.mode === 'add' ? h(EP.ElFormItem, { label: '类型' }, () => h(EP.ElSelect, model(edit.value, 'kind'), () => options({ division: '处室', desk: '派单台', prefecture: '市州局', county: '县市区局' }))) : null,
          edit.value.mode === 'add' ? h(EP.ElFormItem, { label: '行政区划' }, () => h(EP.ElInput, model(edit.value, 'region_code', { placeholder: '县市区局填 6 位区划代码，可空' }))) : null,
        ]) : null),
        footer: () => [h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'), h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: save }, () => '保存')],
      }),
    ]);
  },
};

// ---- categories and SLA days ------------------------------------------------------------------------------------

const CategoriesPanel = {
  setup() {
    const rows = ref([]);
    const edit = ref(null);
    const load = async () => { try { rows.value = (await api('GET', '/api/v1/categories')).categories; } catch (e) { toastError(e); } };
    onMounted(load);
    const save = async () => {
      const e = edit.value;
      const num = (v) => (v === '' || v === null || v === undefined ? null : Number(v));
      try {
        await api('PUT', '/api/v1/categories/' + e.code, { code: e.code, name: e.name, lead_unit_code: e.lead_unit_code,
          fallback_unit_code: e.fallback_unit_code || '', reply_days: num(e.reply_days), urgent_reply_hours: num(e.urgent_reply_hours), active: e.active });
        toast('类别已保存');
        edit.value = null;
        load();
      } catch (err) { EP.ElMessageBox.alert(errorText(err), '未保存', { type: 'warning' }).catch(() => {}); }
    };
    return () => h('div', { id: 'categories-panel' }, [
      h('p', { class: 'muted' }, '办结时限留空则按诉求类型的默认值（咨询/求助 3 个工作日，投诉/举报/建议 13 个工作日）；时限按工作日计算，节假日顺延。'),
      h(EP.ElTable, { data: rows.value, size: 'small', maxHeight: 520 }, () => [
        h(EP.ElTableColumn, { label: '类别', minWidth: 160 }, { default: ({ row }) => row.name }),
        h(EP.ElTableColumn, { label: '代码', width: 170 }, { default: ({ row }) => row.code }),
        h(EP.ElTableColumn, { label: '主办单位', width: 150 }, { default: ({ row }) => (row.lead_unit_code === 'region' ? '属地县市区局' : row.lead_unit_code) }),
        h(EP.ElTableColumn, { label: '办结时限', width: 100 }, { default: ({ row }) => (row.reply_days ? row.reply_days + ' 个工作日' : '默认') }),
        h(EP.ElTableColumn, { label: '紧急时限', width: 100 }, { default: ({ row }) => (row.urgent_reply_hours ? row.urgent_reply_hours + ' 小时' : '默认') }),
        h(EP.ElTableColumn, { label: '状态', width: 70 }, { default: ({ row }) => (row.active ? '启用' : '停用') }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => { edit.value = reactive({ ...row, reply_days: row.reply_days ?? '', urgent_reply_hours: row.urgent_reply_hours ?? '' }); } }, () => '修改') }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: edit.value ? '修改类别 · ' + edit.value.name : '', width: '480px' }, {
        default: () => (edit.value ? h(EP.ElForm, { labelWidth: '110px' }, () => [
          h(EP.ElFormItem, { label: '名称' }, () => h(EP.ElInput, model(edit.value, 'name'))),
          h(EP.ElFormItem, { label: '主办单位代码' }, () => h(EP.ElInput, model(edit.value, 'lead_unit_code', { placeholder: 'region = 属地县市区局' }))),
          h(EP.ElFormItem, { label: '办结时限(工作日)' }, () => h(EP.ElInput, model(edit.value, 'reply_days', { placeholder: '留空用默认' }))),
          h(EP.ElFormItem, { label: '紧急时限(小时)' }, () => h(EP.ElInput, model(edit.value, 'urgent_reply_hours', { placeholder: '留空用默认' }))),
          h(EP.ElFormItem, { label: '启用' }, () => h(EP.ElSwitch, model(edit.value, 'active'))),
        ]) : null),
        footer: () => [h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'), h(EP.ElButton, { type: 'primary', onClick: save }, () => '保存')],
      }),
    ]);
  },
};

// ---- routing directory: rules, history, dry run ------------------------------------------------------------------

const RoutingPanel = {
  setup() {
    const rules = ref([]);
    const cats = ref([]);
    const history = ref(null);
    const q = reactive({ kind: 'help', category: '', region_code: '', has_household: false, content: '' });
    const answer = ref(null);
    const load = async () => { try { rules.value = (await api('GET', '/api/v1/routing-rules')).rules; } catch (e) { toastError(e); } };
    onMounted(() => { load(); categories().then((c) => { cats.value = c; }).catch(() => {}); });
    const showHistory = async (r) => {
      try { history.value = { rule: r, versions: (await api('GET', `/api/v1/routing-rules/${r.id}/history`)).versions }; } catch (e) { toastError(e); }
    };
    const dry = async () => {
      try { answer.value = await api('POST', '/api/v1/routing-rules/dry-run', { ...q }); } catch (e) { answer.value = null; toastError(e); }
    };
    const ruleCols = () => [
      h(EP.ElTableColumn, { label: '顺序', width: 60 }, { default: ({ row }) => row.position }),
      h(EP.ElTableColumn, { label: '规则', minWidth: 160 }, { default: ({ row }) => row.name }),
      h(EP.ElTableColumn, { label: '条件', minWidth: 220 }, { default: ({ row }) => [
        (row.kinds || []).map((k) => KIND[k] || k).join('/'), (row.categories || []).join('/'), row.region_prefix ? '区划 ' + row.region_prefix + '*' : '',
        (row.keywords || []).length ? '关键词 ' + row.keywords.join('、') : '', row.has_household === true ? '监测户' : row.has_household === false ? '非监测户' : '',
      ].filter(Boolean).join('；') || '（任意）' }),
      h(EP.ElTableColumn, { label: '派往', width: 130 }, { default: ({ row }) => (row.unit_code === 'region' ? '属地县市区局' : row.unit_code) }),
      h(EP.ElTableColumn, { label: '版本', width: 60 }, { default: ({ row }) => 'v' + row.version }),
      h(EP.ElTableColumn, { label: '状态', width: 60 }, { default: ({ row }) => (row.active ? '启用' : '停用') }),
    ];
    return () => h('div', { id: 'routing-panel' }, [
      h(EP.ElCard, { shadow: 'never', style: 'margin-bottom:12px' }, { header: () => '试分派：这件事会派到哪个单位？（不创建工单）', default: () => h('div', { style: 'display:flex;gap:8px;flex-wrap:wrap;align-items:center' }, [
        h(EP.ElSelect, model(q, 'kind', { style: 'width:100px' }), () => options(KIND)),
        h(EP.ElSelect, model(q, 'category', { style: 'width:200px', placeholder: '类别', clearable: true }), () => cats.value.map((c) => h(EP.ElOption, { key: c.code, value: c.code, label: c.name }))),
        h(EP.ElInput, model(q, 'region_code', { style: 'width:150px', placeholder: '区划代码 430903' })),
        h(EP.ElCheckbox, model(q, 'has_household'), () => '监测户'),
        h(EP.ElInput, model(q, 'content', { style: 'width:260px', placeholder: '诉求内容（匹配关键词）' })),
        h(EP.ElButton, { type: 'primary', onClick: dry, id: 'dry-run' }, () => '试分派'),
        answer.value ? h('span', { id: 'dry-run-answer' }, ['→ ', h('b', null, answer.value.unit.name), answer.value.rule ? `（规则「${answer.value.rule.name}」v${answer.value.rule.version}）` : '（无规则匹配，进派单台）']) : null,
      ]) }),
      h('p', { class: 'muted' }, '规则按顺序匹配，第一条命中的规则决定承办单位；每次修改保留历史版本，工单记录派单时所用的规则版本。'),
      h(EP.ElTable, { data: rules.value, size: 'small', maxHeight: 440 }, () => [...ruleCols(),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => showHistory(row) }, () => '历史') })]),
      h(EP.ElDialog, { modelValue: !!history.value, 'onUpdate:modelValue': (v) => { if (!v) history.value = null; }, title: history.value ? '规则历史 · ' + history.value.rule.name : '', width: '900px' }, {
        default: () => (history.value ? h(EP.ElTable, { data: history.value.versions, size: 'small' }, () => [...ruleCols(),
          h(EP.ElTableColumn, { label: '修改时间', width: 140 }, { default: ({ row }) => cst(row.updated_at) }),
          h(EP.ElTableColumn, { label: '修改人', width: 90 }, { default: ({ row }) => row.updated_by || '初始' })]) : null),
      }),
    ]);
  },
};

// ---- SIP trunks -------------------------------------------------------------------------------------------------

const TrunksPanel = {
  setup() {
    const rows = ref([]);
    const env = ref([]);
    const edit = ref(null);
    const load = async () => {
      try { const j = await api('GET', '/api/v1/admin/trunks'); rows.value = j.trunks; env.value = j.env_trunks; } catch (e) { toastError(e); }
    };
    onMounted(load);
    const list = (v) => v.split(/[,，\s]+/).filter(Boolean);
    const open = (t) => {
      edit.value = reactive(t ? { isNew: false, name: t.name, networks: t.networks.join(', '), numbers: t.numbers.join(', '), skills: t.skills.join(', '), username: t.username, password: '', active: t.active }
        : { isNew: true, name: '', networks: '', numbers: '12345', skills: '', username: '', password: '', active: true });
    };
    const save = async () => {
      const e = edit.value;
      try {
        await api('PUT', '/api/v1/admin/trunks/' + encodeURIComponent(e.name.trim()), { networks: list(e.networks), numbers: list(e.numbers),
          skills: list(e.skills), username: e.username.trim(), password: e.password, active: e.active });
        toast('中继已保存，15 秒内在所有 SIP 进程生效');
        edit.value = null;
        load();
      } catch (err) { EP.ElMessageBox.alert(errorText(err), '未保存', { type: 'warning' }).catch(() => {}); }
    };
    const del = async (t) => {
      try { await EP.ElMessageBox.confirm(`删除中继 ${t.name}？删除后来自它的呼叫将被拒绝。`, '删除中继', { type: 'warning' }); } catch (e) { return; }
      try { await api('DELETE', '/api/v1/admin/trunks/' + encodeURIComponent(t.name)); toast('已删除'); load(); } catch (e) { toastError(e); }
    };
    return () => h('div', { id: 'trunks-panel' }, [
      h('p', { class: 'muted' }, ['环境变量 HOTLINE_SIP_TRUNKS 中的中继（', env.value.join('、') || '无', '）始终生效，并覆盖此处同名的中继；此处保存的中继每 15 秒加载一次。密码只保存摘要。']),
      h(EP.ElButton, { type: 'primary', onClick: () => open(null), style: 'margin-bottom:8px' }, () => '新增中继'),
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '没有保存的中继' }, () => [
        h(EP.ElTableColumn, { label: '名称', width: 120 }, { default: ({ row }) => row.name }),
        h(EP.ElTableColumn, { label: '来源网段', minWidth: 200 }, { default: ({ row }) => row.networks.join('、') || '（任意，凭密码）' }),
        h(EP.ElTableColumn, { label: '号码', width: 140 }, { default: ({ row }) => row.numbers.join('、') || '任意' }),
        h(EP.ElTableColumn, { label: '认证用户', width: 110 }, { default: ({ row }) => row.username || '—' }),
        h(EP.ElTableColumn, { label: '状态', width: 150 }, { default: ({ row }) => (row.overridden_by_env ? '被环境变量覆盖' : row.active ? '启用' : '停用') }),
        h(EP.ElTableColumn, { label: '操作', width: 110 }, { default: ({ row }) => [
          h(EP.ElButton, { size: 'small', link: true, type: 'primary', onClick: () => open(row) }, () => '修改'),
          h(EP.ElButton, { size: 'small', link: true, type: 'danger', onClick: () => del(row) }, () => '删除')] }),
      ]),
      h(EP.ElDialog, { modelValue: !!edit.value, 'onUpdate:modelValue': (v) => { if (!v) edit.value = null; }, title: edit.value && !edit.value.isNew ? '修改中继 · ' + edit.value.name : '新增中继', width: '520px' }, {
        default: () => (edit.value ? h(EP.ElForm, { labelWidth: '90px' }, () => [
          edit.value.isNew ? h(EP.ElFormItem, { label: '名称' }, () => h(EP.ElInput, model(edit.value, 'name', { placeholder: '如 unicom' }))) : null,
          h(EP.ElFormItem, { label: '来源网段' }, () => h(EP.ElInput, model(edit.value, 'networks', { placeholder: '10.1.0.0/24, 10.1.1.5' }))),
          h(EP.ElFormItem, { label: '号码' }, () => h(EP.ElInput, model(edit.value, 'numbers', { placeholder: '12345, 12317（空=任意）' }))),
          h(EP.ElFormItem, { label: '技能组' }, () => h(EP.ElInput, model(edit.value, 'skills', { placeholder: '如 xiang' }))),
          h(EP.ElFormItem, { label: '认证用户' }, () => h(EP.ElInput, model(edit.value, 'username', { placeholder: '可空' }))),
          h(EP.ElFormItem, { label: '认证密码' }, () => h(EP.ElInput, model(edit.value, 'password', { type: 'password', showPassword: true, autocomplete: 'new-password', placeholder: '留空保留原密码' }))),
          h(EP.ElFormItem, { label: '启用' }, () => h(EP.ElSwitch, model(edit.value, 'active'))),
        ]) : null),
        footer: () => [h(EP.ElButton, { onClick: () => { edit.value = null; } }, () => '取消'), h(EP.ElButton, { type: 'primary', onClick: save }, () => '保存')],
      }),
    ]);
  },
};

// ---- holiday calendar -------------------------------------------------------------------------------------------

const HolidaysPanel = {
  setup() {
    const rows = ref([]);
    const file = ref(null);
    const busy = ref(false);
    const load = async () => { try { rows.value = (await api('GET', '/api/v1/admin/holidays')).uploads; } catch (e) { toastError(e); } };
    onMounted(load);
    const upload = async () => {
      if (!file.value) { toast('请选择节假日文件（CSV）', 'warning'); return; }
      busy.value = true;
      try {
        const u = await apiUpload('POST', '/api/v1/admin/holidays', file.value, 'text/csv');
        toast(`已上传 ${u.year_from}–${u.year_to} 年节假日（${u.off_days} 天），各进程下次启动时生效`);
        load();
      } catch (e) { EP.ElMessageBox.alert(errorText(e), '未上传', { type: 'warning' }).catch(() => {}); } finally { busy.value = false; }
    };
    return () => h('div', { id: 'holidays-panel' }, [
      h('p', { class: 'muted' }, '上传国务院办公厅公布的下一年度放假安排，格式同 cn_holidays.csv：date,name,is_off_day（true 为放假，false 为调休上班）。每一年都须有节假日；上传的年份替换内置日历中的同一年份，各进程下次启动时生效。'),
      h('div', { style: 'display:flex;gap:8px;align-items:center;margin-bottom:10px' }, [
        h('input', { type: 'file', accept: '.csv,text/csv', onChange: (e) => { file.value = e.target.files[0] || null; } }),
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: upload }, () => '上传并校验'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '尚未上传，使用内置日历' }, () => [
        h(EP.ElTableColumn, { label: '上传时间', width: 150 }, { default: ({ row }) => cst(row.uploaded_at) }),
        h(EP.ElTableColumn, { label: '上传人', width: 110 }, { default: ({ row }) => row.uploaded_by }),
        h(EP.ElTableColumn, { label: '年份', width: 120 }, { default: ({ row }) => row.year_from === row.year_to ? row.year_from : row.year_from + '–' + row.year_to }),
        h(EP.ElTableColumn, { label: '放假天数', width: 100 }, { default: ({ row }) => row.off_days }),
      ]),
    ]);
  },
};

// ---- admin audit log ------------------------------------------------------------------------------------------

const AuditPanel = {
  setup() {
    const rows = ref([]);
    const f = reactive({ action: '', username: '', object: '' });
    const more = ref(false);
    const load = async (before) => {
      const p = new URLSearchParams({ limit: '50' });
      for (const k of ['action', 'username', 'object']) if (f[k]) p.set(k, f[k].trim());
      if (before) p.set('before', before);
      try {
        const es = (await api('GET', '/api/v1/admin/audit?' + p)).entries;
        rows.value = before ? rows.value.concat(es) : es;
        more.value = es.length === 50;
      } catch (e) { toastError(e); }
    };
    onMounted(() => load());
    const json = (v) => (v === null || v === undefined ? '—' : JSON.stringify(v, null, 1));
    return () => h('div', { id: 'audit-panel' }, [
      h('div', { style: 'display:flex;gap:8px;margin-bottom:10px' }, [
        h(EP.ElSelect, model(f, 'action', { placeholder: '全部操作', clearable: true, style: 'width:170px', onChange: () => load() }),
          () => [['user.', '用户'], ['unit.', '单位'], ['sip_account.', 'SIP账号'], ['routing_rule.', '分派规则'], ['category.', '类别'], ['trunk.', '中继'], ['holidays.', '节假日']].map(([v, l]) => h(EP.ElOption, { value: v, label: l }))),
        h(EP.ElInput, model(f, 'username', { placeholder: '操作人用户名', clearable: true, style: 'width:160px' })),
        h(EP.ElInput, model(f, 'object', { placeholder: '对象，如 user:12', clearable: true, style: 'width:160px' })),
        h(EP.ElButton, { type: 'primary', onClick: () => load(), id: 'audit-go' }, () => '查询'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'small', maxHeight: 520, id: 'audit-list', emptyText: '没有记录' }, () => [
        h(EP.ElTableColumn, { label: '时间', width: 140 }, { default: ({ row }) => cst(row.at) }),
        h(EP.ElTableColumn, { label: '操作人', width: 100 }, { default: ({ row }) => row.actor_username }),
        h(EP.ElTableColumn, { label: '操作', width: 120 }, { default: ({ row }) => ACTION[row.action] || row.action }),
        h(EP.ElTableColumn, { label: '对象', width: 110 }, { default: ({ row }) => row.object }),
        h(EP.ElTableColumn, { label: '修改前', minWidth: 200 }, { default: ({ row }) => h('pre', { class: 'audit-json' }, json(row.before)) }),
        h(EP.ElTableColumn, { label: '修改后', minWidth: 200 }, { default: ({ row }) => h('pre', { class: 'audit-json' }, json(row.after)) }),
        h(EP.ElTableColumn, { label: '来源', width: 110 }, { default: ({ row }) => row.source_addr || '' }),
      ]),
      more.value ? h(EP.ElButton, { style: 'margin-top:8px', onClick: () => load(rows.value[rows.value.length - 1].id) }, () => '更早的记录') : null,
    ]);
  },
};

// ---- security audit log ---------------------------------------------------------------------------------------

const SEC_KIND = { login: '登录', login_failed: '登录失败', logout: '退出登录', password_change: '修改密码', export: '导出数据',
  reveal: '查看完整个人信息', pii_lookup: '按完整号码查询', forbidden: '越权访问被拒绝', import: '导入农户',
  georeport_key_created: '创建 GeoReport 密钥', georeport_key_revoked: '吊销 GeoReport 密钥' };
// The kinds the API filters by (org.auditKinds).
const SEC_FILTER = Object.keys(SEC_KIND);
const SEC_OBJECT = { household: '农户', open311_client: 'GeoReport 客户端', user: '用户', unit: '单位', ticket: '工单' };
const SEC_OBJECT_WHOLE = { households: '农户库', calls: '通话记录', 'caller-lookup': '来电人查询' };
const SEC_DETAIL = { field: '字段', member_seq: '成员序号', reveal_id: '查看记录号', pii_reveal_id: '查看记录号', via: '方式', rows: '行数',
  reason: '原因', households: '农户', household_ids: '农户编号', filter: '筛选条件', reveal: '含完整信息', created: '新增', updated: '更新',
  rejected_rows: '拒绝行数', phone: '号码', id_number: '身份证号', calls: '通话', error: '拒绝原因' };
const SEC_VALUE = { id_number: '身份证号', phone: '电话', cadre_phone: '帮扶干部电话', token: '令牌', session: '会话',
  all_sessions: '全部会话', rate_limited: '频率受限', '/api/v1/session': '控制台', '/api/v1/tokens': '接口令牌' };
const SEC_PAGE = 50;

// secObject names an audit row's target in Chinese: "household:12" is 农户 #12 (a link to it).
function secObject(o) {
  if (!o) return '—';
  if (SEC_OBJECT_WHOLE[o]) return SEC_OBJECT_WHOLE[o];
  const [kind, id] = o.split(':');
  if (kind === 'household' && id) return h('a', { href: '/households/' + id, class: 'el-link el-link--primary' }, '农户 #' + id);
  return SEC_OBJECT[kind] && id ? SEC_OBJECT[kind] + ' #' + id : o;
}
function secDetail(d) {
  const val = (k, v) => (typeof v === 'object' ? JSON.stringify(v) : typeof v === 'boolean' ? (v ? '是' : '否')
    : (k === 'field' || k === 'via') ? SEC_VALUE[v] || v : v);
  return Object.entries(d || {}).map(([k, v]) => (SEC_DETAIL[k] || k) + '：' + val(k, v)).join('；');
}

const SecurityPanel = {
  setup() {
    const rows = ref([]);
    const f = reactive({ kind: '', username: '', object: '', days: null });
    const cursors = ref([]); // before of each page shown before this one
    const before = ref(0);
    const more = ref(false);
    const loading = ref(false);
    const load = async () => {
      const p = new URLSearchParams({ limit: String(SEC_PAGE) });
      for (const k of ['kind', 'username', 'object']) if (f[k]) p.set(k, f[k].trim());
      if (f.days && f.days[0]) p.set('from', f.days[0]);
      // The API's "to" is exclusive: the day picked ends at the next midnight, China time.
      if (f.days && f.days[1]) p.set('to', new Date(new Date(f.days[1] + 'T00:00:00+08:00').getTime() + 86400000).toISOString());
      if (before.value) p.set('before', String(before.value));
      loading.value = true;
      try {
        const es = (await api('GET', '/api/v1/security-audit?' + p)).entries || [];
        rows.value = es;
        more.value = es.length === SEC_PAGE;
      } catch (e) { toastError(e); } finally { loading.value = false; }
    };
    const first = () => { cursors.value = []; before.value = 0; load(); };
    const next = () => { cursors.value.push(before.value); before.value = rows.value[rows.value.length - 1].id; load(); };
    const prev = () => { before.value = cursors.value.pop() || 0; load(); };
    onMounted(load);
    return () => h('div', { id: 'security-panel' }, [
      h('div', { style: 'display:flex;gap:8px;margin-bottom:10px;flex-wrap:wrap' }, [
        h(EP.ElSelect, model(f, 'kind', { placeholder: '全部事件', clearable: true, style: 'width:170px', id: 'security-kind', onChange: first }),
          () => SEC_FILTER.map((k) => h(EP.ElOption, { key: k, value: k, label: SEC_KIND[k] }))),
        h(EP.ElInput, model(f, 'username', { placeholder: '操作人用户名', clearable: true, style: 'width:150px', id: 'security-username' })),
        h(EP.ElInput, model(f, 'object', { placeholder: '对象，如 household:12', clearable: true, style: 'width:210px', id: 'security-object' })),
        h(EP.ElDatePicker, model(f, 'days', { type: 'daterange', valueFormat: 'YYYY-MM-DD', startPlaceholder: '开始日期', endPlaceholder: '结束日期', style: 'width:250px' })),
        h(EP.ElButton, { type: 'primary', onClick: first, loading: loading.value, id: 'security-go' }, () => '查询'),
      ]),
      h(EP.ElTable, { data: rows.value, size: 'small', maxHeight: 520, id: 'security-list', rowKey: 'id', emptyText: loading.value ? '加载中…' : '没有记录',
        rowClassName: ({ row }) => 'security-' + row.id + ' security-kind-' + row.kind }, () => [
        h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.at) }),
        h(EP.ElTableColumn, { label: '操作人', width: 120 }, { default: ({ row }) => row.actor_username || '—' }),
        h(EP.ElTableColumn, { label: '事件', width: 150 }, { default: ({ row }) => h(EP.ElTag, { size: 'small', type: row.kind === 'forbidden' || row.kind === 'login_failed' ? 'danger' : row.kind === 'reveal' || row.kind === 'export' ? 'warning' : 'info' }, () => SEC_KIND[row.kind] || row.kind) }),
        h(EP.ElTableColumn, { label: '对象', width: 150 }, { default: ({ row }) => secObject(row.object) }),
        h(EP.ElTableColumn, { label: '详情', minWidth: 220, showOverflowTooltip: true }, { default: ({ row }) => secDetail(row.detail) }),
        h(EP.ElTableColumn, { label: '来源地址', width: 130 }, { default: ({ row }) => row.source_addr || '—' }),
      ]),
      h('div', { style: 'display:flex;gap:8px;margin-top:10px' }, [
        h(EP.ElButton, { size: 'small', disabled: !before.value, onClick: prev, id: 'security-prev' }, () => '上一页'),
        h(EP.ElButton, { size: 'small', disabled: !more.value, onClick: next, id: 'security-next' }, () => '下一页'),
      ]),
    ]);
  },
};

export const AdminPage = {
  setup() {
    const tab = ref(new URLSearchParams(location.search).get('tab') || 'users');
    const pane = (name, label, comp) => h(EP.ElTabPane, { name, label, lazy: true }, () => h(comp));
    return () => h(Frame, { active: '/admin' }, () => h(EP.ElCard, { shadow: 'never' }, { header: () => '系统管理', default: () =>
      h(EP.ElTabs, { modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; history.replaceState(null, '', '/admin?tab=' + v); }, id: 'admin-tabs' }, () => [
        pane('users', '用户', UsersPanel),
        pane('units', '组织机构', UnitsPanel),
        pane('categories', '类别与时限', CategoriesPanel),
        pane('routing', '分派规则', RoutingPanel),
        pane('trunks', '中继线路', TrunksPanel),
        pane('holidays', '节假日', HolidaysPanel),
        pane('audit', '操作审计', AuditPanel),
        pane('security', '安全审计', SecurityPanel),
        h(EP.ElTabPane, { name: 'prompts', label: '提示音', lazy: true }, () => h('p', null, ['外呼和来电提示音在「外呼任务」页面上传和试听：', h('a', { href: '/campaigns' }, '前往外呼任务')])),
      ]) }));
  },
};
