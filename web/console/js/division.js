// 承办单位工作台: the unit's live lists with counts (待签收, 今日到期, 已超期, 被退回, 督办/催办, 协办), soonest deadline
// first, with countdown badges; lists and counts follow the event stream without reloading the page.
import { h, ref, reactive, onMounted, EP, api, session, onLive, toast, toastError, errorText, Frame, cst, debounce,
  STATUS, STATUS_TYPE, KIND, URGENCY, slaBadge, ticketLink, categories } from './lib.js';

const LISTS = [
  ['unsigned', '待签收', 'status=dispatched'],
  ['due_today', '今日到期', 'due_today=true'],
  ['overdue', '已超期', 'overdue=true'],
  ['returned', '被退回', 'sent_back=true'],
  ['pressed', '督办/催办', 'pressed=true'],
  ['co_handling', '协办', 'co_handling=true'],
];

export const DivisionPage = {
  setup() {
    const counts = reactive({});
    const tab = ref('unsigned');
    const rows = ref([]);
    const loading = ref(false);
    const cats = ref(new Map());
    categories().then((c) => { cats.value = new Map(c.map((x) => [x.code, x.name])); }).catch(() => {});

    const loadCounts = async () => {
      try { Object.assign(counts, await api('GET', '/api/v1/ticket-counts')); } catch (e) { /* keep the last */ }
    };
    const loadList = async () => {
      const l = LISTS.find((x) => x[0] === tab.value);
      // Lists of tickets the unit leads name the unit; 协办 lists where it co-handles.
      const unit = tab.value === 'co_handling' ? '' : '&unit=' + (session.user.unitId || '');
      loading.value = true;
      try {
        const j = await api('GET', `/api/v1/tickets?${l[2]}${unit}&sort=deadline&limit=200`);
        rows.value = j.tickets.map((x) => ({ ...x.ticket, sla: x.sla, allowed: x.allowed_actions, region_name: x.region_name }))
          .filter((t) => t.status !== 'closed');
      } catch (e) { toastError(e); } finally { loading.value = false; }
    };
    const refresh = debounce(() => { loadCounts(); loadList(); }, 250);
    onMounted(() => { loadCounts(); loadList(); });
    onLive((f) => {
      if (f.type === 'reload' || (f.type || '').startsWith('ticket.') || (f.type || '').startsWith('sla.')) refresh();
    });

    const sign = async (t) => {
      try {
        await api('POST', `/api/v1/tickets/${t.id}/sign`, { version: t.version });
        toast(`已签收 ${t.number}`);
      } catch (e) {
        EP.ElMessageBox.alert(errorText(e), '签收未成功', { type: 'warning' }).catch(() => {});
      }
      refresh();
    };

    return () => h(Frame, { active: '/division' }, () => h(EP.ElCard, { shadow: 'never' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:12px' }, [
        h('span', null, '承办单位工作台'),
        h('span', { class: 'muted' }, '列表按期限先后排序，实时更新'),
      ]),
      default: () => [
        h(EP.ElTabs, { class: 'cnt-tabs', modelValue: tab.value, 'onUpdate:modelValue': (v) => { tab.value = v; loadList(); } }, () =>
          LISTS.map(([key, label]) => h(EP.ElTabPane, { name: key }, {
            label: () => h('span', { id: 'tab-' + key }, [label, ' ', h(EP.ElBadge, { value: counts[key] ?? 0, type: key === 'overdue' ? 'danger' : key === 'due_today' ? 'warning' : 'primary',
              class: 'cnt', 'data-count': String(counts[key] ?? 0), showZero: true })]),
          }))),
        h(EP.ElTable, { data: rows.value, size: 'default', emptyText: loading.value ? '加载中…' : '暂无工单', maxHeight: 520, id: 'division-list', rowKey: 'id' }, () => [
          h(EP.ElTableColumn, { label: '工单编号', width: 160 }, { default: ({ row }) => [ticketLink(row), row.urgency === 'urgent' ? h(EP.ElTag, { size: 'small', type: 'danger', style: 'margin-left:4px' }, () => URGENCY.urgent) : null] }),
          h(EP.ElTableColumn, { label: '期限', width: 150 }, { default: ({ row }) => slaBadge(row) }),
          h(EP.ElTableColumn, { label: '类别', width: 180 }, { default: ({ row }) => (KIND[row.kind] || '') + '·' + (cats.value.get(row.category) || row.category) }),
          h(EP.ElTableColumn, { label: '区域', width: 150, showOverflowTooltip: true }, { default: ({ row }) => row.region_name || row.region_code }),
          h(EP.ElTableColumn, { label: '诉求内容', minWidth: 220, showOverflowTooltip: true }, { default: ({ row }) => row.content }),
          h(EP.ElTableColumn, { label: '状态', width: 90 }, { default: ({ row }) => h(EP.ElTag, { size: 'small', type: STATUS_TYPE[row.status] }, () => STATUS[row.status] || row.status) }),
          h(EP.ElTableColumn, { label: '受理时间', width: 145 }, { default: ({ row }) => cst(row.created_at) }),
          h(EP.ElTableColumn, { label: '操作', width: 120 }, { default: ({ row }) => [
            (row.allowed || []).includes('sign') ? h(EP.ElButton, { size: 'small', type: 'primary', link: true, onClick: () => sign(row), class: 'quick-sign' }, () => '签收') : null,
            h('a', { href: '/tickets/' + row.id, class: 'el-link el-link--primary', style: 'margin-left:8px' }, '办理'),
          ] }),
        ]),
      ],
    }));
  },
};
