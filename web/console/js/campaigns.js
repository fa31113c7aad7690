// 外呼任务 (campaign managers; supervisors and admins read): the list of campaigns, the prompts (upload a WAV or MP3,
// converted to 8 kHz mono by the server, and listen to it), and the opt-out list (免打扰名单) with who changed it and why.
// Building a campaign is campaignbuild.js, watching one run is campaignrun.js.
import { h, ref, reactive, onMounted, EP, api, upload, model, toast, toastError, errorText, Frame, cst, session, options } from './lib.js';

export const PURPOSE = { checkin: '监测回访', callback: '工单回访', notice: '政策通知' };
export const CSTATUS = { draft: '草稿', running: '进行中', paused: '已暂停', finished: '已完成', cancelled: '已取消' };
export const CSTATUS_TYPE = { draft: 'info', running: 'primary', paused: 'warning', finished: 'success', cancelled: 'info' };

export function canManage() {
  const u = session.user;
  return !!u && (u.role === 'campaign_manager' || u.role === 'admin');
}

// promptURL is where the page plays a prompt from (the session cookie authorizes it; no blob: URLs under the CSP).
export function promptURL(name) { return '/api/v1/campaign-prompts/' + encodeURIComponent(name); }

// PromptPlayer is an audio element for one prompt.
export function promptPlayer(name, id) {
  if (!name) return h('span', { class: 'muted' }, '未选择');
  return h('audio', { controls: true, preload: 'none', src: promptURL(name), id, 'data-prompt': name, style: 'height:32px;vertical-align:middle' });
}

// PromptUpload uploads one file under a name; onDone gets the stored prompt.
export const PromptUpload = {
  props: { onDone: Function },
  setup(props) {
    const f = reactive({ name: '' });
    const fileRef = ref(null);
    const busy = ref(false);
    const submit = async () => {
      const input = fileRef.value;
      const file = input && input.files && input.files[0];
      if (!file) { toast('请选择录音文件（WAV 或 MP3）', 'warning'); return; }
      if (!f.name) f.name = file.name.replace(/\.[^.]*$/, '').toLowerCase().replace(/[^a-z0-9_-]/g, '_').replace(/^[_-]+/, '').slice(0, 60);
      busy.value = true;
      try {
        const p = await upload('/api/v1/campaign-prompts?name=' + encodeURIComponent(f.name) + '&filename=' + encodeURIComponent(file.name), file);
        toast('已上传并转换为 8kHz 单声道：' + p.name);
        f.name = '';
        input.value = '';
        if (props.onDone) props.onDone(p);
      } catch (e) {
        EP.ElMessageBox.alert(errorText(e).replace('file（', '录音文件（').replace('name（', '名称（'), '未上传', { type: 'warning' }).catch(() => {});
      } finally { busy.value = false; }
    };
    return () => h('div', { class: 'prompt-upload', style: 'display:flex;gap:8px;align-items:center;flex-wrap:wrap' }, [
      h('input', { type: 'file', accept: '.wav,.mp3,audio/wav,audio/mpeg', ref: fileRef, id: 'prompt-file' }),
      h(EP.ElInput, model(f, 'name', { id: 'prompt-name', placeholder: '名称（小写字母、数字、_ -）', style: 'width:240px' })),
      h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: submit, id: 'prompt-upload' }, () => '上传录音'),
      h('span', { class: 'muted' }, 'WAV 或 MP3，不超过 10 MB、3 分钟；上传后转换为 8kHz 单声道 16 位。'),
    ]);
  },
};

const PromptsPanel = {
  setup() {
    const rows = ref([]);
    const load = async () => { try { rows.value = (await api('GET', '/api/v1/campaign-prompts')).prompts || []; } catch (e) { toastError(e); } };
    onMounted(load);
    return () => h('div', { id: 'prompts-panel' }, [
      canManage() ? h(PromptUpload, { onDone: load }) : null,
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '没有录音', id: 'prompt-list', style: 'margin-top:10px' }, () => [
        h(EP.ElTableColumn, { label: '名称', width: 220 }, { default: ({ row }) => row.name }),
        h(EP.ElTableColumn, { label: '来源', width: 160 }, { default: ({ row }) => (row.builtin ? '系统内置' : (row.source_format || '').toUpperCase() + ' ' + (row.source_name || '')) }),
        h(EP.ElTableColumn, { label: '时长', width: 80 }, { default: ({ row }) => (row.duration_ms / 1000).toFixed(1) + ' 秒' }),
        h(EP.ElTableColumn, { label: '上传时间', width: 150 }, { default: ({ row }) => (row.builtin ? '—' : cst(row.created_at)) }),
        h(EP.ElTableColumn, { label: '试听', minWidth: 300 }, { default: ({ row }) => promptPlayer(row.name) }),
      ]),
    ]);
  },
};

const OptOutPanel = {
  setup() {
    const rows = ref([]);
    const hist = ref([]);
    const f = reactive({ household_id: '', purpose: 'checkin', reason: '' });
    const busy = ref(false);
    const load = async () => {
      try {
        rows.value = (await api('GET', '/api/v1/campaign-optouts')).optouts || [];
        hist.value = (await api('GET', '/api/v1/campaign-optouts/history?limit=50')).history || [];
      } catch (e) { toastError(e); }
    };
    onMounted(load);
    const add = async () => {
      busy.value = true;
      try {
        await api('POST', '/api/v1/campaign-optouts', { household_id: Number(f.household_id) || 0, purpose: f.purpose, reason: f.reason });
        toast('已加入免打扰名单');
        Object.assign(f, { household_id: '', reason: '' });
        load();
      } catch (e) { toastError(e); } finally { busy.value = false; }
    };
    const remove = async (row) => {
      let reason;
      try {
        reason = (await EP.ElMessageBox.prompt('移出后该户将可能再次被呼叫。请填写原因：', '移出免打扰名单', {
          confirmButtonText: '移出', cancelButtonText: '取消', inputPattern: /\S/, inputErrorMessage: '请填写原因' })).value;
      } catch (e) { return; }
      try {
        await api('POST', '/api/v1/campaign-optouts/remove', { household_id: row.household_id, purpose: row.purpose, reason });
        toast('已移出');
        load();
      } catch (e) { toastError(e); }
    };
    return () => h('div', { id: 'optout-panel' }, [
      canManage() ? h('div', { style: 'display:flex;gap:8px;margin-bottom:10px;flex-wrap:wrap' }, [
        h(EP.ElInput, model(f, 'household_id', { id: 'optout-household', placeholder: '监测户 ID', style: 'width:130px' })),
        h(EP.ElSelect, model(f, 'purpose', { style: 'width:130px', id: 'optout-purpose' }), () => options(PURPOSE)),
        h(EP.ElInput, model(f, 'reason', { id: 'optout-reason', placeholder: '原因（必填，如：本人来电要求不再接听）', style: 'width:360px' })),
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: add, id: 'optout-add' }, () => '加入名单'),
      ]) : null,
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '名单为空', id: 'optout-list', maxHeight: 360 }, () => [
        h(EP.ElTableColumn, { label: '监测户 ID', width: 100 }, { default: ({ row }) => String(row.household_id) }),
        h(EP.ElTableColumn, { label: '用途', width: 100 }, { default: ({ row }) => PURPOSE[row.purpose] || row.purpose }),
        h(EP.ElTableColumn, { label: '原因', minWidth: 220 }, { default: ({ row }) => row.reason || (row.campaign_id ? '通话中按键退订' : '—') }),
        h(EP.ElTableColumn, { label: '操作人', width: 110 }, { default: ({ row }) => row.created_by_name || (row.campaign_id ? '任务 #' + row.campaign_id : '系统') }),
        h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.created_at) }),
        canManage() ? h(EP.ElTableColumn, { label: '', width: 80 }, { default: ({ row }) => h(EP.ElButton, { size: 'small', link: true, type: 'danger', class: 'optout-remove', onClick: () => remove(row) }, () => '移出') }) : null,
      ]),
      h('h4', null, '变更记录'),
      h(EP.ElTable, { data: hist.value, size: 'small', emptyText: '没有记录', id: 'optout-history', maxHeight: 300 }, () => [
        h(EP.ElTableColumn, { label: '时间', width: 150 }, { default: ({ row }) => cst(row.at) }),
        h(EP.ElTableColumn, { label: '操作', width: 70 }, { default: ({ row }) => (row.action === 'add' ? '加入' : '移出') }),
        h(EP.ElTableColumn, { label: '监测户 ID', width: 100 }, { default: ({ row }) => String(row.household_id) }),
        h(EP.ElTableColumn, { label: '用途', width: 100 }, { default: ({ row }) => PURPOSE[row.purpose] || row.purpose }),
        h(EP.ElTableColumn, { label: '原因', minWidth: 220 }, { default: ({ row }) => row.reason }),
        h(EP.ElTableColumn, { label: '操作人', width: 110 }, { default: ({ row }) => row.actor_name || '按键（系统）' }),
      ]),
    ]);
  },
};

const ListPanel = {
  setup() {
    const rows = ref([]);
    onMounted(async () => { try { rows.value = (await api('GET', '/api/v1/campaigns?limit=200')).campaigns || []; } catch (e) { toastError(e); } });
    return () => h('div', { id: 'campaign-list' }, [
      canManage() ? h('div', { style: 'margin-bottom:10px' }, h(EP.ElButton, { type: 'primary', id: 'new-campaign', onClick: () => { location.assign('/campaigns/new'); } }, () => '新建外呼任务')) : null,
      h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '还没有外呼任务' }, () => [
        h(EP.ElTableColumn, { label: '编号', width: 70 }, { default: ({ row }) => h('a', { href: '/campaigns/' + row.id, class: 'el-link el-link--primary' }, '#' + row.id) }),
        h(EP.ElTableColumn, { label: '名称', minWidth: 240 }, { default: ({ row }) => h('a', { href: '/campaigns/' + row.id, class: 'campaign-link' }, row.name) }),
        h(EP.ElTableColumn, { label: '用途', width: 100 }, { default: ({ row }) => PURPOSE[row.purpose] || row.purpose }),
        h(EP.ElTableColumn, { label: '状态', width: 90 }, { default: ({ row }) => h(EP.ElTag, { type: CSTATUS_TYPE[row.status], size: 'small' }, () => CSTATUS[row.status] || row.status) }),
        h(EP.ElTableColumn, { label: '创建时间', width: 150 }, { default: ({ row }) => cst(row.created_at) }),
        h(EP.ElTableColumn, { label: '启动时间', width: 150 }, { default: ({ row }) => cst(row.launched_at) }),
      ]),
    ]);
  },
};

export const CampaignsPage = {
  setup() {
    const tab = ref(new URLSearchParams(location.search).get('tab') || 'list');
    return () => h(Frame, { active: '/campaigns' }, () => h(EP.ElCard, { shadow: 'never' }, {
      header: () => '外呼任务',
      default: () => h(EP.ElTabs, { modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; } }, () => [
        h(EP.ElTabPane, { label: '任务列表', name: 'list' }, () => h(ListPanel)),
        h(EP.ElTabPane, { label: '录音提示音', name: 'prompts', lazy: true }, () => h(PromptsPanel)),
        h(EP.ElTabPane, { label: '免打扰名单', name: 'optouts', lazy: true }, () => h(OptOutPanel)),
      ]),
    }));
  },
};
