// nst-cli serve: the page. Plain JS, no build step. Talks to the JSON API (docs/API.md).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  content: null, // {kind: 'gallery', id} | {kind: 'upload', files, url}: several files, a job each
  styles: [], // [{key, kind, id | file, url, title, weight}]
  watching: null, // job id
  source: null, // EventSource
  history: [], // [[step, loss]]
  totalSteps: 1,
  chartQueued: false,
  listKey: null,
};

// ---------- helpers ----------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmtSeconds(s) {
  if (s == null || !isFinite(s)) return '–';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function fmtLoss(x) {
  return x == null ? '–' : Number(x).toExponential(3);
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

// ---------- the form: gallery, uploads, blend weights ----------
function card(opts) {
  // opts: {type: 'radio'|'checkbox', name, title, url, checked, onchange}
  const input = el('input', { type: opts.type, name: opts.name, checked: opts.checked, 'aria-label': opts.title });
  input.addEventListener('change', opts.onchange);
  return el('label', { class: 'card', title: opts.title },
    input, el('img', { src: opts.url, alt: '' }), el('span', {}, opts.title));
}

function renderContentGallery() {
  const box = $('content-gallery');
  box.replaceChildren();
  const choices = state.info.gallery.filter((g) => g.role === 'content')
    .map((g) => ({ kind: 'gallery', id: g.id, url: g.url, title: g.title }));
  if (state.content && state.content.kind === 'upload') choices.push(state.content);
  for (const c of choices) {
    const checked = state.content && state.content.kind === c.kind &&
      (c.kind === 'gallery' ? state.content.id === c.id : true);
    box.append(card({
      type: 'radio', name: 'content-choice', title: c.title, url: c.url, checked,
      onchange: () => { state.content = c; },
    }));
  }
}

function renderStyleGallery() {
  const box = $('style-gallery');
  box.replaceChildren();
  const gallery = state.info.gallery.filter((g) => g.role === 'style')
    .map((g) => ({ key: `g:${g.id}`, kind: 'gallery', id: g.id, url: g.url, title: g.title, weight: 1 }));
  const uploads = state.styles.filter((s) => s.kind === 'upload');
  for (const s of [...gallery, ...uploads]) {
    const checked = state.styles.some((x) => x.key === s.key);
    box.append(card({
      type: 'checkbox', name: 'style-choice', title: s.title, url: s.url, checked,
      onchange: (ev) => {
        if (ev.target.checked) {
          if (!state.styles.some((x) => x.key === s.key)) state.styles.push(s);
        } else {
          // An unticked upload goes away; a gallery painting stays on offer.
          state.styles = state.styles.filter((x) => x.key !== s.key);
        }
        renderStyleGallery();
      },
    }));
  }
  renderBlend();
}

function renderBlend() {
  const box = $('blend');
  box.replaceChildren();
  if (state.styles.length < 2) return;
  const total = state.styles.reduce((a, s) => a + Number(s.weight), 0) || 1;
  box.append(el('div', { class: 'muted' }, 'Blend weights'));
  for (const s of state.styles) {
    const pct = el('output', {}, `${Math.round((100 * s.weight) / total)} %`);
    const range = el('input', {
      type: 'range', min: '0', max: '1', step: '0.05', value: String(s.weight),
      'aria-label': `blend weight of ${s.title}`,
    });
    range.addEventListener('input', () => { s.weight = Number(range.value); renderBlendPercents(); });
    box.append(el('label', { class: 'blend-row' }, el('span', {}, s.title), range, pct));
  }
}

function renderBlendPercents() {
  const total = state.styles.reduce((a, s) => a + Number(s.weight), 0) || 1;
  const outs = $('blend').querySelectorAll('output');
  state.styles.forEach((s, i) => { if (outs[i]) outs[i].value = `${Math.round((100 * s.weight) / total)} %`; });
}

function checkFileSize(file) {
  const max = state.info.limits.max_upload_bytes;
  if (file.size > max) {
    throw new Error(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; this server takes at most ${(max / 1048576).toFixed(0)} MiB per job`);
  }
}

// One or more photos: several become one job each (the card shows the first).
function onContentFile() {
  const files = [...$('content-file').files];
  $('form-error').textContent = '';
  $('form-note').textContent = '';
  if (!files.length) return;
  try { files.forEach(checkFileSize); } catch (e) { $('form-error').textContent = e.message; return; }
  if (state.content && state.content.kind === 'upload') URL.revokeObjectURL(state.content.url);
  const title = files.length > 1 ? `${files.length} photos: ${files.map((f) => f.name).join(', ')}` : files[0].name;
  state.content = { kind: 'upload', files, url: URL.createObjectURL(files[0]), title };
  renderContentGallery();
}

let uploadCounter = 0;
function onStyleFiles() {
  $('form-error').textContent = '';
  for (const file of $('style-files').files) {
    try { checkFileSize(file); } catch (e) { $('form-error').textContent = e.message; continue; }
    uploadCounter += 1;
    state.styles.push({
      key: `u:${uploadCounter}`, kind: 'upload', file, url: URL.createObjectURL(file), title: file.name, weight: 1,
    });
  }
  $('style-files').value = '';
  renderStyleGallery();
}

// The images and blend of the form, or null after saying what is missing.
function imagesForm() {
  const err = $('form-error');
  err.textContent = '';
  $('form-note').textContent = '';
  if (!state.content) { err.textContent = 'Choose or upload a content image.'; return null; }
  if (!state.styles.length) { err.textContent = 'Choose or upload at least one style image.'; return null; }
  const fd = new FormData();
  if (state.content.kind === 'gallery') fd.append('content_gallery', state.content.id);
  else for (const f of state.content.files) fd.append('content', f, f.name);
  for (const s of state.styles) {
    if (s.kind === 'gallery') fd.append('style_gallery', s.id);
    else fd.append('style', s.file, s.file.name);
  }
  if (state.styles.length > 1) fd.append('style_weights', state.styles.map((s) => s.weight).join(','));
  return fd;
}

// Instant: the feed-forward picture, shown at once, with the option to refine it.
async function onInstant() {
  const fd = imagesForm();
  if (!fd) return;
  fd.append('size', $('size').value);
  fd.append('original_colors', $('original_colors').checked ? 'true' : 'false');
  const button = $('instant');
  button.disabled = true;
  const t0 = performance.now();
  try {
    const r = await fetch('/api/instant', { method: 'POST', body: fd });
    if (!r.ok) {
      const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
      throw new Error(body.error);
    }
    const url = URL.createObjectURL(await r.blob());
    const ms = Math.round(performance.now() - t0);
    if (state.source) state.source.close();
    state.source = null;
    state.watching = null;
    history.replaceState(null, '', location.pathname);
    $('job-empty').hidden = true;
    $('job-view').hidden = false;
    $('job-id').textContent = '';
    $('job-status').textContent = 'instant';
    $('job-status').className = 'badge done';
    $('job-progress-text').textContent = `feed-forward network · ${ms} ms`;
    $('job-bar').value = 1;
    $('job-error').textContent = '';
    $('snapshots').replaceChildren();
    state.history = [];
    drawChart();
    const img = $('preview');
    img.dataset.want = url;
    img.src = url;
    $('preview-caption').textContent = `${state.content.title} × ${state.styles.map((s) => s.title).join(' + ')} · ${$('size').value} px · instant`;
    $('cancel').hidden = true;
    $('refine').hidden = false;
    const dl = $('download');
    dl.href = url;
    dl.setAttribute('download', 'nst-instant.png');
    dl.hidden = false;
    highlightList();
  } catch (e) {
    $('form-error').textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// Refine: an optimisation job that starts from the instant picture.
function onRefine() {
  $('init').value = 'fast';
  $('job-form').requestSubmit();
}

async function onSubmit(ev) {
  ev.preventDefault();
  const err = $('form-error');
  const fd = imagesForm();
  if (!fd) return;
  for (const name of ['size', 'iterations', 'scales', 'optimizer', 'device', 'content_weight',
    'style_weight', 'tv_weight', 'style_scale', 'style_loss', 'init', 'seed', 'preview_every']) {
    fd.append(name, $(name).value);
  }
  if ($('optimizer').value === 'adam') fd.append('learning_rate', $('learning_rate').value);
  fd.append('original_colors', $('original_colors').checked ? 'true' : 'false');
  const button = $('start');
  button.disabled = true;
  try {
    // One photo answers its job; several, {jobs: [...]} (a job each, queued in order).
    const answer = await api('/api/jobs', { method: 'POST', body: fd });
    const jobs = answer.jobs || [answer];
    $('form-note').textContent = jobs.length > 1 ? `${jobs.length} jobs queued, one per photo` : '';
    watch(jobs[0].id);
    refreshList();
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---------- watching a job ----------
function watch(id) {
  if (state.source) state.source.close();
  state.source = null;
  state.watching = id;
  state.history = [];
  if (location.hash !== `#job=${id}`) history.replaceState(null, '', `#job=${id}`);
  $('job-empty').hidden = true;
  $('job-view').hidden = false;
  $('job-id').textContent = id;
  $('job-error').textContent = '';
  $('refine').hidden = true;
  $('preview').removeAttribute('src');
  delete $('preview').dataset.want;
  drawChart();
  const es = new EventSource(`/api/jobs/${id}/events`);
  state.source = es;
  es.addEventListener('status', (e) => renderJob(JSON.parse(e.data)));
  es.addEventListener('progress', (e) => renderProgress(JSON.parse(e.data)));
  es.addEventListener('preview', (e) => showPreview(JSON.parse(e.data).url));
  es.addEventListener('done', (e) => { es.close(); renderJob(JSON.parse(e.data)); refreshList(); });
  es.addEventListener('deleted', () => {
    es.close();
    $('job-status').textContent = 'deleted';
    $('job-status').className = 'badge failed';
    refreshList();
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED && state.watching === id) {
      $('job-error').textContent = 'Lost the connection to this job (it may have been deleted).';
    }
  };
  highlightList();
}

function showPreview(url) {
  if (!url) return;
  const img = $('preview');
  if (img.dataset.want === url) return;
  img.dataset.want = url;
  // Load off-screen first, so the picture never flickers to blank.
  const next = new Image();
  next.onload = () => { if (img.dataset.want === url) img.src = url; };
  next.src = url;
}

function renderJob(job) {
  if (job.id !== state.watching) return;
  const status = $('job-status');
  status.textContent = job.status === 'queued' && job.position ? `queued · #${job.position}` : job.status;
  status.className = `badge ${job.status}`;
  if (job.history) {
    state.history = job.history;
  }
  state.totalSteps = (job.params.iterations || 1) * (job.params.scales || 1);
  if (job.progress) renderProgress(job.progress, true);
  else $('job-progress-text').textContent = job.status === 'queued'
    ? (job.position > 1 ? `${job.position - 1} job(s) ahead` : 'next in line')
    : '';
  const done = job.status === 'done' || job.status === 'cancelled' || job.status === 'failed';
  $('cancel').hidden = done;
  $('cancel').disabled = false;
  const dl = $('download');
  if (job.result_url) {
    dl.href = job.result_url;
    dl.setAttribute('download', `nst-${job.id}.png`);
    dl.hidden = false;
  } else {
    dl.hidden = true;
    dl.removeAttribute('href');
  }
  showPreview(job.result_url || job.preview_url);
  $('preview-caption').textContent = `${job.content.name} × ${job.styles.map((s) => s.name).join(' + ')}`
    + ` · ${job.params.size} px · ${job.params.optimizer}`
    + (job.params.style_loss && job.params.style_loss !== 'gram' ? ` · ${job.params.style_loss}` : '');
  $('job-error').textContent = job.error || '';
  const strip = $('snapshots');
  strip.replaceChildren(...(job.snapshots || []).map((s) => el('a', { href: s.url, target: '_blank', title: `iteration ${s.step}` },
    el('img', { src: s.url, alt: `iteration ${s.step}`, loading: 'lazy' }), el('span', {}, String(s.step)))));
  drawChart();
}

function renderProgress(p, fromStatus) {
  if (!fromStatus) {
    state.history.push([p.step, p.loss]);
    scheduleChart();
  }
  state.totalSteps = p.total_steps || state.totalSteps;
  $('job-bar').value = p.step / (p.total_steps || 1);
  const running = $('job-status').textContent === 'running';
  $('job-progress-text').textContent =
    `iteration ${p.step}/${p.total_steps} · scale ${p.scale + 1}/${p.scales} (${p.width}×${p.height})`
    + ` · loss ${fmtLoss(p.loss)} · ${fmtSeconds(p.elapsed_seconds)}`
    + (running ? ` · ETA ${fmtSeconds(p.eta_seconds)}` : '');
}

function scheduleChart() {
  if (state.chartQueued) return;
  state.chartQueued = true;
  requestAnimationFrame(() => { state.chartQueued = false; drawChart(); });
}

// The loss curve: log10(loss) against the iteration, drawn as SVG.
function drawChart() {
  const svg = $('loss-chart');
  const NS = 'http://www.w3.org/2000/svg';
  const W = 420, H = 130, L = 52, R = 8, T = 10, B = 22;
  svg.replaceChildren();
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    svg.append(e);
    return e;
  };
  mk('rect', { x: L, y: T, width: W - L - R, height: H - T - B, class: 'plot' });
  const pts = state.history.filter(([, y]) => y > 0 && isFinite(y));
  mk('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis' }, 'iteration');
  if (pts.length === 0) {
    mk('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'loss (log scale) appears here');
    return;
  }
  const ys = pts.map(([, y]) => Math.log10(y));
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const xmax = Math.max(state.totalSteps, pts[pts.length - 1][0], 2);
  const sx = (x) => L + ((x - 1) / (xmax - 1)) * (W - L - R);
  const sy = (y) => T + ((hi - y) / (hi - lo)) * (H - T - B);
  mk('polyline', { points: pts.map(([x], i) => `${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join(' '), class: 'line' });
  const last = pts[pts.length - 1];
  mk('circle', { cx: sx(last[0]), cy: sy(Math.log10(last[1])), r: 3, class: 'dot' });
  mk('text', { x: L - 4, y: T + 9, 'text-anchor': 'end', class: 'axis' }, fmtLoss(10 ** hi));
  mk('text', { x: L - 4, y: H - B, 'text-anchor': 'end', class: 'axis' }, fmtLoss(10 ** lo));
  mk('text', { x: L, y: H - 8, 'text-anchor': 'start', class: 'axis' }, '1');
  mk('text', { x: W - R, y: H - 8, 'text-anchor': 'end', class: 'axis' }, String(xmax));
}

async function onCancel() {
  if (!state.watching) return;
  $('cancel').disabled = true;
  try {
    await api(`/api/jobs/${state.watching}/cancel`, { method: 'POST' });
  } catch (e) {
    $('job-error').textContent = e.message;
  }
}

// ---------- the job list ----------
async function refreshList() {
  let jobs;
  try {
    jobs = (await api('/api/jobs')).jobs;
  } catch (_) { return; }
  // Rebuild only when something shown changed (keeps thumbnails from reloading).
  const key = JSON.stringify(jobs.map((j) => [j.id, j.status, j.position, j.preview_step, j.result_url]));
  if (key === state.listKey) return;
  state.listKey = key;
  const list = $('job-list');
  list.replaceChildren(...jobs.map((j) => {
    const thumb = j.result_url || j.preview_url
      || (j.content.source === 'gallery' ? `/api/gallery/${j.content.name}` : null);
    const label = j.status === 'queued' ? `queued #${j.position}` : j.status;
    const created = new Date(j.created * 1000);
    const when = created.toDateString() === new Date().toDateString()
      ? created.toLocaleTimeString() : created.toLocaleString();
    const del = el('button', { type: 'button', class: 'icon', title: 'delete this job', 'aria-label': `delete job ${j.id}` }, '×');
    del.addEventListener('click', async (ev) => {
      ev.stopPropagation();
      if (!confirm('Delete this job and its images?')) return;
      try { await api(`/api/jobs/${j.id}`, { method: 'DELETE' }); } catch (e) { alert(e.message); }
      refreshList();
    });
    const item = el('li', { 'data-id': j.id, tabindex: '0' },
      thumb ? el('img', { src: thumb, alt: '' }) : el('span', { class: 'noimg' }),
      el('div', {},
        el('span', { class: `badge ${j.status}` }, label),
        el('div', { class: 'muted small' }, `${j.params.size} px · ${j.params.iterations} it · ${when}`)),
      del);
    item.addEventListener('click', () => watch(j.id));
    item.addEventListener('keydown', (e) => { if (e.key === 'Enter') watch(j.id); });
    return item;
  }));
  if (!jobs.length) list.append(el('li', { class: 'muted' }, 'No jobs yet.'));
  highlightList();
}

function highlightList() {
  for (const li of $('job-list').children) li.classList.toggle('current', li.dataset.id === state.watching);
}

// ---------- start ----------
async function init() {
  try {
    state.info = await api('/api/info');
  } catch (e) {
    $('form-error').textContent = `Cannot reach the server: ${e.message}`;
    return;
  }
  const info = state.info;
  $('server-info').textContent = `v${info.version} · ${info.devices.find((d) => d.available).label}`;
  for (const d of info.devices) {
    $('device').append(el('option', { value: d.id, disabled: !d.available },
      d.available ? d.label : `${d.label} — ${d.reason}`));
  }
  $('iterations').max = info.limits.max_iterations;
  for (const o of $('size').options) o.disabled = Number(o.value) > info.limits.max_size;
  const content = info.gallery.find((g) => g.role === 'content');
  if (content) state.content = { kind: 'gallery', id: content.id, url: content.url, title: content.title };
  const style = info.gallery.find((g) => g.role === 'style');
  if (style) state.styles = [{ key: `g:${style.id}`, kind: 'gallery', id: style.id, url: style.url, title: style.title, weight: 1 }];
  renderContentGallery();
  renderStyleGallery();
  $('content-file').addEventListener('change', onContentFile);
  $('style-files').addEventListener('change', onStyleFiles);
  $('optimizer').addEventListener('change', () => { $('lr-row').hidden = $('optimizer').value !== 'adam'; });
  $('job-form').addEventListener('submit', onSubmit);
  $('instant').addEventListener('click', onInstant);
  $('refine').addEventListener('click', onRefine);
  $('instant').disabled = !info.instant;
  if (!info.instant) $('instant').title = 'The instant networks are not installed on this server (nst-cli weights fetch).';
  $('cancel').addEventListener('click', onCancel);
  drawChart();
  await refreshList();
  const m = location.hash.match(/^#job=([0-9a-f]{16})$/);
  if (m) watch(m[1]);
  setInterval(() => { if (!document.hidden) refreshList(); }, 4000);
}

document.addEventListener('DOMContentLoaded', init);
