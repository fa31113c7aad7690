// The public pages: the form (网上留言) and the progress query. Plain JS (no build, no framework) so that it
// runs in WeChat's browser and on old phones.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var statusNames = { 'new': '已受理', dispatched: '已派单，待承办单位签收', signed: '承办单位办理中', replied: '已答复',
    callback: '回访中', closed: '已办结', returned: '重新派单中' };

  function api(method, path, body) {
    // A FormData body (the form with photos) sets its own multipart Content-Type.
    var multi = typeof FormData !== 'undefined' && body instanceof FormData;
    return fetch(path, { method: method, headers: body && !multi ? { 'Content-Type': 'application/json' } : {},
      body: multi ? body : body ? JSON.stringify(body) : undefined, credentials: 'omit' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) { var e = new Error(message(r.status, j)); e.status = r.status; throw e; }
          return j;
        });
      });
  }
  var fieldNames = { kind: '诉求类型', category: '事项分类', region_code: '所在乡镇', content: '诉求内容', phone: '手机号码',
    challenge: '验证', nonce: '验证', code: '查询码', photo: '照片' };
  function message(status, j) {
    if (status === 429) return '操作过于频繁，请稍后再试。';
    if (status === 415) return '照片格式不支持，请上传 JPG、PNG、GIF 或 WebP 图片。';
    if (status === 413) return '照片太大，请换一张或压缩后再传。';
    if (status === 404) return '未找到该工单，请核对工单号和查询码。';
    if (j && j.fields) {
      return Object.keys(j.fields).map(function (f) { return (fieldNames[f] || f) + '填写有误'; }).join('；');
    }
    return '提交失败，请稍后再试。';
  }
  function fill(sel, items, placeholder) {
    sel.innerHTML = '';
    var o = document.createElement('option');
    o.value = ''; o.textContent = placeholder; sel.appendChild(o);
    items.forEach(function (it) {
      var op = document.createElement('option');
      op.value = it.code; op.textContent = it.name; sel.appendChild(op);
    });
  }
  function regions(parent, sel, placeholder) {
    return api('GET', '/api/v1/public/regions' + (parent ? '?parent=' + encodeURIComponent(parent) : ''))
      .then(function (j) { fill(sel, j.regions, placeholder); sel.disabled = false; });
  }

  function initForm() {
    var form = $('form');
    if (!form) return;
    // Photos picked one at a time (capture: WeChat opens the camera), kept here until submission.
    var photos = [], maxPhotos = 0, maxBytes = 0;
    function listPhotos() {
      var ul = $('photo-list');
      ul.innerHTML = '';
      photos.forEach(function (f, i) {
        var li = document.createElement('li');
        li.textContent = f.name + ' ';
        var del = document.createElement('a');
        del.href = '#'; del.textContent = '删除';
        del.addEventListener('click', function (ev) { ev.preventDefault(); photos.splice(i, 1); listPhotos(); });
        li.appendChild(del); ul.appendChild(li);
      });
      $('photo').disabled = photos.length >= maxPhotos;
    }
    $('photo').addEventListener('change', function () {
      var f = this.files && this.files[0];
      this.value = '';
      if (!f) return;
      if (!/^image\//.test(f.type)) { $('error').textContent = '只能上传图片。'; return; }
      if (maxBytes && f.size > maxBytes) { $('error').textContent = '照片太大，请换一张。'; return; }
      $('error').textContent = '';
      if (photos.length < maxPhotos) photos.push(f);
      listPhotos();
    });
    api('GET', '/api/v1/public/form').then(function (j) {
      fill($('kind'), j.kinds, '请选择');
      fill($('category'), j.categories, '请选择');
      if (j.photos) {
        maxPhotos = j.max_photos; maxBytes = j.photo_max_bytes;
        $('photo-max').textContent = maxPhotos; $('photo-box').hidden = false;
      }
    }).catch(function (e) { $('error').textContent = e.message; });
    regions('', $('pref'), '请选择市州');
    $('pref').addEventListener('change', function () {
      $('township').disabled = true; fill($('township'), [], '请先选择县市区');
      if (this.value) regions(this.value, $('county'), '请选择县市区');
    });
    $('county').addEventListener('change', function () {
      if (this.value) regions(this.value, $('township'), '请选择乡镇（街道）');
    });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var body = { kind: $('kind').value, category: $('category').value, region_code: $('township').value,
        content: $('content').value, phone: $('phone').value.replace(/\s/g, ''), name: $('name').value };
      var missing = [];
      if (!body.kind) missing.push('诉求类型');
      if (!body.category) missing.push('事项分类');
      if (!body.region_code) missing.push('所在乡镇');
      if (body.content.trim().length < 5) missing.push('诉求内容（至少 5 字）');
      if (!/^1[3-9]\d{9}$/.test(body.phone)) missing.push('手机号码');
      if (missing.length) { $('error').textContent = '请填写：' + missing.join('、'); return; }
      var btn = $('submit');
      btn.disabled = true; btn.textContent = '正在验证…'; $('error').textContent = '';
      api('POST', '/api/v1/public/challenges').then(function (c) {
        // Let the button repaint before the browser is busy with the proof of work.
        return new Promise(function (res) { setTimeout(res, 30); }).then(function () {
          body.challenge = c.challenge;
          body.nonce = window.hotlinePow(c.challenge, c.bits);
          btn.textContent = '正在提交…';
          if (!photos.length) return api('POST', '/api/v1/public/tickets', body);
          // The ticket part first: the server checks it before reading a photo.
          var fd = new FormData();
          fd.append('ticket', new Blob([JSON.stringify(body)], { type: 'application/json' }));
          photos.forEach(function (f) { fd.append('photo', f, f.name); });
          return api('POST', '/api/v1/public/tickets', fd);
        });
      }).then(function (t) {
        form.hidden = true;
        $('number').textContent = t.number;
        $('code').textContent = t.query_code;
        $('progress-link').href = '/liuyan/progress#' + encodeURIComponent(t.number) + ':' + encodeURIComponent(t.query_code);
        $('done').hidden = false;
        photos = []; listPhotos();
        window.scrollTo(0, 0);
      }).catch(function (e) {
        $('error').textContent = e.message;
      }).then(function () { btn.disabled = false; btn.textContent = '提交留言'; });
    });
  }

  function initQuery() {
    var form = $('query');
    if (!form) return;
    var h = decodeURIComponent(location.hash.slice(1)).split(':');
    if (h.length === 2) { $('q-number').value = h[0]; $('q-code').value = h[1]; }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var number = $('q-number').value.trim(), code = $('q-code').value.trim();
      if (!number || !code) { $('q-error').textContent = '请填写工单号和查询码'; return; }
      $('q-error').textContent = '';
      api('GET', '/api/v1/public/tickets/' + encodeURIComponent(number) + '?code=' + encodeURIComponent(code))
        .then(function (p) {
          $('r-number').textContent = p.number;
          $('r-status').textContent = statusNames[p.status] || p.status;
          $('r-created').textContent = new Date(p.created_at).toLocaleString('zh-CN', { hour12: false });
          var ul = $('r-replies'); ul.innerHTML = '';
          if (!p.replies.length) { var li = document.createElement('li'); li.textContent = '暂无答复，承办单位正在办理。'; ul.appendChild(li); }
          p.replies.forEach(function (r) {
            var li = document.createElement('li');
            li.textContent = new Date(r.at).toLocaleDateString('zh-CN') + '：' + r.text; ul.appendChild(li);
          });
          $('result').hidden = false;
        }).catch(function (e) { $('q-error').textContent = e.message; $('result').hidden = true; });
    });
  }
  initForm();
  initQuery();
})();
