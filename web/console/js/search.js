// Ticket search: by number, caller name, phone or words of the content.
import { h, ref, reactive, EP, api, model, toastError, Frame, cst, STATUS, STATUS_TYPE, KIND, slaBadge, ticketLink, categories } from './lib.js';

export const SearchPanel = {
  setup() {
    const q = reactive({ by: 'text', value: '' });
    const rows = ref(null);
    const busy = ref(false);
    const cats = ref(new Map());
    categories().then((c) => { cats.value = new Map(c.map((x) => [x.code, x.name])); }).catch(() => {});
    const run = async () => {
      const v = q.value.trim();
      if (!v) { rows.value = null; return; }
      const p = new URLSearchParams({ limit: '50' });
      p.set({ text: 'q', number: 'q', name: 'caller_name', phone: 'phone' }[q.by], v);
      busy.value = true;
      try { rows.value = (await api('GET', '/api/v1/tickets?' + p)).tickets.map((x) => ({ ...x.ticket, sla: x.sla })); } catch (e) { toastError(e); } finally { busy.value = false; }
    };
    return () => h('div', { id: 'search' }, [
      h('div', { style: 'display:flex;gap:8px;margin-bottom:10px' }, [
        h(EP.ElSelect, model(q, 'by', { style: 'width:130px' }), () => [['text', '内容/编号'], ['name', '来电人姓名'], ['phone', '联系电话']].map(([value, label]) => h(EP.ElOption, { value, label }))),
        h(EP.ElInput, model(q, 'value', { id: 'search-input', placeholder: '输入后回车', clearable: true, onKeyup: (e) => { if (e.key === 'Enter') run(); } })),
        h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: run, id: 'search-go' }, () => '查询'),
      ]),
      rows.value === null ? h('p', { class: 'muted' }, '按工单编号、来电人姓名、联系电话或诉求内容查询。')
        : h(EP.ElTable, { data: rows.value, size: 'small', emptyText: '没有找到工单', maxHeight: 460 }, () => [
          h(EP.ElTableColumn, { label: '编号', width: 150 }, { default: ({ row }) => ticketLink(row) }),
          h(EP.ElTableColumn, { label: '类型', width: 60 }, { default: ({ row }) => KIND[row.kind] || row.kind }),
          h(EP.ElTableColumn, { label: '类别', width: 130 }, { default: ({ row }) => cats.value.get(row.category) || row.category }),
          h(EP.ElTableColumn, { label: '内容', minWidth: 200, showOverflowTooltip: true }, { default: ({ row }) => row.content }),
          h(EP.ElTableColumn, { label: '状态', width: 80 }, { default: ({ row }) => h(EP.ElTag, { size: 'small', type: STATUS_TYPE[row.status] }, () => STATUS[row.status] || row.status) }),
          h(EP.ElTableColumn, { label: '期限', width: 130 }, { default: ({ row }) => slaBadge(row) }),
          h(EP.ElTableColumn, { label: '受理时间', width: 145 }, { default: ({ row }) => cst(row.created_at) }),
        ]),
    ]);
  },
};

export const SearchPage = {
  setup() {
    return () => h(Frame, { active: '/search' }, () => h(EP.ElCard, { shadow: 'never' }, { header: () => '工单查询', default: () => h(SearchPanel) }));
  },
};
