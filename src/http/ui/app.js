// The machines page: polls /api/machines and renders it; the selected machine's timeline
// comes from /api/machines/:mac. Every value is set with textContent: MACs, hostnames and
// paths come from the network and must never be parsed as HTML.

const POLL_MS = 2000;
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}

function ago(iso, nowIso) {
  const s = Math.max(0, Math.round((Date.parse(nowIso) - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s ago`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}

function clock(iso) {
  return `${new Date(iso).toLocaleTimeString([], { hour12: false })}.${String(new Date(iso).getMilliseconds()).padStart(3, '0')}`;
}

function badge(state) {
  return el('span', { class: `badge state-${state}`, 'data-state': state }, state);
}

function selectedMac() {
  return decodeURIComponent(location.hash.replace(/^#/, '')) || undefined;
}

function detailText(detail) {
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
}

/** Rows matching every word of the filter box (MAC in any case and separator, UUID, IP, state, last step). */
function matchesFilter(m) {
  const words = $('#filter').value.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = [m.mac, m.mac.replaceAll(':', ''), m.mac.replaceAll(':', '-'), m.uuid ?? '', m.ip ?? '', m.state, m.lastStep ?? '', m.reason].join(' ').toLowerCase();
  return words.every((w) => hay.includes(w.replaceAll('.', '')) || hay.includes(w));
}

let lastList;
function renderMachines(data) {
  lastList = data;
  const body = $('#machines tbody');
  const selected = selectedMac();
  const counts = {};
  for (const m of data.machines) counts[m.state] = (counts[m.state] ?? 0) + 1;
  const parts = [`${data.machines.length} machine${data.machines.length === 1 ? '' : 's'}`];
  for (const state of ['stalled', 'failed', 'booting', 'booted', 'ignored']) if (counts[state]) parts.push(`${counts[state]} ${state}`);
  $('#summary').textContent = parts.join(' · ');
  $('#stall-after').textContent = String(data.stallAfterSeconds);
  $('#empty').hidden = data.machines.length > 0;
  // Only a shared store (the fleet view) names the appliance that served each step.
  const fleet = data.machines.some((m) => m.appliances);
  for (const th of document.querySelectorAll('#machines th.fleet')) th.hidden = !fleet;
  body.replaceChildren(
    ...data.machines.filter(matchesFilter).map((m) => {
      const row = el(
        'tr',
        { class: `row-${m.state}${m.mac === selected ? ' selected' : ''}`, 'data-mac': m.mac },
        el('td', {}, badge(m.state)),
        el('td', { class: 'mono' }, m.mac),
        el('td', { class: 'mono' }, m.uuid ?? ''),
        el('td', { class: 'mono' }, m.ip ?? ''),
        el('td', { class: 'mono' }, m.lastStep ?? ''),
        el('td', { title: m.lastSeen }, ago(m.lastSeen, data.now)),
        el('td', {}, m.reason),
        el('td', { class: 'fleet mono', hidden: !fleet }, (m.appliances ?? []).join(', ')),
      );
      row.addEventListener('click', () => {
        location.hash = m.mac;
      });
      return row;
    }),
  );
}

function renderTimeline(m) {
  $('#timeline-section').hidden = false;
  $('#timeline-mac').textContent = m.mac;
  $('#timeline-state').replaceWith(Object.assign(badge(m.state), { id: 'timeline-state' }));
  $('#timeline-reason').textContent = m.reason;
  const missing = $('#timeline-missing');
  missing.hidden = m.missingFiles.length === 0;
  missing.textContent = m.missingFiles.length ? `Not fetched yet: ${m.missingFiles.join(', ')}` : '';
  const first = m.events.length ? Date.parse(m.events[0].at) : 0;
  const fleet = m.events.some((e) => e.appliance);
  for (const th of document.querySelectorAll('#timeline th.fleet')) th.hidden = !fleet;
  $('#timeline tbody').replaceChildren(
    ...m.events.map((e) =>
      el(
        'tr',
        { 'data-step': e.step },
        el('td', { class: 'mono', title: e.at }, clock(e.at)),
        el('td', { class: 'mono' }, ((Date.parse(e.at) - first) / 1000).toFixed(3)),
        el('td', { class: 'mono' }, e.step),
        el('td', { class: 'mono' }, e.ip ?? ''),
        el('td', { class: 'mono' }, detailText(e.detail)),
        el('td', { class: 'fleet mono', hidden: !fleet }, e.appliance ?? ''),
      ),
    ),
  );
}

/** The kernel a served script or GRUB config named, so its download is labelled kernel and the others initrd. */
function kernelPath(events) {
  for (let i = events.length - 1; i >= 0; i--) {
    const k = events[i].detail.kernel;
    if (typeof k === 'string' && k)
      return k
        .replace(/^[a-z]+:\/\/[^/]*/i, '')
        .replace(/^\([^)]*\)/, '')
        .replace(/^\/?/, '/');
  }
  return undefined;
}

/** One phase per protocol exchange (DHCP, 4011, each TFTP file, the script, each image), from its first step to its last. */
function phasesOf(events) {
  const kernel = kernelPath(events);
  const image = (p) => `${kernel && (p === kernel || kernel.endsWith(p)) ? 'kernel' : 'initrd'} ${p}`;
  const keyOf = (e) => {
    const d = e.detail;
    if (e.step.startsWith('dhcp.')) return ['dhcp', 'DHCP'];
    if (e.step.startsWith('pxe.')) return ['pxe', 'PXE 4011'];
    if (e.step.startsWith('tftp.')) {
      const f = String(d.file ?? '');
      return f.startsWith('images/') ? [`img:/${f}`, image(`/${f}`)] : [`tftp:${f}`, `TFTP ${f}`];
    }
    if (e.step === 'http.boot-script' || e.step === 'http.ipxe' || e.step === 'http.pixiecore') return ['script', 'boot script'];
    if (e.step === 'grub.config') return ['script', 'GRUB config'];
    if (e.step === 'http.image') return [`img:${d.path}`, String(d.path).startsWith('/firmware/') ? `HTTP ${d.path}` : image(String(d.path))];
    if (e.step === 'http.cloud') return ['cloud', 'cloud config'];
    return [e.step, e.step];
  };
  const phases = [];
  const byKey = new Map();
  for (const e of events) {
    const [key, label] = keyOf(e);
    const at = Date.parse(e.at);
    let p = byKey.get(key);
    if (!p) {
      p = { label, start: at, end: at, failed: false };
      byKey.set(key, p);
      phases.push(p);
    }
    p.end = Math.max(p.end, at);
    // A finished transfer says how long it took: its bar starts when it did.
    if (e.step === 'tftp.end' && typeof e.detail.ms === 'number') p.start = Math.min(p.start, at - e.detail.ms);
    const status = e.detail.status;
    const outcome = e.detail.outcome;
    if ((typeof status === 'number' && status >= 400) || e.detail.found === false || (e.step === 'tftp.end' && outcome !== 'ok' && outcome !== 'not-found' && !/abort/.test(String(outcome))))
      p.failed = true;
  }
  return phases;
}

function duration(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** The boot as a picture: each phase a bar on one time axis, the wait of a stalled boot in the warning colour. */
function renderWaterfall(m, nowIso) {
  const box = $('#waterfall');
  const phases = phasesOf(m.events);
  if (m.state === 'stalled' && phases.length) {
    const last = Math.max(...phases.map((p) => p.end));
    phases.push({ label: `waiting: ${m.expected?.[0] ?? 'next step'}`, start: last, end: Date.parse(nowIso), failed: false, stalled: true });
  }
  if (!phases.length) {
    box.replaceChildren();
    return;
  }
  const t0 = Math.min(...phases.map((p) => p.start));
  const span = Math.max(1, Math.max(...phases.map((p) => p.end)) - t0);
  box.replaceChildren(
    ...phases.map((p) => {
      const bar = el('span', { class: `wf-bar${p.failed ? ' wf-failed' : ''}${p.stalled ? ' wf-stalled' : ''}` });
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      bar.style.left = `${((p.start - t0) / span) * 100}%`;
      bar.style.width = `max(3px, ${((p.end - p.start) / span) * 100}%)`;
      return el(
        'div',
        { class: 'wf-row', 'data-phase': p.label, 'data-ms': String(Math.round(p.end - p.start)), 'data-stalled': p.stalled ? 'true' : 'false' },
        el('span', { class: 'wf-label mono' }, p.label),
        el('span', { class: 'wf-track' }, bar),
        el('span', { class: 'wf-dur mono' }, `+${duration(p.start - t0)} · ${duration(p.end - p.start)}`),
      );
    }),
  );
}

async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store' });
  return { status: res.status, body: await res.json() };
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const list = await getJson('/api/machines');
    $('#error').hidden = true;
    renderMachines(list.body);
    const mac = selectedMac();
    if (mac) {
      const one = await getJson(`/api/machines/${encodeURIComponent(mac)}`);
      if (one.status === 200) {
        renderTimeline(one.body);
        renderWaterfall(one.body, list.body.now);
      } else {
        $('#timeline-section').hidden = true;
        $('#error').hidden = false;
        $('#error').textContent = one.body.error ?? `no machine ${mac}`;
      }
    } else $('#timeline-section').hidden = true;
    document.body.dataset.loaded = 'true';
  } catch (err) {
    $('#error').hidden = false;
    $('#error').textContent = `cannot reach the appliance: ${err.message}`;
  } finally {
    busy = false;
  }
}

window.addEventListener('hashchange', refresh);
$('#filter').addEventListener('input', () => {
  if (lastList) renderMachines(lastList);
});
refresh();
setInterval(refresh, POLL_MS);
