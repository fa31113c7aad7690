// The attachments (附件) of a ticket: thumbnails of photos, links to documents, and an upload button for those
// who may add to the ticket. The server decides the type from the file's bytes and refuses what it does not
// accept; its refusal is shown as it says it.
import { h, ref, reactive, onMounted, EP, api, uploadForm, toast, errorText, cst } from './lib.js';

const size = (n) => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MB' : Math.max(1, Math.round(n / 1024)) + ' KB');

export const AttachmentsCard = {
  props: { ticketId: Number },
  emits: ['changed'],
  setup(props, { emit }) {
    const st = reactive({ list: [], max: 0, busy: false, error: '' });
    const input = ref(null);
    const load = async () => {
      try {
        const j = await api('GET', `/api/v1/tickets/${props.ticketId}/attachments`);
        st.list = j.attachments || [];
        st.max = j.max_bytes || 0;
      } catch (e) { st.error = errorText(e); }
    };
    onMounted(load);
    const pick = () => input.value && input.value.click();
    const send = async (ev) => {
      const f = ev.target.files && ev.target.files[0];
      ev.target.value = '';
      if (!f) return;
      st.busy = true;
      try {
        await uploadForm(`/api/v1/tickets/${props.ticketId}/attachments`, f);
        toast('已上传：' + f.name);
        await load();
        emit('changed');
      } catch (e) {
        EP.ElMessage({ message: '上传失败：' + errorText(e), type: 'error', duration: 6000 });
      } finally { st.busy = false; }
    };
    return () => h(EP.ElCard, { shadow: 'never', id: 'ticket-attachments' }, {
      header: () => h('div', { style: 'display:flex;align-items:center;gap:10px' }, [
        h('span', null, `附件（${st.list.length}）`),
        h('input', { type: 'file', ref: input, style: 'display:none', id: 'attach-input', accept: 'image/jpeg,image/png,image/gif,image/webp,application/pdf,.docx,.xlsx', onChange: send }),
        h(EP.ElButton, { size: 'small', loading: st.busy, onClick: pick, id: 'attach-upload' }, () => '上传附件'),
        st.max ? h('span', { class: 'muted' }, `照片、PDF、Word、Excel，单个不超过 ${size(st.max)}`) : null,
      ]),
      default: () => st.error ? h('p', { class: 'muted' }, st.error)
        : st.list.length === 0 ? h('p', { class: 'muted' }, '没有附件。')
        : h('div', { style: 'display:flex;flex-wrap:wrap;gap:10px' }, st.list.map((a) => h('a', {
          key: a.id, href: `/api/v1/attachments/${a.id}`, target: '_blank', rel: 'noopener', class: 'attachment', 'data-attachment': a.id,
          style: 'display:flex;flex-direction:column;align-items:center;width:140px;text-decoration:none',
        }, [
          a.has_thumbnail ? h('img', { src: `/api/v1/attachments/${a.id}/thumbnail`, alt: a.filename, style: 'max-width:140px;max-height:105px;border:1px solid #ddd' })
            : h('div', { style: 'width:140px;height:60px;display:flex;align-items:center;justify-content:center;background:#f4f4f5' }, a.content_type === 'application/pdf' ? 'PDF' : '文档'),
          h('span', { style: 'font-size:12px;word-break:break-all' }, a.filename),
          h('span', { class: 'muted', style: 'font-size:12px' }, `${size(a.bytes)} · ${a.uploader || ''} · ${cst(a.created_at)}`),
        ]))),
    });
  },
};
