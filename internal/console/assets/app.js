// Berth console. Plain ES module, no build step. Data comes from
// /console/api/aws/<service>/<Operation> (the AWS API's own handlers, as the
// signed-in identity) and the live feed /console/api/stream (server-sent
// events). Views are functions from state to HTML, re-rendered at most once
// per animation frame. docs/console.md.

const $ = (s) => document.querySelector(s);
const main = $('#main');
let session = null;

// --- helpers ---------------------------------------------------------------
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v) => (v === undefined || v === null ? '' : String(v).replace(/[&<>"']/g, (c) => ESC[c]));
const last = (arn) => (arn ? String(arn).split('/').pop() : '');
const tdName = (arn) => (arn ? String(arn).split('/').pop() : '');
const time = (t) => (t ? new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const badge = (s) => (s ? `<span class="badge s-${esc(s)}">${esc(s)}</span>` : '');
const enc = encodeURIComponent;

class AWSError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

// aws calls one operation; on failure it throws the AWS error (code and message).
export async function aws(service, op, input) {
  const r = await fetch(`/console/api/aws/${service}/${op}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Berth-Csrf': session ? session.csrf : '' },
    body: JSON.stringify(input || {}),
  });
  const text = await r.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch (e) { body = { message: text }; }
  if (!r.ok) {
    if (r.status === 401) showSignedOut();
    const code = String(body.__type || r.headers.get('x-amzn-ErrorType') || r.status).split('#').pop().split(':')[0];
    throw new AWSError(code, body.message || body.Message || r.statusText);
  }
  return body;
}

function toast(msg, ok) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = ok ? 'ok' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, ok ? 3000 : 12000);
}
// act runs an action and shows its outcome in words (the AWS error when it fails).
async function act(what, f) {
  try {
    await f();
    toast(`${what}: done`, true);
  } catch (e) {
    toast(`${what} failed: ${e.code ? e.code + ': ' : ''}${e.message}`);
  }
}

function showSignedOut() {
  stopStream();
  $('#signout').hidden = true;
  $('#who').textContent = '';
  main.innerHTML = `<div class="signin"><h1>Not signed in</h1>
  <p>The console needs a sign-in link. <code>berth up</code> prints one when it starts; for a fresh one run</p>
  <pre>berth console --data-dir &lt;the server's data dir&gt;</pre>
  <p class="muted">Links work once and expire after a few minutes; sessions last 12 hours and end when the server restarts.</p></div>`;
}

// --- live state from the stream ---------------------------------------------
// state.tasks/services/instances: Map ARN -> resource, as Describe shows it.
const state = { tasks: new Map(), services: new Map(), instances: new Map(), synced: { task: false, service: false, instance: false } };
let stream = null, streamCluster = null, relisting = {};
const keyOf = { task: 'taskArn', service: 'serviceArn', instance: 'containerInstanceArn' };
const mapOf = { task: state.tasks, service: state.services, instance: state.instances };

function stopStream() {
  if (stream) stream.close();
  stream = null; streamCluster = null;
  $('#live').className = 'live off';
}

// follow opens the live stream for one cluster (the browser reconnects it
// by itself; each connection starts with a relist, so nothing is missed).
function follow(cluster) {
  if (stream && streamCluster === cluster) return;
  stopStream();
  for (const m of Object.values(mapOf)) m.clear();
  state.synced = { task: false, service: false, instance: false };
  streamCluster = cluster;
  stream = new EventSource(`/console/api/stream?cluster=${enc(cluster)}`);
  stream.onopen = () => { $('#live').className = 'live on'; };
  stream.onerror = async () => {
    $('#live').className = 'live off';
    const r = await fetch('/console/api/session', { credentials: 'same-origin' }).catch(() => null);
    if (r && r.status === 401) showSignedOut();
  };
  for (const kind of ['task', 'service', 'instance']) {
    stream.addEventListener(kind, (ev) => {
      const item = JSON.parse(ev.data);
      const m = mapOf[kind];
      if (item.kind === 'relist') { relisting[kind] = new Set(); return; }
      if (item.kind === 'synced') {
        const seen = relisting[kind];
        if (seen) for (const k of [...m.keys()]) if (!seen.has(k)) m.delete(k);
        relisting[kind] = null;
        state.synced[kind] = true;
        schedule();
        return;
      }
      const res = item[kind];
      const key = res[keyOf[kind]];
      if (item.kind === 'delete') m.delete(key);
      else m.set(key, res);
      if (relisting[kind]) relisting[kind].add(key);
      schedule();
    });
  }
}

// --- rendering -----------------------------------------------------------------
let current = null; // { live: () => html, target: element }
let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    if (current && current.live && current.target.isConnected) {
      const t0 = performance.now();
      current.target.innerHTML = current.live();
      window.__lastRender = performance.now() - t0;
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    }
  });
}
function page(staticHTML, live) {
  main.innerHTML = staticHTML + '<div id="livepart"></div>';
  current = { live, target: $('#livepart') };
  if (live) schedule();
}

function tasksTable(tasks, cluster) {
  if (!tasks.length) return '<p class="muted">No tasks.</p>';
  const rows = [];
  for (const t of tasks) {
    const id = last(t.taskArn);
    rows.push(`<tr data-task="${esc(id)}"><td><a href="#/clusters/${enc(cluster)}/tasks/${enc(id)}">${esc(id)}</a></td><td>${badge(t.lastStatus)}</td><td>${esc(t.desiredStatus)}</td>` +
      `<td>${esc(tdName(t.taskDefinitionArn))}</td><td>${esc(t.group || '')}</td><td>${badge(t.healthStatus)}</td><td>${esc(time(t.startedAt || t.createdAt))}</td><td>${esc(t.stoppedReason || '')}</td></tr>`);
  }
  return `<table class="tasks"><thead><tr><th>Task</th><th>Last status</th><th>Desired</th><th>Task definition</th><th>Group</th><th>Health</th><th>Started</th><th>Stopped reason</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}
const byCreated = (a, b) => (b.createdAt || 0) - (a.createdAt || 0);

function res(list, name) {
  const r = (list || []).find((x) => x.name === name);
  return r ? (r.integerValue ?? r.doubleValue ?? r.longValue ?? '') : '';
}

// --- views ---------------------------------------------------------------------
async function viewClusters() {
  stopStream();
  const { clusterArns = [] } = await aws('ecs', 'ListClusters', {});
  let clusters = [];
  for (let i = 0; i < clusterArns.length; i += 100) {
    const d = await aws('ecs', 'DescribeClusters', { clusters: clusterArns.slice(i, i + 100), include: ['STATISTICS', 'SETTINGS'] });
    clusters = clusters.concat(d.clusters || []);
  }
  clusters.sort((a, b) => a.clusterName.localeCompare(b.clusterName));
  const rows = clusters.map((c) => `<tr><td><a href="#/clusters/${enc(c.clusterName)}">${esc(c.clusterName)}</a></td><td>${badge(c.status)}</td>` +
    `<td class="num">${c.registeredContainerInstancesCount || 0}</td><td class="num">${c.activeServicesCount || 0}</td><td class="num">${c.runningTasksCount || 0}</td><td class="num">${c.pendingTasksCount || 0}</td></tr>`).join('');
  page(`<h1>Clusters</h1>${clusters.length ? `<table id="clusters"><thead><tr><th>Cluster</th><th>Status</th><th class="num">Instances</th><th class="num">Services</th><th class="num">Running tasks</th><th class="num">Pending tasks</th></tr></thead><tbody>${rows}</tbody></table>` : '<p class="muted">No clusters yet: <code>aws ecs create-cluster</code>.</p>'}`);
}

function clusterTabs(cluster, sel) {
  const t = (k, label) => `<a class="${k === sel ? 'sel' : ''}" href="#/clusters/${enc(cluster)}${k ? '/' + k : ''}">${label}</a>`;
  return `<div class="tabs">${t('', 'Services')}${t('tasks', 'Tasks')}${t('instances', 'Container instances')}</div>`;
}

function viewCluster(cluster, tab) {
  follow(cluster);
  const head = `<h1>Cluster ${esc(cluster)}</h1>${clusterTabs(cluster, tab)}`;
  if (tab === 'tasks') {
    page(head + `<p><label>Status <select id="tfilter"><option value="">all</option><option>RUNNING</option><option>PENDING</option><option>STOPPED</option></select></label></p>`, () => {
      // Until the relist is complete, count only: rendering the table on
      // every frame while a thousand tasks arrive would slow their arrival.
      if (!state.synced.task) return `<p class="muted" id="taskcount">${state.tasks.size} tasks (loading)</p>`;
      const f = $('#tfilter') ? $('#tfilter').value : '';
      const tasks = [...state.tasks.values()].filter((t) => !f || t.lastStatus === f).sort(byCreated);
      return `<p class="muted" id="taskcount">${tasks.length} tasks</p>` + tasksTable(tasks, cluster);
    });
    $('#tfilter').onchange = schedule;
    return;
  }
  if (tab === 'instances') {
    page(head, () => {
      const is = [...state.instances.values()];
      if (!is.length) return `<p class="muted">${state.synced.instance ? 'No container instances: start an agent (berth up runs one in "default").' : 'Loading…'}</p>`;
      return `<table id="instances"><thead><tr><th>Instance</th><th>Agent</th><th>Status</th><th class="num">CPU free / registered</th><th class="num">Memory MiB free / registered</th><th class="num">Running</th><th class="num">Pending</th><th>Agent version</th><th>Zone</th></tr></thead><tbody>` +
        is.map((i) => `<tr><td title="${esc(i.containerInstanceArn)}">${esc(last(i.containerInstanceArn))}<br><span class="muted">${esc(i.ec2InstanceId || '')}</span></td>` +
          `<td>${badge(i.agentConnected ? 'connected' : 'disconnected')}</td><td>${badge(i.status)}</td>` +
          `<td class="num">${esc(res(i.remainingResources, 'CPU'))} / ${esc(res(i.registeredResources, 'CPU'))}</td><td class="num">${esc(res(i.remainingResources, 'MEMORY'))} / ${esc(res(i.registeredResources, 'MEMORY'))}</td>` +
          `<td class="num">${i.runningTasksCount || 0}</td><td class="num">${i.pendingTasksCount || 0}</td><td>${esc((i.versionInfo || {}).agentVersion || '')}</td>` +
          `<td>${esc(((i.attributes || []).find((a) => a.name === 'ecs.availability-zone') || {}).value || '')}</td></tr>`).join('') + '</tbody></table>';
    });
    return;
  }
  page(head, () => {
    const svcs = [...state.services.values()].sort((a, b) => a.serviceName.localeCompare(b.serviceName));
    if (!svcs.length) return `<p class="muted">${state.synced.service ? 'No services.' : 'Loading…'}</p>`;
    return `<table id="services"><thead><tr><th>Service</th><th>Status</th><th class="num">Desired</th><th class="num">Running</th><th class="num">Pending</th><th>Task definition</th><th>Rollout</th></tr></thead><tbody>` +
      svcs.map((s) => {
        const p = (s.deployments || []).find((d) => d.status === 'PRIMARY') || {};
        return `<tr><td><a href="#/clusters/${enc(cluster)}/services/${enc(s.serviceName)}">${esc(s.serviceName)}</a></td><td>${badge(s.status)}</td>` +
          `<td class="num">${s.desiredCount}</td><td class="num">${s.runningCount}</td><td class="num">${s.pendingCount}</td><td>${esc(tdName(s.taskDefinition))}</td><td>${badge(p.rolloutState)}</td></tr>`;
      }).join('') + '</tbody></table>';
  });
}

function viewService(cluster, name, tab) {
  follow(cluster);
  const arnSuffix = `/${cluster}/${name}`;
  const find = () => [...state.services.values()].find((s) => s.serviceName === name && s.serviceArn.endsWith(arnSuffix));
  const t = (k, label) => `<a class="${k === tab ? 'sel' : ''}" href="#/clusters/${enc(cluster)}/services/${enc(name)}${k ? '/' + k : ''}">${label}</a>`;
  page(`<h1>Service ${esc(name)} <span class="muted">in ${esc(cluster)}</span></h1>
  <div class="actions"><label>Desired count <input id="desired" type="number" min="0"></label><button id="setdesired">Update</button>
  <button id="forcedeploy">Force new deployment</button></div>
  <div class="tabs">${t('', 'Deployments')}${t('events', 'Events')}${t('tasks', 'Tasks')}${t('configuration', 'Configuration')}</div>`, () => {
    const s = find();
    if (!s) return `<p class="muted">${state.synced.service ? 'No such service in this cluster.' : 'Loading…'}</p>`;
    const desired = $('#desired');
    if (desired && desired.value === '') desired.value = s.desiredCount;
    const cards = `<div class="cards"><div class="card"><div class="k">Status</div><div class="v">${badge(s.status)}</div></div>` +
      `<div class="card"><div class="k">Desired</div><div class="v" id="svc-desired">${s.desiredCount}</div></div>` +
      `<div class="card"><div class="k">Running</div><div class="v" id="svc-running">${s.runningCount}</div></div>` +
      `<div class="card"><div class="k">Pending</div><div class="v" id="svc-pending">${s.pendingCount}</div></div>` +
      `<div class="card"><div class="k">Task definition</div><div class="v" style="font-size:14px">${esc(tdName(s.taskDefinition))}</div></div></div>`;
    if (tab === 'events') {
      return cards + `<table class="events"><tbody>${(s.events || []).map((e) => `<tr><td>${esc(time(e.createdAt))}</td><td>${esc(e.message)}</td></tr>`).join('')}</tbody></table>`;
    }
    if (tab === 'tasks') {
      const group = `service:${name}`;
      return cards + tasksTable([...state.tasks.values()].filter((x) => x.group === group).sort(byCreated), cluster);
    }
    if (tab === 'configuration') {
      const c = { ...s };
      delete c.events; delete c.deployments;
      return cards + `<pre id="svc-config">${esc(JSON.stringify(c, null, 2))}</pre>`;
    }
    return cards + `<table id="deployments"><thead><tr><th>Deployment</th><th>Status</th><th>Rollout</th><th>Task definition</th><th class="num">Desired</th><th class="num">Running</th><th class="num">Pending</th><th class="num">Failed</th><th>Created</th><th>Updated</th></tr></thead><tbody>` +
      (s.deployments || []).map((d) => `<tr><td>${esc(d.id)}</td><td>${badge(d.status)}</td><td>${badge(d.rolloutState)}<br><span class="muted">${esc(d.rolloutStateReason || '')}</span></td><td>${esc(tdName(d.taskDefinition))}</td>` +
        `<td class="num">${d.desiredCount}</td><td class="num">${d.runningCount}</td><td class="num">${d.pendingCount}</td><td class="num">${d.failedTasks || 0}</td><td>${esc(time(d.createdAt))}</td><td>${esc(time(d.updatedAt))}</td></tr>`).join('') + '</tbody></table>';
  });
  $('#setdesired').onclick = () => act(`Set desired count of ${name}`, async () => {
    const v = $('#desired').value;
    await aws('ecs', 'UpdateService', { cluster, service: name, desiredCount: v === '' ? undefined : Number(v) });
  });
  $('#forcedeploy').onclick = () => act(`Force a new deployment of ${name}`, () => aws('ecs', 'UpdateService', { cluster, service: name, forceNewDeployment: true }));
}

let logTail = null;
async function viewTask(cluster, id) {
  follow(cluster);
  let td = null;
  viewTask.loading = false;
  const find = () => [...state.tasks.values()].find((t) => last(t.taskArn) === id);
  page(`<h1>Task ${esc(id)} <span class="muted">in ${esc(cluster)}</span></h1>
  <div class="actions"><input id="stopreason" placeholder="reason (optional)" size="30"><button class="danger" id="stoptask">Stop task</button></div>`, () => {
    const t = find();
    if (!t) return `<p class="muted">${state.synced.task ? 'No such task (stopped tasks are kept for an hour).' : 'Loading…'}</p>`;
    if (!td && t.taskDefinitionArn && !viewTask.loading) {
      viewTask.loading = true;
      aws('ecs', 'DescribeTaskDefinition', { taskDefinition: t.taskDefinitionArn }).then((d) => { td = d.taskDefinition; viewTask.loading = false; schedule(); startTail(t, td); })
        .catch(() => { viewTask.loading = false; });
    }
    return `<div class="cards"><div class="card"><div class="k">Last status</div><div class="v">${badge(t.lastStatus)}</div></div>
      <div class="card"><div class="k">Desired</div><div class="v">${esc(t.desiredStatus)}</div></div>
      <div class="card"><div class="k">Health</div><div class="v">${badge(t.healthStatus)}</div></div>
      <div class="card"><div class="k">Task definition</div><div class="v" style="font-size:14px"><a href="#/taskdefs/${enc(tdName(t.taskDefinitionArn).split(':')[0])}">${esc(tdName(t.taskDefinitionArn))}</a></div></div>
      ${t.cpu || t.memory ? `<div class="card"><div class="k">CPU / memory</div><div class="v" style="font-size:14px">${esc(t.cpu || '–')} / ${esc(t.memory || '–')}</div></div>` : ''}</div>
      ${t.stoppedReason ? `<p><b>Stopped:</b> ${esc(t.stopCode || '')} ${esc(t.stoppedReason)}</p>` : ''}
      <p class="muted">${[['created', time(t.createdAt)], ['started', time(t.startedAt)], ['stopped', time(t.stoppedAt)], ['', t.group], ['instance', last(t.containerInstanceArn)]]
        .filter(([, v]) => v).map(([k, v]) => `${k} ${esc(v)}`.trim()).join(' · ')}</p>
      <h2>Containers</h2><table id="containers"><thead><tr><th>Name</th><th>Image</th><th>Last status</th><th>Health</th><th class="num">Exit code</th><th>Reason</th></tr></thead><tbody>` +
      (t.containers || []).map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.image || '')}</td><td>${badge(c.lastStatus)}</td><td>${badge(c.healthStatus)}</td><td class="num">${esc(c.exitCode ?? '')}</td><td>${esc(c.reason || '')}</td></tr>`).join('') +
      `</tbody></table><h2>Logs</h2><div id="logsinfo" class="muted">${logTail ? esc(logTail.label) : 'No awslogs log configuration.'}</div>`;
  });
  main.insertAdjacentHTML('beforeend', '<pre class="logs" id="logs"></pre>');
  $('#stoptask').onclick = () => act(`Stop task ${id}`, () => aws('ecs', 'StopTask', { cluster, task: id, reason: $('#stopreason').value || undefined }));
}

function startTail(t, td) {
  if (logTail) return;
  const c = (td.containerDefinitions || []).find((c) => c.logConfiguration && c.logConfiguration.logDriver === 'awslogs');
  if (!c) return;
  const o = c.logConfiguration.options || {};
  const group = o['awslogs-group'], prefix = o['awslogs-stream-prefix'];
  if (!group || !prefix) return;
  const streamName = `${prefix}/${c.name}/${last(t.taskArn)}`;
  const es = new EventSource(`/console/api/logs?group=${enc(group)}&stream=${enc(streamName)}`);
  logTail = { es, label: `${group} › ${streamName} (live)` };
  es.addEventListener('log', (ev) => {
    const e = JSON.parse(ev.data);
    const pre = $('#logs');
    if (!pre) return;
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(`${new Date(e.t).toISOString().slice(11, 23)}  ${e.m}\n`);
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
  es.addEventListener('error', (ev) => { if (ev.data) toast(`Log tail: ${JSON.parse(ev.data).message}`); });
  schedule();
}
function stopTail() { if (logTail) logTail.es.close(); logTail = null; }

async function viewTaskDefs() {
  stopStream();
  const out = await aws('ecs', 'ListTaskDefinitionFamilies', { status: 'ACTIVE' });
  const fams = out.families || [];
  page(`<h1>Task definitions</h1>${fams.length ? `<table><thead><tr><th>Family</th></tr></thead><tbody>${fams.map((f) => `<tr><td><a href="#/taskdefs/${enc(f)}">${esc(f)}</a></td></tr>`).join('')}</tbody></table>` : '<p class="muted">No active task definitions.</p>'}`);
}

async function viewFamily(family, a, b) {
  stopStream();
  let arns = [], token;
  do {
    const o = await aws('ecs', 'ListTaskDefinitions', { familyPrefix: family, sort: 'DESC', nextToken: token });
    arns = arns.concat((o.taskDefinitionArns || []).filter((x) => tdName(x).split(':')[0] === family));
    token = o.nextToken;
  } while (token);
  const revs = arns.map((x) => Number(tdName(x).split(':')[1]));
  if (!revs.length) { page(`<h1>${esc(family)}</h1><p class="muted">No active revisions.</p>`); return; }
  const ra = a || revs[0], rb = b || revs[Math.min(1, revs.length - 1)];
  const opts = (sel) => revs.map((r) => `<option ${r === sel ? 'selected' : ''}>${r}</option>`).join('');
  const [da, db] = await Promise.all([ra, rb].map((r) => aws('ecs', 'DescribeTaskDefinition', { taskDefinition: `${family}:${r}` }).then((o) => o.taskDefinition)));
  page(`<h1>Task definition ${esc(family)}</h1>
  <table id="revisions"><thead><tr><th>Revision</th><th></th></tr></thead><tbody>${revs.map((r) => `<tr><td>${esc(family)}:${r}</td><td><button class="danger" data-dereg="${r}">Deregister</button></td></tr>`).join('')}</tbody></table>
  <h2>Diff</h2><div class="actions">from <select id="ra">${opts(rb)}</select> to <select id="rb">${opts(ra)}</select> <button id="showdiff">Compare</button></div>
  <pre class="diff" id="diff">${diffHTML(tdText(db), tdText(da))}</pre>
  <h2>${esc(family)}:${ra}</h2><pre>${esc(JSON.stringify(da, null, 2))}</pre>`);
  $('#showdiff').onclick = () => { location.hash = `#/taskdefs/${enc(family)}/diff/${$('#ra').value}/${$('#rb').value}`; };
  for (const btn of main.querySelectorAll('[data-dereg]')) {
    btn.onclick = () => act(`Deregister ${family}:${btn.dataset.dereg}`, async () => {
      await aws('ecs', 'DeregisterTaskDefinition', { taskDefinition: `${family}:${btn.dataset.dereg}` });
      route();
    });
  }
}

function tdText(td) {
  const c = { ...td };
  for (const k of ['taskDefinitionArn', 'revision', 'registeredAt', 'registeredBy', 'deregisteredAt', 'status']) delete c[k];
  return JSON.stringify(c, null, 2).split('\n');
}

// diffHTML shows a line diff (longest common subsequence) from a to b.
export function diffHTML(a, b) {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push(' ' + esc(a[i])); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(`<span class="add">+${esc(b[j])}</span>`); j++; }
    else { out.push(`<span class="del">-${esc(a[i])}</span>`); i++; }
  }
  return out.map((l) => (l.startsWith('<span') ? l : l + '\n')).join('');
}

async function viewRepositories(name) {
  stopStream();
  if (!name) {
    const o = await aws('ecr', 'DescribeRepositories', {});
    const rs = o.repositories || [];
    page(`<h1>Repositories</h1>${rs.length ? `<table><thead><tr><th>Repository</th><th>URI</th><th>Created</th></tr></thead><tbody>${rs.map((r) => `<tr><td><a href="#/repositories/${enc(r.repositoryName)}">${esc(r.repositoryName)}</a></td><td><code>${esc(r.repositoryUri)}</code></td><td>${esc(time(r.createdAt))}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">No repositories.</p>'}`);
    return;
  }
  const o = await aws('ecr', 'DescribeImages', { repositoryName: name });
  const is = (o.imageDetails || []).sort((a, b) => (b.imagePushedAt || 0) - (a.imagePushedAt || 0));
  page(`<h1>Repository ${esc(name)}</h1><table><thead><tr><th>Tags</th><th>Digest</th><th class="num">Size (MB)</th><th>Pushed</th></tr></thead><tbody>${is.map((i) => `<tr><td>${esc((i.imageTags || []).join(', '))}</td><td><code>${esc(i.imageDigest)}</code></td><td class="num">${i.imageSizeInBytes ? (i.imageSizeInBytes / 1e6).toFixed(1) : ''}</td><td>${esc(time(i.imagePushedAt))}</td></tr>`).join('')}</tbody></table>`);
}

// --- routing -----------------------------------------------------------------------
async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  current = null;
  if (parts[0] !== 'clusters' || parts[2] !== 'tasks' || !parts[3]) stopTail();
  try {
    if (parts[0] === 'clusters' && parts[1]) {
      if (parts[2] === 'services' && parts[3]) return viewService(parts[1], parts[3], parts[4] || '');
      if (parts[2] === 'tasks' && parts[3]) return viewTask(parts[1], parts[3]);
      return viewCluster(parts[1], parts[2] || '');
    }
    if (parts[0] === 'taskdefs' && parts[1]) return await viewFamily(parts[1], parts[2] === 'diff' ? Number(parts[4]) : 0, parts[2] === 'diff' ? Number(parts[3]) : 0);
    if (parts[0] === 'taskdefs') return await viewTaskDefs();
    if (parts[0] === 'repositories') return await viewRepositories(parts[1]);
    return await viewClusters();
  } catch (e) {
    if (e.code === '401' || e.code === 'SessionExpired') return;
    main.innerHTML = `<p class="error">${esc(e.code || 'Error')}: ${esc(e.message)}</p>`;
  }
}

async function start() {
  const r = await fetch('/console/api/session', { credentials: 'same-origin' });
  if (!r.ok) { showSignedOut(); return; }
  session = await r.json();
  $('#who').textContent = `${session.arn}`;
  $('#signout').hidden = false;
  $('#signout').onclick = async () => {
    await fetch('/console/api/signout', { method: 'POST', headers: { 'X-Berth-Csrf': session.csrf }, credentials: 'same-origin' });
    session = null;
    showSignedOut();
  };
  window.addEventListener('hashchange', route);
  route();
}
start();
