// Shared by every console page: the API client (session cookie + CSRF header), the live websocket with resume and
// back-off, Chinese labels, China-time formatting, and the page frame. Everything is rendered with Vue render
// functions (h), so user text is always set as text, never as HTML.
const { h, ref, reactive, onMounted, onUnmounted } = Vue;
const EP = ElementPlus;

export { h, ref, reactive, onMounted, onUnmounted, EP };

// ---- API ------------------------------------------------------------------------------------------------------

let csrfToken = '';
export const session = reactive({ user: null });

export class APIError extends Error {
  constructor(status, body) {
    super((body && body.message) || ('HTTP ' + status));
    this.status = status;
    this.body = body || {};
  }
}

// api calls the JSON API. A 401 outside the session endpoints sends the user to the login page.
export async function api(method, path, body, headers) {
  const opt = { method, headers: { Accept: 'application/json', ...(headers || {}) }, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrfToken) opt.headers['X-CSRF-Token'] = csrfToken;
  const r = await fetch(path, opt);
  if (r.status === 204) return null;
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (!r.ok) {
    if (r.status === 401 && !path.startsWith('/api/v1/session')) {
      goLogin();
    }
    throw new APIError(r.status, j);
  }
  return j;
}

// sendFile sends a file as the request body with the session's CSRF header and returns the JSON answer. An error
// answer is thrown as an APIError carrying its body (an import's unknown columns ride on a 422); a 401 also
// sends the user to the login page, as api does.
async function sendFile(method, path, body, contentType) {
  const headers = { Accept: 'application/json' };
  if (contentType) headers['Content-Type'] = contentType; // FormData sets its own, with the boundary
  if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const r = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (!r.ok) {
    if (r.status === 401) goLogin();
    throw new APIError(r.status, j);
  }
  return j;
}

// uploadForm sends one file as multipart/form-data (part "file").
export function uploadForm(path, file) {
  const fd = new FormData();
  fd.append('file', file, file.name);
  return sendFile('POST', path, fd);
}

// upload sends a file as the raw body (the server sniffs its format).
export function upload(path, file) {
  return sendFile('POST', path, file, 'application/octet-stream');
}

// apiUpload sends a file as the raw body with its type (e.g. text/csv).
export function apiUpload(method, path, file, contentType) {
  return sendFile(method, path, file, contentType || 'application/octet-stream');
}

export function goLogin() {
  if (location.pathname !== '/login') {
    location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
  }
}

// normUser accepts /api/v1/me in either spelling (Go field names or snake_case).
export function normUser(u) {
  if (!u) return null;
  return {
    id: u.id ?? u.user_id ?? u.UserID, username: u.username ?? u.Username, name: u.name ?? u.display_name ?? u.Name,
    role: u.role ?? u.Role, unitId: u.unit_id ?? u.UnitID ?? 0, permissions: u.permissions ?? u.Permissions ?? [],
  };
}

export async function loadSession() {
  const s = await api('GET', '/api/v1/session');
  csrfToken = s.csrf_token || '';
  session.user = normUser(s.user);
  return session.user;
}

export async function login(username, password) {
  const s = await api('POST', '/api/v1/session', { username, password });
  csrfToken = s.csrf_token || '';
  session.user = normUser(s.user);
  return session.user;
}

export async function logout() {
  try { await api('DELETE', '/api/v1/session'); } catch (e) { /* signed out either way */ }
  session.user = null;
  sessionStorage.removeItem('ws_last_id');
  location.assign('/login');
}

// errorText turns an API error into one plain Chinese sentence (field errors listed).
export function errorText(e) {
  if (!(e instanceof APIError)) return '网络错误，请稍后重试';
  const b = e.body || {};
  if (e.status === 409 && b.code === 'action_not_allowed') return '操作未执行：工单状态已变化（可能已被他人处理），页面已刷新，请查看最新状态。';
  if (e.status === 409) return '操作冲突：' + (b.message || '数据已被他人修改，请刷新后重试');
  if (e.status === 403) return '没有权限执行此操作';
  if (e.status === 429) return '操作过于频繁，请稍后再试';
  if (b.fields) return '请检查：' + Object.entries(b.fields).map(([k, v]) => (FIELD[k] || k) + '（' + v + '）').join('；');
  return b.message || ('请求失败（' + e.status + '）');
}

const FIELD = { content: '诉求内容', category: '类别', kind: '诉求类型', region_code: '区域', caller_phone: '联系电话',
  caller_name: '来电人', reason: '原因', reply: '答复内容', days: '延期天数', version: '版本', target_id: '目标工单', password: '密码',
  new_password: '新密码', old_password: '原密码', username: '用户名', outcome: '核实结果', result: '回访结果' };

export function toast(msg, type) { EP.ElMessage({ message: msg, type: type || 'success', grouping: true }); }
export function toastError(e) { EP.ElMessage({ message: errorText(e), type: 'error', duration: 6000, grouping: true }); }

// ---- live events ------------------------------------------------------------------------------------------------

export const live = reactive({ online: false, everOnline: false });
const listeners = new Set();
let liveSocket = null;

// onLive registers a handler for event frames ({id, type, data}); a {type:'reload'} frame asks pages to re-read.
export function onLive(fn) {
  listeners.add(fn);
  onUnmounted(() => listeners.delete(fn));
}

// startLive keeps one websocket open for the page: it resumes from the last event id it saw (kept for the tab) and
// reconnects with exponential back-off (1 s doubling to 30 s, with jitter) when the connection drops.
export function startLive() {
  if (liveSocket) return;
  let lastId = sessionStorage.getItem('ws_last_id') || '';
  let delay = 1000;
  let ping = null;
  const open = () => {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' +
      (lastId ? '?last_id=' + encodeURIComponent(lastId) : '');
    const ws = new WebSocket(url);
    liveSocket = ws;
    ws.onopen = () => {
      delay = 1000;
      live.online = true;
      if (live.everOnline) dispatch({ type: 'reload' }); // read what may have changed while offline
      live.everOnline = true;
      ping = setInterval(() => { try { ws.send('{"type":"ping"}'); } catch (e) { /* closing */ } }, 25000);
    };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      if (f.type === 'hello') {
        if (!lastId && f.last_id) lastId = f.last_id;
        return;
      }
      if (f.type === 'pong') return;
      if (f.type === 'reload') {
        lastId = '';
        sessionStorage.removeItem('ws_last_id');
        dispatch(f);
        return;
      }
      if (f.id) {
        lastId = f.id;
        sessionStorage.setItem('ws_last_id', lastId);
      }
      dispatch(f);
    };
    ws.onerror = () => { /* onclose follows */ };
    ws.onclose = () => {
      clearInterval(ping);
      live.online = false;
      setTimeout(open, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    };
  };
  open();
}

function dispatch(f) {
  for (const fn of listeners) {
    try { fn(f); } catch (e) { console.warn('live handler', e); }
  }
}

// ---- labels and formatting -------------------------------------------------------------------------------------

export const STATUS = { new: '待派单', dispatched: '待签收', signed: '办理中', replied: '已答复', callback: '回访中', closed: '已归档', returned: '已退单' };
export const STATUS_TYPE = { new: 'info', dispatched: 'warning', signed: 'primary', replied: 'success', callback: 'success', closed: 'info', returned: 'danger' };
export const KIND = { consultation: '咨询', help: '求助', complaint: '投诉', report: '举报', suggestion: '建议' };
export const URGENCY = { normal: '一般', urgent: '紧急' };
export const ACTION = { create: '受理', dispatch: '派单', sign: '签收', reply: '办结答复', return: '退单', request_extension: '申请延期',
  approve_extension: '批准延期', refuse_extension: '驳回延期', urge: '催办', supervise: '督办', assign: '分派承办人',
  start_callback: '开始回访', callback_result: '回访结果', reopen: '重办', merge: '合并', merged_from: '被合并',
  close_first_contact: '当场办结', sla_yellow: '临期提醒', sla_red: '超期',
  correct: '工单修改', co_sign: '协办签收', co_opinion: '协办意见', approve_reply: '审核通过', return_reply: '审核退回',
  reply_submitted: '提交审核', note: '办理过程', interim_reply: '阶段性答复', request_suspend: '申请挂起', approve_suspend: '批准挂起',
  refuse_suspend: '驳回挂起', resume: '解除挂起', attach: '上传附件' };
// What the 12345 platform was sent (ticketing/exchange outboundActions), and how far each send got.
export const EXCHANGE_ACTION = { sign: '签收', reply: '办结答复', return: '退单', extension: '延期申请', callback: '回访结果',
  interim_reply: '阶段性答复', suspend: '挂起', resume: '解除挂起' };
export const OUTBOUND_STATE = { pending: '待发送', sent: '已发送', dead: '发送失败' };
export const OUTBOUND_TYPE = { pending: 'warning', sent: 'success', dead: 'danger' };
export const AGENT_STATE = { offline: '离线', ready: '就绪', paused: '小休', busy: '通话中', acw: '话后处理' };
export const PAUSE_REASONS = ['休息', '用餐', '培训', '会议', '其他'];
export const SYS_REASON = { no_answer: '未接听，已自动小休', unreachable: '话机不可达', ringing: '振铃中', talking: '通话中' };
export const MONITORING = { unstable: '脱贫不稳定户', marginal: '边缘易致贫户', sudden: '突发严重困难户' };
export const HH_STATUS = { screened: '排查', verified: '核实', identified: '认定', assisted: '帮扶', risk_eliminated: '风险消除', not_included: '不纳入' };
export const SATISFACTION = { satisfied: '满意', basically_satisfied: '基本满意', unsatisfied: '不满意' };

const fmt = new Intl.DateTimeFormat('zh-CN', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hour12: false });

// cst formats a time in China time: 2026-12-01 13:05.
export function cst(t) {
  if (!t) return '';
  const p = Object.fromEntries(fmt.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

// duration renders seconds as 1时02分 / 3分05秒.
export function duration(sec) {
  sec = Math.max(0, Math.floor(sec));
  const d = Math.floor(sec / 86400), hh = Math.floor((sec % 86400) / 3600), mm = Math.floor((sec % 3600) / 60), ss = sec % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}天${hh}时`;
  if (hh > 0) return `${hh}时${two(mm)}分`;
  return `${mm}分${two(ss)}秒`;
}

// maskPhone shows a number as 138****5678 unless it is already masked.
export function maskPhone(p) {
  if (!p) return '未知号码';
  if (p.includes('*')) return p;
  const d = p.replace(/\D/g, '');
  if (d.length < 7) return '****';
  return d.slice(0, 3) + '****' + d.slice(-4);
}

// now ticks every second for countdowns and timers.
export const now = ref(Date.now());
setInterval(() => { now.value = Date.now(); }, 1000);

// slaBadge is the countdown tag of a ticket's running clock: green, yellow (close to the deadline) or red (past it).
export function slaBadge(t) {
  if (!t || !t.due_at) return h('span', { class: 'muted' }, '—');
  const due = new Date(t.due_at).getTime();
  const yellow = t.yellow_at ? new Date(t.yellow_at).getTime() : due;
  const left = (due - now.value) / 1000;
  const kind = { sign: '签收', reply: '办结', callback: '回访' }[t.due_kind] || '';
  let type = 'success', text = kind + '剩 ' + duration(left);
  if (left <= 0) { type = 'danger'; text = kind + '超期 ' + duration(-left); } else if (now.value >= yellow) { type = 'warning'; }
  return h(EP.ElTag, { type, effect: 'dark', size: 'small', class: 'sla', 'data-sla': type === 'success' ? 'green' : type === 'warning' ? 'yellow' : 'red' }, () => text);
}

// ---- units and categories (cached for the page) ---------------------------------------------------------------

let unitsP = null, catsP = null;
export function units() {
  unitsP = unitsP || api('GET', '/api/v1/units').then((j) => new Map(j.units.map((u) => [u.id, u])));
  return unitsP;
}
export function categories() {
  catsP = catsP || api('GET', '/api/v1/categories').then((j) => j.categories.filter((c) => c.active !== false));
  return catsP;
}

// ---- the frame -------------------------------------------------------------------------------------------------

export function homeFor(u) {
  if (!u) return '/login';
  if (u.role === 'agent') return '/agent';
  if (u.role === 'staff' || u.role === 'head') return '/division';
  if (u.role === 'campaign_manager') return '/campaigns';
  return '/search';
}

// PasswordButton changes the user's own password (the old one is required; the server checks length and that
// it is not the user name). Other sessions of the user end; this one stays.
const PasswordButton = {
  setup() {
    const open = ref(false);
    const f = reactive({ old_password: '', new_password: '', again: '' });
    const busy = ref(false);
    const submit = async () => {
      if (f.new_password !== f.again) { toast('两次输入的新密码不一致', 'warning'); return; }
      busy.value = true;
      try {
        await api('POST', '/api/v1/session/password', { old_password: f.old_password, new_password: f.new_password });
        toast('密码已修改');
        open.value = false;
        Object.assign(f, { old_password: '', new_password: '', again: '' });
      } catch (e) { toastError(e); } finally { busy.value = false; }
    };
    return () => [
      h(EP.ElButton, { size: 'small', plain: true, onClick: () => { open.value = true; }, id: 'change-password' }, () => '修改密码'),
      h(EP.ElDialog, { modelValue: open.value, 'onUpdate:modelValue': (v) => { open.value = v; }, title: '修改密码', width: '400px', appendToBody: true }, {
        default: () => h(EP.ElForm, { labelPosition: 'top' }, () => [
          h(EP.ElFormItem, { label: '原密码' }, () => h(EP.ElInput, model(f, 'old_password', { type: 'password', showPassword: true, autocomplete: 'current-password' }))),
          h(EP.ElFormItem, { label: '新密码' }, () => h(EP.ElInput, model(f, 'new_password', { type: 'password', showPassword: true, autocomplete: 'new-password' }))),
          h(EP.ElFormItem, { label: '再次输入新密码' }, () => h(EP.ElInput, model(f, 'again', { type: 'password', showPassword: true, autocomplete: 'new-password',
            onKeyup: (e) => { if (e.key === 'Enter') submit(); } }))),
        ]),
        footer: () => [h(EP.ElButton, { onClick: () => { open.value = false; } }, () => '取消'),
          h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: submit }, () => '确定')],
      }),
    ];
  },
};

// Frame is the top bar (title, the pages this role uses, the live indicator, the user) around a page.
export const Frame = {
  props: { active: String },
  setup(props, { slots }) {
    return () => {
      const u = session.user;
      const links = [];
      if (u && (u.role === 'agent' || u.role === 'admin')) links.push(['/agent', '坐席工作台']);
      if (u && (u.role === 'staff' || u.role === 'head' || u.role === 'admin')) links.push(['/division', '承办单位工作台']);
      if (u) links.push(['/search', '工单查询']);
      if (u && ['campaign_manager', 'supervisor', 'admin'].includes(u.role)) links.push(['/campaigns', '外呼任务']);
      if (u) links.push(['/households', '监测户']);
      if (u && (u.role === 'supervisor' || u.role === 'admin')) links.push(['/wallboard', '监控大屏']);
      if (u && (u.role === 'supervisor' || u.role === 'head' || u.role === 'admin')) links.push(['/stats', '统计分析']);
      if (u) links.push(['/kb', '知识库']);
      if (u && u.role === 'admin') links.push(['/notify', '通知投递']);
      if (u && u.role === 'admin') links.push(['/exchange', '12345对接']);
      if (u && u.role === 'admin') links.push(['/admin', '系统管理']);
      return h('div', null, [
        h('header', { class: 'topbar' }, [
          h('span', { class: 'title' }, '12345 热线 · 乡村振兴工单系统'),
          h('nav', null, links.map(([href, text]) => h('a', { href, class: props.active === href ? 'on' : '' }, text))),
          u ? h('span', { class: ['live', live.online ? '' : 'off'], id: 'live-state', 'data-online': String(live.online) },
            [h('i'), live.online ? '实时连接' : '离线，正在重连…']) : null,
          u ? h('span', { class: 'who' }, u.name || u.username) : null,
          u ? h(PasswordButton) : null,
          u ? h(EP.ElButton, { size: 'small', plain: true, onClick: logout, id: 'logout' }, () => '退出') : null,
        ]),
        h('main', { class: 'page' }, slots.default ? slots.default() : []),
      ]);
    };
  },
};

export function ticketLink(t) {
  return h('a', { href: '/tickets/' + t.id, class: 'el-link el-link--primary' }, t.number || ('#' + t.id));
}

// model binds a form field for render functions (what v-model does in a template).
export function model(obj, key, extra) {
  return { modelValue: obj[key], 'onUpdate:modelValue': (v) => { obj[key] = v; }, ...(extra || {}) };
}

// options renders el-option children from a {code: name} map or [{code, name}] list.
export function options(m) {
  const list = Array.isArray(m) ? m.map((x) => [x.code, x.name]) : Object.entries(m);
  return list.map(([value, label]) => h(EP.ElOption, { key: value, value, label }));
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// newKey is a random idempotency key. crypto.randomUUID exists only in secure contexts (HTTPS or localhost), and an
// intranet console is often plain HTTP, so the key is made from getRandomValues, which exists everywhere.
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
