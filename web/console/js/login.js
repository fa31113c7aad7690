// The login page: username and password; on success, the page this role works in (or where the user was going).
import { h, ref, reactive, EP, login, homeFor, Frame, errorText, APIError } from './lib.js';

export const LoginPage = {
  setup() {
    const form = reactive({ username: '', password: '' });
    const busy = ref(false);
    const error = ref('');
    const submit = async () => {
      if (!form.username || !form.password) { error.value = '请输入用户名和密码'; return; }
      busy.value = true;
      error.value = '';
      try {
        const u = await login(form.username.trim(), form.password);
        const next = new URLSearchParams(location.search).get('next');
        location.assign(next && next.startsWith('/') && !next.startsWith('//') ? next : homeFor(u));
      } catch (e) {
        if (e instanceof APIError && e.status === 401) error.value = '用户名或密码错误';
        else error.value = errorText(e);
        busy.value = false;
      }
    };
    return () => h(Frame, null, () => h('div', { class: 'login-wrap' }, [
      h(EP.ElCard, { class: 'login-card', shadow: 'always' }, {
        header: () => '登录 · 湖南省乡村振兴局 12345 热线',
        default: () => h(EP.ElForm, { labelPosition: 'top', onSubmit: (e) => { e.preventDefault(); submit(); } }, () => [
          h(EP.ElFormItem, { label: '用户名' }, () => h(EP.ElInput, { modelValue: form.username, 'onUpdate:modelValue': (v) => { form.username = v; },
            id: 'login-username', autocomplete: 'username', autofocus: true })),
          h(EP.ElFormItem, { label: '密码' }, () => h(EP.ElInput, { modelValue: form.password, 'onUpdate:modelValue': (v) => { form.password = v; },
            id: 'login-password', type: 'password', showPassword: true, autocomplete: 'current-password',
            onKeyup: (e) => { if (e.key === 'Enter') submit(); } })),
          error.value ? h(EP.ElAlert, { type: 'error', title: error.value, closable: false, showIcon: true, id: 'login-error' }) : null,
          h(EP.ElFormItem, { style: 'margin-top:16px' }, () => h(EP.ElButton, { type: 'primary', loading: busy.value, onClick: submit, id: 'login-submit', style: 'width:100%' }, () => '登 录')),
        ]),
      }),
    ]));
  },
};
