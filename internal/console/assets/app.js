// Berth console. Plain ES module, no build step. Data comes from
// /console/api/aws/<service>/<Operation> (the AWS API's own handlers, as the
// signed-in identity) and the live feed /console/api/stream (server-sent
// events). Views are functions from state to HTML, re-rendered at most once
// per animation frame. docs/console.md.

import { lineChart, trafficGraph, fmt } from './chart.js';

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
// viewClusters lists the clusters and the Fargate capacity every cluster
// shares (Berth's own read GetFargateCapacity), both live.
function viewClusters() {
  stopStream();
  const W = {};
  watchLive(W, (W) => {
    const arns = ((W.r.list || {}).clusterArns || []).slice(0, 100);
    const calls = [call('list', 'ecs', 'ListClusters', {}), call('fargate', BERTH, 'GetFargateCapacity', {})];
    if (arns.length) calls.push(call('clusters', 'ecs', 'DescribeClusters', { clusters: arns, include: ['STATISTICS', 'SETTINGS'] }));
    return calls;
  });
  page('<h1>Clusters</h1>', () => {
    if (loading(W, 'list')) return '<p class="muted">Loading…</p>';
    const arns = (W.r.list || {}).clusterArns || [];
    const clusters = arns.length ? ((W.r.clusters || {}).clusters || []).slice().sort((a, b) => a.clusterName.localeCompare(b.clusterName)) : [];
    const rows = clusters.map((c) => `<tr><td><a href="#/clusters/${enc(c.clusterName)}">${esc(c.clusterName)}</a></td><td>${badge(c.status)}</td>` +
      `<td class="num">${c.registeredContainerInstancesCount || 0}</td><td class="num">${c.activeServicesCount || 0}</td><td class="num">${c.runningTasksCount || 0}</td><td class="num">${c.pendingTasksCount || 0}</td></tr>`).join('');
    return errBox(W, 'list', 'clusters') + (arns.length > 100 ? '<p class="muted">The first 100 clusters.</p>' : '') +
      (arns.length ? `<table id="clusters"><thead><tr><th>Cluster</th><th>Status</th><th class="num">Instances</th><th class="num">Services</th><th class="num">Running tasks</th><th class="num">Pending tasks</th></tr></thead><tbody>${rows}</tbody></table>` : '<p class="muted">No clusters yet: <code>aws ecs create-cluster</code>.</p>') +
      fargateHTML(W);
  });
}

// fargateHTML shows the Fargate capacity: its hosts (the hidden pool's and
// user clusters' instances that offer it) and the Fargate tasks on them
// per cluster and capacity provider.
function fargateHTML(W) {
  const head = '<h2>Fargate capacity <span class="muted">(shared by every cluster)</span></h2>';
  if (W.e.fargate) return head + errBox(W, 'fargate');
  if (!W.r.fargate) return head + '<p class="muted">Loading…</p>';
  const { hosts = [], tasks = [] } = W.r.fargate;
  if (!hosts.length) return head + '<div id="fargate"><p class="muted">No host offers Fargate capacity: <code>berth up</code> (its agent does by default) or <code>berth agent --fargate</code>.</p></div>';
  const sum = (f) => hosts.reduce((n, h) => n + (h[f] || 0), 0);
  const live = hosts.filter((h) => h.agentConnected && h.status === 'ACTIVE');
  const lsum = (f) => live.reduce((n, h) => n + (h[f] || 0), 0);
  const run = tasks.reduce((n, t) => n + t.running, 0), pend = tasks.reduce((n, t) => n + t.pending, 0);
  const card = (k, v, id) => `<div class="card"><div class="k">${k}</div><div class="v"${id ? ` id="${id}"` : ''}>${v}</div></div>`;
  const provider = (p) => (p ? esc(p) : 'FARGATE <span class="muted">(launch type)</span>');
  return head + '<div id="fargate"><div class="cards">' + card('Hosts connected', `${live.length} / ${hosts.length}`, 'fg-hosts') +
    card('CPU free / registered', `${lsum('remainingCpu')} / ${lsum('registeredCpu')}`, 'fg-cpu') +
    card('Memory MiB free / registered', `${lsum('remainingMemoryMiB')} / ${lsum('registeredMemoryMiB')}`, 'fg-mem') +
    card('Fargate tasks running / pending', `${run} / ${pend}`, 'fg-tasks') + '</div>' +
    '<p class="muted">Free capacity counts connected ACTIVE hosts only (placement uses no other); a host\'s free resources are what every live task on it leaves, whatever its cluster or launch type.' +
    (sum('otherTasks') ? ` ${sum('otherTasks')} EC2 tasks share these hosts.` : '') + '</p>' +
    `<table id="fargate-hosts"><thead><tr><th>Host</th><th>Where</th><th>Agent</th><th>Status</th><th>Runtime</th><th>Arch</th><th>Zone</th><th class="num">CPU free / registered</th><th class="num">Memory MiB free / registered</th><th class="num">Fargate tasks</th><th class="num">EC2 tasks</th></tr></thead><tbody>` +
    hosts.map((h) => `<tr data-host="${esc(h.instanceId)}"><td title="${esc(h.instanceArn)}">${esc(h.instanceId)}<br><span class="muted">${esc(h.ec2InstanceId)} · agent ${esc(h.agentVersion)}</span></td>` +
      `<td>${h.pool ? 'Fargate pool' : `cluster <a href="#/clusters/${enc(h.cluster)}/instances">${esc(h.cluster)}</a>`}</td><td>${badge(h.agentConnected ? 'connected' : 'disconnected')}</td><td>${badge(h.status)}</td>` +
      `<td class="runtime">${esc(h.runtime || '?')}</td><td>${esc(h.architecture)}</td><td>${esc(h.availabilityZone)}</td>` +
      `<td class="num">${h.remainingCpu} / ${h.registeredCpu}</td><td class="num">${h.remainingMemoryMiB} / ${h.registeredMemoryMiB}</td><td class="num">${h.fargateTasks}</td><td class="num">${h.otherTasks}</td></tr>`).join('') +
    '</tbody></table><h3>Fargate tasks by cluster and capacity provider</h3>' +
    (tasks.length ? `<table id="fargate-tasks"><thead><tr><th>Cluster</th><th>Capacity provider</th><th class="num">Running</th><th class="num">Pending</th><th class="num">CPU</th><th class="num">Memory MiB</th></tr></thead><tbody>` +
      tasks.map((t) => `<tr data-fg="${esc(t.cluster)}/${esc(t.capacityProvider)}"><td><a href="#/clusters/${enc(t.cluster)}/tasks">${esc(t.cluster)}</a></td><td>${provider(t.capacityProvider)}</td><td class="num">${t.running}</td><td class="num">${t.pending}</td><td class="num">${t.cpu}</td><td class="num">${t.memoryMiB}</td></tr>`).join('') + '</tbody></table>'
      : '<p class="muted">No Fargate tasks.</p>') + '</div>';
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
  const W = {};
  if (tab === 'scaling') watchLive(W, () => scalingCalls(`service/${cluster}/${name}`));
  const arnSuffix = `/${cluster}/${name}`;
  const find = () => [...state.services.values()].find((s) => s.serviceName === name && s.serviceArn.endsWith(arnSuffix));
  const t = (k, label) => `<a class="${k === tab ? 'sel' : ''}" href="#/clusters/${enc(cluster)}/services/${enc(name)}${k ? '/' + k : ''}">${label}</a>`;
  page(`<h1>Service ${esc(name)} <span class="muted">in ${esc(cluster)}</span></h1>
  <div class="actions"><label>Desired count <input id="desired" type="number" min="0"></label><button id="setdesired">Update</button>
  <button id="forcedeploy">Force new deployment</button></div>
  <div class="tabs">${t('', 'Deployments')}${t('events', 'Events')}${t('tasks', 'Tasks')}${t('configuration', 'Configuration')}${t('scaling', 'Scaling')}</div>`, () => {
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
    if (tab === 'scaling') return cards + scalingHTML(W, false);
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

// --- watches: reads the server repeats, answers pushed when they change --------
// A page names its reads; /console/api/watch runs them every few seconds
// as the signed-in identity and sends an answer only when it changed.
// One connection per page (the ECS stream and a log tail are the others).
let watcher = null;
function stopWatch() { if (watcher) watcher.close(); watcher = null; }
const errText = (b) => (b && typeof b === 'object' ? `${String(b.__type || b.code || 'Error').split('#').pop()}: ${b.message || b.Message || ''}` : String(b));

// follow reads whose set depends on earlier answers: build(W) gives the
// calls, each {k, s, o, i, window}; answers land in W.r[k] (W.e[k] the
// AWS error in words). When build's list changes the watch is reopened
// (the answers already held stay shown meanwhile).
function watchLive(W, build, every = 3) {
  W.r = W.r || {}; W.e = W.e || {};
  let key = null;
  const reopen = () => {
    const calls = build(W);
    const k = JSON.stringify(calls);
    if (k === key) return;
    key = k;
    stopWatch();
    const es = new EventSource(`/console/api/watch?every=${every}&q=${enc(JSON.stringify(calls.map(({ k, ...c }) => c)))}`);
    watcher = es;
    es.onopen = () => { $('#live').className = 'live on'; };
    es.onerror = async () => {
      $('#live').className = 'live off';
      const r = await fetch('/console/api/session', { credentials: 'same-origin' }).catch(() => null);
      if (r && r.status === 401) showSignedOut();
    };
    es.addEventListener('result', (ev) => {
      if (watcher !== es) return;
      const res = JSON.parse(ev.data);
      const c = calls[res.i];
      if (!c) return;
      if (res.status === 200) { W.r[c.k] = res.body; delete W.e[c.k]; } else W.e[c.k] = errText(res.body);
      W.seen = (W.seen || 0) + 1;
      reopen();
      schedule();
    });
  };
  W.reopen = reopen;
  reopen();
}
// BERTH names Berth's own reads in a watch (Fargate capacity, delivery
// records): not AWS operations, served by the console (docs/console.md).
const BERTH = 'berth';
const call = (k, s, o, i, window) => (window ? { k, s, o, i, window } : { k, s, o, i });
// shown gives an answer, or the error in words, or "loading".
const errBox = (W, ...ks) => ks.filter((k) => W.e[k]).map((k) => `<p class="error">${esc(W.e[k])}</p>`).join('');
const loading = (W, k) => !W.r[k] && !W.e[k];
const ms = (t) => (t === undefined || t === null ? undefined : Number(t) * 1000);
const dimStr = (ds) => (ds || []).map((d) => `${d.Name}=${d.Value}`).join(', ');

// metricSeries turns GetMetricData results into chart series.
function metricSeries(out, names) {
  return (out ? out.MetricDataResults || [] : []).map((r) => ({ name: (names && names[r.Id]) || r.Label || r.Id, t: (r.Timestamps || []).map(ms), v: r.Values || [], id: r.Id }));
}
const newest = (r) => {
  if (!r || !r.t.length) return undefined;
  let j = 0;
  for (let i = 1; i < r.t.length; i++) if (r.t[i] > r.t[j]) j = i;
  return r.v[j];
};
function windowChoice(id, sel, choices) {
  return `<select id="${id}">${choices.map(([v, l]) => `<option value="${v}" ${String(v) === String(sel) ? 'selected' : ''}>${l}</option>`).join('')}</select>`;
}
const WINDOWS = [[900, 'last 15 min'], [3600, 'last hour'], [10800, 'last 3 hours'], [86400, 'last day']];
const PERIODS = [[1, '1 s'], [10, '10 s'], [60, '1 min'], [300, '5 min']];
function hashParams() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
}
function setHashParams(p) {
  const base = location.hash.split('?')[0];
  location.hash = `${base}?${p.toString()}`;
}

// --- load balancers ------------------------------------------------------------
const ELB = 'elasticloadbalancing';
function viewLoadBalancers() {
  stopStream();
  const W = {};
  watchLive(W, () => [call('lbs', ELB, 'DescribeLoadBalancers', {}), call('tgs', ELB, 'DescribeTargetGroups', {})]);
  page('<h1>Load balancers</h1>', () => {
    if (loading(W, 'lbs')) return '<p class="muted">Loading…</p>';
    const lbs = ((W.r.lbs || {}).LoadBalancers || []).slice().sort((a, b) => a.LoadBalancerName.localeCompare(b.LoadBalancerName));
    const tgs = (W.r.tgs || {}).TargetGroups || [];
    return errBox(W, 'lbs', 'tgs') + (lbs.length ? `<table id="loadbalancers"><thead><tr><th>Name</th><th>State</th><th>Type</th><th>Scheme</th><th>DNS name</th><th class="num">Target groups</th><th>Created</th></tr></thead><tbody>` +
      lbs.map((l) => `<tr><td><a href="#/loadbalancers/${enc(l.LoadBalancerName)}">${esc(l.LoadBalancerName)}</a></td><td>${badge((l.State || {}).Code)}</td><td>${esc(l.Type)}</td><td>${esc(l.Scheme)}</td><td><code>${esc(l.DNSName)}</code></td>` +
        `<td class="num">${tgs.filter((g) => (g.LoadBalancerArns || []).includes(l.LoadBalancerArn)).length}</td><td>${esc(time(l.CreatedTime))}</td></tr>`).join('') + '</tbody></table>'
      : '<p class="muted">No load balancers: <code>aws elbv2 create-load-balancer</code>.</p>') +
      `<h2>Target groups</h2>${tgs.length ? `<table id="targetgroups"><thead><tr><th>Name</th><th>Protocol:port</th><th>Target type</th><th>Health check</th><th>Load balancers</th></tr></thead><tbody>` +
        tgs.map((g) => `<tr><td>${esc(g.TargetGroupName)}</td><td>${esc(g.Protocol || '')}:${esc(g.Port || '')}</td><td>${esc(g.TargetType)}</td><td>${esc(g.HealthCheckProtocol || '')} ${esc(g.HealthCheckPath || '')}</td><td>${(g.LoadBalancerArns || []).map((a) => esc(a.split('/')[2])).join(', ')}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No target groups.</p>'}`;
  });
}

function actionText(a, tgName) {
  if (!a) return '';
  switch (a.Type) {
    case 'forward': {
      const groups = (a.ForwardConfig && a.ForwardConfig.TargetGroups) || (a.TargetGroupArn ? [{ TargetGroupArn: a.TargetGroupArn }] : []);
      return 'forward to ' + groups.map((g) => tgName(g.TargetGroupArn) + (g.Weight !== undefined && groups.length > 1 ? ` (weight ${g.Weight})` : '')).join(', ');
    }
    case 'fixed-response': {
      const f = a.FixedResponseConfig || {};
      return `fixed response ${f.StatusCode || ''}${f.ContentType ? ' ' + f.ContentType : ''}${f.MessageBody ? ` "${f.MessageBody}"` : ''}`;
    }
    case 'redirect': {
      const r = a.RedirectConfig || {};
      return `redirect ${r.StatusCode || ''} to ${r.Protocol || '#{protocol}'}://${r.Host || '#{host}'}:${r.Port || '#{port}'}${r.Path || '/#{path}'}${r.Query ? '?' + r.Query : ''}`;
    }
    default: return a.Type;
  }
}
function conditionText(c) {
  const cfgs = { 'path-pattern': 'PathPatternConfig', 'host-header': 'HostHeaderConfig', 'http-request-method': 'HttpRequestMethodConfig', 'source-ip': 'SourceIpConfig' };
  let vals = c.Values || [];
  if (c.Field === 'http-header' && c.HttpHeaderConfig) return `header ${c.HttpHeaderConfig.HttpHeaderName} is ${(c.HttpHeaderConfig.Values || []).join(' or ')}`;
  if (c.Field === 'query-string' && c.QueryStringConfig) return 'query ' + (c.QueryStringConfig.Values || []).map((kv) => `${kv.Key ? kv.Key + '=' : ''}${kv.Value}`).join(' or ');
  if (cfgs[c.Field] && c[cfgs[c.Field]] && c[cfgs[c.Field]].Values) vals = c[cfgs[c.Field]].Values;
  return `${c.Field} is ${vals.join(' or ')}`;
}
const prio = (r) => (r.IsDefault || r.Priority === 'default' ? Infinity : Number(r.Priority));
const lbDim = (arn) => String(arn).split(':loadbalancer/')[1] || '';
const tgDim = (arn) => { const i = String(arn).indexOf(':targetgroup/'); return i >= 0 ? String(arn).slice(i + 1) : arn; };

function viewLoadBalancer(name, tab) {
  stopStream();
  const W = {};
  const p = hashParams();
  const period = Number(p.get('period')) || 60, win = Number(p.get('window')) || 900;
  watchLive(W, (W) => {
    const calls = [call('lb', ELB, 'DescribeLoadBalancers', { Names: [name] })];
    const lb = ((W.r.lb || {}).LoadBalancers || [])[0];
    if (!lb) return calls;
    calls.push(call('ls', ELB, 'DescribeListeners', { LoadBalancerArn: lb.LoadBalancerArn }), call('tgs', ELB, 'DescribeTargetGroups', { LoadBalancerArn: lb.LoadBalancerArn }));
    const tgs = ((W.r.tgs || {}).TargetGroups || []).slice(0, 10);
    for (const g of tgs) calls.push(call('th:' + g.TargetGroupArn, ELB, 'DescribeTargetHealth', { TargetGroupArn: g.TargetGroupArn }));
    if (tab === 'traffic') {
      const q = [];
      tgs.forEach((g, n) => {
        const dims = [{ Name: 'LoadBalancer', Value: lbDim(lb.LoadBalancerArn) }, { Name: 'TargetGroup', Value: tgDim(g.TargetGroupArn) }];
        const m = (id, metric, stat) => q.push({ Id: `${id}${n}`, MetricStat: { Metric: { Namespace: 'AWS/ApplicationELB', MetricName: metric, Dimensions: dims }, Period: period, Stat: stat }, Label: g.TargetGroupName });
        m('req', 'RequestCount', 'Sum'); m('err', 'HTTPCode_Target_5XX_Count', 'Sum'); m('lat', 'TargetResponseTime', 'Average');
        m('hh', 'HealthyHostCount', 'Maximum'); m('uh', 'UnHealthyHostCount', 'Maximum');
      });
      if (q.length) calls.push(call('traffic', 'monitoring', 'GetMetricData', { MetricDataQueries: q, ScanBy: 'TimestampDescending' }, win));
    } else {
      for (const l of ((W.r.ls || {}).Listeners || []).slice(0, 10)) calls.push(call('rules:' + l.ListenerArn, ELB, 'DescribeRules', { ListenerArn: l.ListenerArn }));
    }
    return calls;
  }, tab === 'traffic' ? Math.min(period, 5) : 3);
  const t = (k, label) => `<a class="${k === tab ? 'sel' : ''}" href="#/loadbalancers/${enc(name)}${k ? '/' + k : ''}">${label}</a>`;
  page(`<h1>Load balancer ${esc(name)}</h1><div class="tabs">${t('', 'Listeners and targets')}${t('traffic', 'Live traffic')}</div>` +
    (tab === 'traffic' ? `<div class="actions">Period ${windowChoice('period', period, PERIODS)} Window ${windowChoice('window', win, WINDOWS)}</div>` : ''), () => {
    if (loading(W, 'lb')) return '<p class="muted">Loading…</p>';
    if (W.e.lb) return errBox(W, 'lb');
    const lb = ((W.r.lb || {}).LoadBalancers || [])[0];
    if (!lb) return '<p class="muted">No such load balancer.</p>';
    const tgs = (W.r.tgs || {}).TargetGroups || [];
    const tgName = (arn) => { const g = tgs.find((x) => x.TargetGroupArn === arn); return g ? g.TargetGroupName : String(arn).split('/')[1] || arn; };
    const health = (g) => ((W.r['th:' + g.TargetGroupArn] || {}).TargetHealthDescriptions || []);
    const count = (g, st) => health(g).filter((d) => (d.TargetHealth || {}).State === st).length;
    const cards = `<div class="cards"><div class="card"><div class="k">State</div><div class="v">${badge((lb.State || {}).Code)}</div></div>
      <div class="card"><div class="k">Type / scheme</div><div class="v sm">${esc(lb.Type)} / ${esc(lb.Scheme)}</div></div>
      <div class="card"><div class="k">DNS name</div><div class="v sm"><code>${esc(lb.DNSName)}</code></div></div>
      <div class="card"><div class="k">Created</div><div class="v sm">${esc(time(lb.CreatedTime))}</div></div></div>`;
    if (tab === 'traffic') {
      const series = metricSeries(W.r.traffic);
      const by = (pre) => series.filter((s) => s.id.startsWith(pre) && /^\d+$/.test(s.id.slice(pre.length)));
      const perSec = (s) => ({ ...s, v: s.v.map((v) => v / period) });
      const rows = tgs.slice(0, 10).map((g, n) => {
        const get = (pre) => series.find((s) => s.id === pre + n);
        const req = newest(get('req')), err = newest(get('err')), lat = newest(get('lat'));
        const healthy = count(g, 'healthy'), unhealthy = health(g).length - healthy;
        return `<tr data-tg="${esc(g.TargetGroupName)}"><td>${esc(g.TargetGroupName)}</td><td class="num rps">${req === undefined ? '–' : fmt(req / period)}</td>` +
          `<td class="num errs">${req ? fmt((100 * (err || 0)) / req) + '%' : '–'}</td><td class="num lat">${lat === undefined ? '–' : fmt(lat * 1000) + ' ms'}</td>` +
          `<td class="num healthy">${healthy}</td><td class="num unhealthy ${unhealthy ? 'bad' : ''}">${unhealthy}</td></tr>`;
      }).join('');
      return errBox(W, 'tgs', 'traffic') + cards + `<table id="traffic"><thead><tr><th>Target group</th><th class="num">Requests/s</th><th class="num">5xx</th><th class="num">Latency (avg)</th><th class="num">Healthy</th><th class="num">Unhealthy</th></tr></thead><tbody>${rows}</tbody></table>` +
        `<p class="muted">From AWS/ApplicationELB (RequestCount, HTTPCode_Target_5XX_Count, TargetResponseTime per target group, the newest ${period} s period; published every <code>--metrics-period</code>); target counts from DescribeTargetHealth. Updated live.</p>` +
        `<div class="charts"><div><h2>Requests per second</h2>${lineChart(by('req').map(perSec), { id: 'chart-requests', unit: 'req/s', from: Date.now() - win * 1000, to: Date.now() })}</div>` +
        `<div><h2>Target 5xx per second</h2>${lineChart(by('err').map(perSec), { unit: '5xx/s', from: Date.now() - win * 1000, to: Date.now() })}</div>` +
        `<div><h2>Latency</h2>${lineChart(by('lat').map((s) => ({ ...s, v: s.v.map((v) => v * 1000) })), { unit: 'ms', from: Date.now() - win * 1000, to: Date.now() })}</div>` +
        `<div><h2>Healthy hosts</h2>${lineChart(by('hh'), { unit: 'hosts', from: Date.now() - win * 1000, to: Date.now() })}</div></div>`;
    }
    const ls = ((W.r.ls || {}).Listeners || []).slice().sort((a, b) => a.Port - b.Port);
    const listeners = ls.map((l) => {
      const rules = ((W.r['rules:' + l.ListenerArn] || {}).Rules || []).slice().sort((a, b) => prio(a) - prio(b));
      return `<div class="listener" data-port="${esc(l.Port)}"><h3>${esc(l.Protocol)}:${esc(l.Port)} <span class="muted">default: ${esc((l.DefaultActions || []).map((a) => actionText(a, tgName)).join('; '))}</span></h3>` +
        errBox(W, 'rules:' + l.ListenerArn) + `<table class="rules"><thead><tr><th class="num">Priority</th><th>Conditions</th><th>Actions</th></tr></thead><tbody>` +
        rules.map((r) => `<tr><td class="num">${esc(r.Priority)}</td><td>${r.IsDefault ? '<span class="muted">requests that match no other rule</span>' : (r.Conditions || []).map((c) => esc(conditionText(c))).join('<br>and ')}</td>` +
          `<td>${(r.Actions || []).slice().sort((a, b) => (a.Order || 0) - (b.Order || 0)).map((a) => esc(actionText(a, tgName))).join('<br>')}</td></tr>`).join('') + '</tbody></table></div>';
    }).join('');
    const groups = tgs.map((g) => {
      const hs = health(g);
      return `<div class="tg" data-tg="${esc(g.TargetGroupName)}"><h3>${esc(g.TargetGroupName)} <span class="muted">${esc(g.Protocol || '')}:${esc(g.Port || '')} · ${esc(g.TargetType)} · health check ${esc(g.HealthCheckProtocol || '')} ${esc(g.HealthCheckPath || '')} every ${esc(g.HealthCheckIntervalSeconds)} s · ${count(g, 'healthy')} healthy, ${hs.length - count(g, 'healthy')} not</span></h3>` +
        errBox(W, 'th:' + g.TargetGroupArn) + (hs.length ? `<table class="targets"><thead><tr><th>Target</th><th>Zone</th><th>State</th><th>Reason</th><th>Description</th></tr></thead><tbody>` +
          hs.map((d) => `<tr><td>${esc((d.Target || {}).Id)}:${esc((d.Target || {}).Port)}</td><td>${esc((d.Target || {}).AvailabilityZone || '')}</td><td>${badge((d.TargetHealth || {}).State)}</td><td>${esc((d.TargetHealth || {}).Reason || '')}</td><td>${esc((d.TargetHealth || {}).Description || '')}</td></tr>`).join('') + '</tbody></table>'
          : '<p class="muted">No registered targets.</p>') + '</div>';
    }).join('');
    const more = ls.length > 10 || tgs.length > 10 ? '<p class="muted">The first 10 listeners and 10 target groups are followed live; reload for the others\' latest state.</p>' : '';
    return errBox(W, 'ls', 'tgs') + cards + more + `<h2>Listeners</h2>${ls.length ? listeners : '<p class="muted">No listeners.</p>'}<h2>Target groups</h2>${tgs.length ? groups : '<p class="muted">No target groups.</p>'}`;
  });
  if (tab === 'traffic') {
    const upd = () => { const q = hashParams(); q.set('period', $('#period').value); q.set('window', $('#window').value); setHashParams(q); };
    $('#period').onchange = upd; $('#window').onchange = upd;
  }
}

// --- Cloud Map -------------------------------------------------------------------
const SD = 'servicediscovery';
function viewNamespaces() {
  stopStream();
  const W = {};
  watchLive(W, () => [call('ns', SD, 'ListNamespaces', {}), call('svcs', SD, 'ListServices', {})]);
  page('<h1>Cloud Map namespaces</h1>', () => {
    if (loading(W, 'ns')) return '<p class="muted">Loading…</p>';
    const ns = ((W.r.ns || {}).Namespaces || []).slice().sort((a, b) => a.Name.localeCompare(b.Name));
    return errBox(W, 'ns', 'svcs') + (ns.length ? `<table id="namespaces"><thead><tr><th>Namespace</th><th>Type</th><th>Id</th><th class="num">Services</th><th>Created</th></tr></thead><tbody>` +
      ns.map((n) => `<tr><td><a href="#/cloudmap/${enc(n.Id)}">${esc(n.Name)}</a></td><td>${esc(n.Type)}</td><td><code>${esc(n.Id)}</code></td><td class="num">${n.ServiceCount ?? ''}</td><td>${esc(time(n.CreateDate))}</td></tr>`).join('') + '</tbody></table>'
      : '<p class="muted">No namespaces: <code>aws servicediscovery create-http-namespace</code>.</p>');
  });
}

function viewNamespace(id, tab, metricsNS) {
  stopStream();
  const W = {};
  metricsNS = metricsNS || 'AWS/ECS';
  const period = 60;
  watchLive(W, (W) => {
    const calls = [call('ns', SD, 'GetNamespace', { Id: id }),
      call('svcs', SD, 'ListServices', { Filters: [{ Name: 'NAMESPACE_ID', Values: [id], Condition: 'EQ' }] })];
    const svcs = ((W.r.svcs || {}).Services || []).slice(0, 10);
    for (const s of svcs) {
      calls.push(call('health:' + s.Id, SD, 'GetInstancesHealthStatus', { ServiceId: s.Id }));
      if (tab !== 'traffic') calls.push(call('inst:' + s.Id, SD, 'ListInstances', { ServiceId: s.Id }));
    }
    if (tab === 'traffic') {
      calls.push(call('out', 'monitoring', 'ListMetrics', { Namespace: metricsNS, MetricName: 'RequestCount', Dimensions: [{ Name: 'TargetDiscoveryName' }] }),
        call('in', 'monitoring', 'ListMetrics', { Namespace: metricsNS, MetricName: 'RequestCount', Dimensions: [{ Name: 'DiscoveryName' }] }));
      const names = new Set(svcs.map((s) => s.Name));
      const edges = scEdges(W, names);
      const q = [];
      edges.slice(0, 100).forEach((e, n) => {
        for (const [pre, metric, stat] of [['r', 'RequestCount', 'Sum'], ['x', 'HTTPCode_Target_5XX_Count', 'Sum'], ['l', 'TargetResponseTime', 'Average']]) {
          q.push({ Id: `${pre}${n}`, MetricStat: { Metric: { Namespace: metricsNS, MetricName: metric, Dimensions: e.dims }, Period: period, Stat: stat } });
        }
      });
      if (q.length) calls.push(call('traffic', 'monitoring', 'GetMetricData', { MetricDataQueries: q }, 600));
    }
    return calls;
  }, 3);
  const t = (k, label) => `<a class="${k === tab ? 'sel' : ''}" href="#/cloudmap/${enc(id)}${k ? '/' + k : ''}">${label}</a>`;
  page(`<h1>Namespace <span id="nsname">${esc(id)}</span></h1><div class="tabs">${t('', 'Services and instances')}${t('traffic', 'Service Connect traffic')}</div>` +
    (tab === 'traffic' ? `<div class="actions"><label>Metrics namespace <input id="metricsns" value="${esc(metricsNS)}" size="16"></label><button id="setns">Show</button></div>` : ''), () => {
    if (loading(W, 'ns')) return '<p class="muted">Loading…</p>';
    if (W.e.ns) return errBox(W, 'ns');
    const ns = (W.r.ns || {}).Namespace || {};
    const h1 = $('#nsname'); if (h1 && h1.textContent !== ns.Name) h1.textContent = ns.Name || id;
    const svcs = ((W.r.svcs || {}).Services || []).slice().sort((a, b) => a.Name.localeCompare(b.Name));
    const counts = (s) => {
      const st = Object.values(((W.r['health:' + s.Id] || {}).Status) || {});
      const healthy = st.filter((x) => x === 'HEALTHY').length, unhealthy = st.filter((x) => x === 'UNHEALTHY').length;
      return { healthy, unhealthy, unknown: st.length - healthy - unhealthy };
    };
    if (tab === 'traffic') return errBox(W, 'svcs', 'out', 'in', 'traffic') + scGraph(W, svcs, counts, period, metricsNS);
    return errBox(W, 'svcs') + (svcs.length > 10 ? '<p class="muted">Instances and health are followed for the first 10 services.</p>' : '') + `<p class="muted">${esc(ns.Type)} · <code>${esc(ns.Arn)}</code>${ns.Properties && ns.Properties.HttpProperties ? ` · HTTP name ${esc(ns.Properties.HttpProperties.HttpName)}` : ''}</p>` +
      (svcs.length ? svcs.map((s) => {
        const c = counts(s);
        const insts = (W.r['inst:' + s.Id] || {}).Instances || [];
        const st = ((W.r['health:' + s.Id] || {}).Status) || {};
        return `<div class="sdservice" data-service="${esc(s.Name)}"><h3>${esc(s.Name)} <span class="muted">${esc(s.Id)} · ${c.healthy} healthy, ${c.unhealthy} unhealthy${c.unknown ? `, ${c.unknown} unknown` : ''}` +
          `${s.DnsConfig ? ' · DNS ' + esc((s.DnsConfig.DnsRecords || []).map((r) => `${r.Type} ${r.TTL}s`).join(', ')) : ''}${s.HealthCheckCustomConfig ? ' · custom health' : ''}${s.HealthCheckConfig ? ' · health check ' + esc(s.HealthCheckConfig.Type) : ''}</span></h3>` +
          errBox(W, 'inst:' + s.Id, 'health:' + s.Id) + (insts.length ? `<table class="instances"><thead><tr><th>Instance</th><th>Health</th><th>Attributes</th></tr></thead><tbody>` +
            insts.map((i) => `<tr><td>${esc(i.Id)}</td><td>${badge(st[i.Id])}</td><td class="attrs">${Object.entries(i.Attributes || {}).sort().map(([k, v]) => `${esc(k)}=${esc(v)}`).join('<br>')}</td></tr>`).join('') + '</tbody></table>'
            : '<p class="muted">No instances.</p>') + '</div>';
      }).join('') : '<p class="muted">No services in this namespace.</p>');
  });
  if (tab === 'traffic') $('#setns').onclick = () => { location.hash = `#/cloudmap/${enc(id)}/traffic/${enc($('#metricsns').value)}`; };
}

// scEdges lists the namespace's Service Connect traffic: one edge per
// client (ClusterName, ServiceName) and TargetDiscoveryName in the
// namespace's services, from the outbound RequestCount metrics.
function scEdges(W, names) {
  const out = [];
  for (const m of ((W.r.out || {}).Metrics || [])) {
    const d = Object.fromEntries((m.Dimensions || []).map((x) => [x.Name, x.Value]));
    if (!names.has(d.TargetDiscoveryName)) continue;
    out.push({ client: d.ServiceName || '?', cluster: d.ClusterName || '', target: d.TargetDiscoveryName, dims: m.Dimensions });
  }
  return out.sort((a, b) => (a.client + a.target).localeCompare(b.client + b.target));
}

function scGraph(W, svcs, counts, period, metricsNS) {
  const names = new Set(svcs.map((s) => s.Name));
  // An ECS service is drawn as the discovery name it serves (its inbound
  // metrics say which); a client-only service as itself.
  const serves = new Map();
  for (const m of ((W.r.in || {}).Metrics || [])) {
    const d = Object.fromEntries((m.Dimensions || []).map((x) => [x.Name, x.Value]));
    if (names.has(d.DiscoveryName) && d.ServiceName) serves.set(d.ServiceName, d.DiscoveryName);
  }
  const edges = scEdges(W, names);
  const series = metricSeries(W.r.traffic);
  const nodes = new Map();
  for (const s of svcs) {
    const c = counts(s);
    nodes.set(s.Name, { id: s.Name, label: s.Name, sub: [[c.healthy, 'healthy'], [c.unhealthy, 'unhealthy'], [c.unknown, 'unknown']].filter(([n], i) => n || i < 2 && c.healthy + c.unhealthy).map(([n, w]) => `${n} ${w}`).join(' · ') || 'no endpoints', bad: c.unhealthy > 0 });
  }
  const rows = [];
  const gedges = edges.slice(0, 100).map((e, n) => {
    const from = serves.get(e.client) || e.client;
    if (!nodes.has(from)) nodes.set(from, { id: from, label: from, sub: 'client' });
    const get = (pre) => newest(series.find((s) => s.id === pre + n));
    const req = get('r'), x5 = get('x'), lat = get('l');
    const rps = req === undefined ? undefined : req / period, er = req ? (100 * (x5 || 0)) / req : undefined;
    rows.push(`<tr data-edge="${esc(from)}>${esc(e.target)}"><td>${esc(e.client)}${from !== e.client ? ` <span class="muted">(${esc(from)})</span>` : ''}</td><td>${esc(e.target)}</td><td class="num rps">${rps === undefined ? '–' : fmt(rps)}</td><td class="num errs">${er === undefined ? '–' : fmt(er) + '%'}</td><td class="num lat">${lat === undefined ? '–' : fmt(lat) + ' ms'}</td></tr>`);
    return { from, to: e.target, label: `${rps === undefined ? '–' : fmt(rps)} rps · ${er === undefined ? '–' : fmt(er)}% 5xx · ${lat === undefined ? '–' : fmt(lat)} ms`, bad: er > 1 };
  });
  return `<p class="muted">Services of the namespace with their endpoint health (Cloud Map), and the traffic between them from the Service Connect metrics in <code>${esc(metricsNS)}</code> (RequestCount, HTTPCode_Target_5XX_Count, TargetResponseTime by ClusterName, ServiceName and TargetDiscoveryName; the newest ${period} s period). Updated live.</p>` +
    trafficGraph([...nodes.values()], gedges, { id: 'scgraph' }) +
    (rows.length ? `<table id="scedges"><thead><tr><th>Client service</th><th>Target</th><th class="num">Requests/s</th><th class="num">5xx</th><th class="num">Latency (avg)</th></tr></thead><tbody>${rows.join('')}</tbody></table>` : '<p class="muted">No Service Connect traffic metrics for this namespace yet.</p>');
}

// --- CloudWatch: metrics and alarms ----------------------------------------------------
const CW = 'monitoring';
async function viewMetrics() {
  stopStream();
  const p = hashParams();
  let all = [], token;
  do {
    const o = await aws(CW, 'ListMetrics', { NextToken: token });
    all = all.concat(o.Metrics || []);
    token = o.NextToken;
  } while (token && all.length < 5000);
  const nss = [...new Set(all.map((m) => m.Namespace))].sort();
  const ns = p.get('ns') || nss[0] || '';
  const names = [...new Set(all.filter((m) => m.Namespace === ns).map((m) => m.MetricName))].sort();
  const metric = p.get('m') || names[0] || '';
  const sets = all.filter((m) => m.Namespace === ns && m.MetricName === metric).map((m) => dimStr(m.Dimensions)).sort();
  const dims = p.has('d') ? p.get('d') : sets[0] || '';
  const stat = p.get('stat') || 'Average', period = Number(p.get('period')) || 60, win = Number(p.get('window')) || 3600;
  const W = {};
  const opt = (vals, sel) => vals.map((v) => `<option ${v === sel ? 'selected' : ''} value="${esc(v)}">${esc(v || '(no dimensions)')}</option>`).join('');
  page(`<h1>Metrics</h1>${nss.length ? `<div class="actions" id="picker"><label>Namespace <select id="mns">${opt(nss, ns)}</select></label>
    <label>Metric <select id="mname">${opt(names, metric)}</select></label><label>Dimensions <select id="mdims">${opt(sets, dims)}</select></label>
    <label>Statistic <select id="mstat">${opt(['Average', 'Sum', 'Minimum', 'Maximum', 'SampleCount', 'p50', 'p90', 'p99'], stat)}</select></label>
    <label>Period ${windowChoice('mperiod', period, PERIODS)}</label><label>Window ${windowChoice('mwindow', win, WINDOWS)}</label></div>` : '<p class="muted">No metrics yet.</p>'}`, nss.length ? () => {
    const s = metricSeries(W.r.data, { m: `${metric} ${stat}` });
    return errBox(W, 'data') + lineChart(s, { id: 'metricchart', width: 900, height: 280, from: Date.now() - win * 1000, to: Date.now() }) +
      `<p class="muted">GetMetricData as the signed-in identity, repeated every few seconds by the server (the chart changes when the answer does).</p>`;
  } : null);
  if (nss.length) {
    const dimensions = dims ? dims.split(', ').map((kv) => { const i = kv.indexOf('='); return { Name: kv.slice(0, i), Value: kv.slice(i + 1) }; }) : [];
    watchLive(W, () => [call('data', CW, 'GetMetricData', { MetricDataQueries: [{ Id: 'm', MetricStat: { Metric: { Namespace: ns, MetricName: metric, Dimensions: dimensions }, Period: period, Stat: stat } }] }, win)], Math.min(5, period));
  }
  const upd = (reset) => () => {
    const q = new URLSearchParams();
    q.set('ns', $('#mns').value);
    if (reset < 1) q.set('m', $('#mname').value);
    if (reset < 2) q.set('d', $('#mdims').value);
    q.set('stat', $('#mstat').value); q.set('period', $('#mperiod').value); q.set('window', $('#mwindow').value);
    location.hash = '#/metrics?' + q.toString();
  };
  if (nss.length) {
    $('#mns').onchange = upd(0); $('#mname').onchange = upd(1); $('#mdims').onchange = upd(2);
    $('#mstat').onchange = upd(2); $('#mperiod').onchange = upd(2); $('#mwindow').onchange = upd(2);
  }
}

const cmp = { GreaterThanOrEqualToThreshold: '≥', GreaterThanThreshold: '>', LessThanThreshold: '<', LessThanOrEqualToThreshold: '≤', LessThanLowerOrGreaterThanUpperThreshold: 'outside', GreaterThanUpperThreshold: '> upper', LessThanLowerThreshold: '< lower' };
function alarmMetric(a) {
  if (a.MetricName) return `${a.Namespace} ${a.MetricName}${a.Dimensions && a.Dimensions.length ? ` {${dimStr(a.Dimensions)}}` : ''} ${a.Statistic || a.ExtendedStatistic || ''} over ${a.Period} s`;
  return (a.Metrics || []).filter((m) => m.ReturnData !== false).map((m) => m.Expression || (m.MetricStat && m.MetricStat.Metric.MetricName) || m.Id).join(', ');
}
function viewAlarms() {
  stopStream();
  const W = {};
  watchLive(W, () => [call('alarms', CW, 'DescribeAlarms', { AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] })]);
  page('<h1>Alarms</h1>', () => {
    if (loading(W, 'alarms')) return '<p class="muted">Loading…</p>';
    const o = W.r.alarms || {};
    const as = (o.MetricAlarms || []).concat(o.CompositeAlarms || []).sort((a, b) => a.AlarmName.localeCompare(b.AlarmName));
    const n = (s) => as.filter((a) => a.StateValue === s).length;
    return errBox(W, 'alarms') + `<div class="cards"><div class="card"><div class="k">In alarm</div><div class="v">${n('ALARM')}</div></div><div class="card"><div class="k">OK</div><div class="v">${n('OK')}</div></div><div class="card"><div class="k">Insufficient data</div><div class="v">${n('INSUFFICIENT_DATA')}</div></div></div>` +
      (as.length ? `<table id="alarms"><thead><tr><th>Alarm</th><th>State</th><th>Condition</th><th>Reason</th><th>Since</th></tr></thead><tbody>` +
        as.map((a) => `<tr data-alarm="${esc(a.AlarmName)}"><td><a href="#/alarms/${enc(a.AlarmName)}">${esc(a.AlarmName)}</a></td><td>${badge(a.StateValue)}</td>` +
          `<td>${a.AlarmRule ? `<code>${esc(a.AlarmRule)}</code>` : `${esc(alarmMetric(a))} ${esc(cmp[a.ComparisonOperator] || a.ComparisonOperator)} ${esc(a.Threshold ?? a.ThresholdMetricId ?? '')}`}</td>` +
          `<td>${esc(a.StateReason || '')}</td><td>${esc(time(a.StateUpdatedTimestamp))}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No alarms: <code>aws cloudwatch put-metric-alarm</code>.</p>');
  });
}

const alarmPeriod = (a) => a.Period || (a.Metrics || []).map((m) => m.Period || (m.MetricStat || {}).Period).find(Boolean) || 60;
// alarmWindow is how far back an alarm's chart goes: 30 evaluation
// windows, at least 15 minutes.
const alarmWindow = (a) => Math.max(900, alarmPeriod(a) * (a.EvaluationPeriods || 1) * 30);
function viewAlarm(name) {
  stopStream();
  const W = {};
  watchLive(W, (W) => {
    const calls = [call('alarm', CW, 'DescribeAlarms', { AlarmNames: [name], AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] }), call('hist', CW, 'DescribeAlarmHistory', { AlarmName: name, MaxRecords: 50 })];
    const a = ((W.r.alarm || {}).MetricAlarms || [])[0];
    if (a) {
      const period = alarmPeriod(a);
      const q = a.MetricName ? [{ Id: 'm', MetricStat: { Metric: { Namespace: a.Namespace, MetricName: a.MetricName, Dimensions: a.Dimensions || [] }, Period: period, Stat: a.Statistic || a.ExtendedStatistic, Unit: a.Unit } }]
        : (a.Metrics || []).map((m) => ({ ...m, Period: m.Period || undefined }));
      calls.push(call('data', CW, 'GetMetricData', { MetricDataQueries: q }, alarmWindow(a)));
    }
    return calls;
  });
  page(`<h1>Alarm ${esc(name)}</h1>`, () => {
    if (loading(W, 'alarm')) return '<p class="muted">Loading…</p>';
    const o = W.r.alarm || {};
    const a = (o.MetricAlarms || [])[0] || (o.CompositeAlarms || [])[0];
    if (!a) return errBox(W, 'alarm') + '<p class="muted">No such alarm.</p>';
    const hist = (W.r.hist || {}).AlarmHistoryItems || [];
    return errBox(W, 'alarm', 'hist', 'data') + `<div class="cards"><div class="card"><div class="k">State</div><div class="v" id="alarmstate">${badge(a.StateValue)}</div></div>
      <div class="card"><div class="k">Condition</div><div class="v sm">${a.AlarmRule ? esc(a.AlarmRule) : `${esc(alarmMetric(a))} ${esc(cmp[a.ComparisonOperator] || a.ComparisonOperator)} ${esc(a.Threshold ?? '')} for ${esc(a.DatapointsToAlarm || a.EvaluationPeriods)} of ${esc(a.EvaluationPeriods)} periods`}</div></div>
      <div class="card"><div class="k">Actions</div><div class="v sm">${a.ActionsEnabled === false ? 'disabled' : esc([...(a.AlarmActions || [])].map(last).join(', ') || 'none')}</div></div></div>
      <p>${esc(a.StateReason || '')}</p>` +
      (a.AlarmRule ? '' : lineChart(metricSeries(W.r.data, { m: a.MetricName }).filter((s) => s.t.length || a.MetricName), { id: 'alarmchart', width: 900, height: 260, from: Date.now() - alarmWindow(a) * 1000, to: Date.now(), threshold: a.Threshold !== undefined ? { value: a.Threshold, label: 'threshold' } : undefined })) +
      `<h2>History</h2>${hist.length ? `<table id="alarmhistory"><thead><tr><th>Time</th><th>Type</th><th>Summary</th></tr></thead><tbody>${hist.map((h) => `<tr><td>${esc(time(h.Timestamp))}</td><td>${esc(h.HistoryItemType)}</td><td>${esc(h.HistorySummary)}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">No history yet.</p>'}`;
  });
}

// --- Application Auto Scaling ------------------------------------------------------------
const AAS = 'application-autoscaling';
function scalingCalls(resourceId) {
  const f = resourceId ? { ResourceIds: [resourceId] } : {};
  return [call('targets', AAS, 'DescribeScalableTargets', { ServiceNamespace: 'ecs', ...f }),
    call('policies', AAS, 'DescribeScalingPolicies', { ServiceNamespace: 'ecs', ...(resourceId ? { ResourceId: resourceId } : {}) }),
    call('activities', AAS, 'DescribeScalingActivities', { ServiceNamespace: 'ecs', ...(resourceId ? { ResourceId: resourceId } : {}), MaxResults: 50 })];
}
function policyText(p) {
  const t = p.TargetTrackingScalingPolicyConfiguration;
  if (t) {
    const m = t.PredefinedMetricSpecification ? t.PredefinedMetricSpecification.PredefinedMetricType : t.CustomizedMetricSpecification ? `${t.CustomizedMetricSpecification.Namespace || ''} ${t.CustomizedMetricSpecification.MetricName || 'metrics'}` : '';
    return `keep ${m} at ${t.TargetValue}${t.ScaleOutCooldown !== undefined ? `, cooldown out ${t.ScaleOutCooldown} s` : ''}${t.ScaleInCooldown !== undefined ? ` in ${t.ScaleInCooldown} s` : ''}${t.DisableScaleIn ? ', no scale-in' : ''}`;
  }
  const s = p.StepScalingPolicyConfiguration;
  if (s) {
    return `${s.AdjustmentType}: ` + (s.StepAdjustments || []).map((a) => `[${a.MetricIntervalLowerBound ?? '-∞'}, ${a.MetricIntervalUpperBound ?? '+∞'}) ${a.ScalingAdjustment >= 0 ? '+' : ''}${a.ScalingAdjustment}`).join(', ') + (s.Cooldown !== undefined ? `, cooldown ${s.Cooldown} s` : '');
  }
  return p.PolicyType;
}
function scalingHTML(W, linkServices) {
  if (loading(W, 'targets')) return '<p class="muted">Loading…</p>';
  const targets = (W.r.targets || {}).ScalableTargets || [];
  const policies = (W.r.policies || {}).ScalingPolicies || [];
  const acts = ((W.r.activities || {}).ScalingActivities || []).slice().sort((a, b) => (b.StartTime || 0) - (a.StartTime || 0));
  const svcLink = (rid) => { const p = String(rid).split('/'); return linkServices && p[0] === 'service' ? `<a href="#/clusters/${enc(p[1])}/services/${enc(p[2])}">${esc(rid)}</a>` : esc(rid); };
  return errBox(W, 'targets', 'policies', 'activities') + `<h2>Scalable targets</h2>` + (targets.length ? `<table id="scalabletargets"><thead><tr><th>Resource</th><th>Dimension</th><th class="num">Min</th><th class="num">Max</th><th>Suspended</th><th>Created</th></tr></thead><tbody>` +
    targets.map((t) => { const s = t.SuspendedState || {}; const susp = ['DynamicScalingInSuspended', 'DynamicScalingOutSuspended', 'ScheduledScalingSuspended'].filter((k) => s[k]).map((k) => k.replace('Suspended', '')).join(', ');
      return `<tr><td>${svcLink(t.ResourceId)}</td><td>${esc(t.ScalableDimension)}</td><td class="num">${esc(t.MinCapacity)}</td><td class="num">${esc(t.MaxCapacity)}</td><td>${esc(susp || 'no')}</td><td>${esc(time(t.CreationTime))}</td></tr>`; }).join('') + '</tbody></table>'
    : '<p class="muted">No scalable targets: <code>aws application-autoscaling register-scalable-target</code>.</p>') +
    `<h2>Policies</h2>` + (policies.length ? `<table id="scalingpolicies"><thead><tr><th>Policy</th><th>Resource</th><th>Type</th><th>Configuration</th><th>Alarms</th></tr></thead><tbody>` +
      policies.map((p) => `<tr><td>${esc(p.PolicyName)}</td><td>${svcLink(p.ResourceId)}</td><td>${esc(p.PolicyType)}</td><td>${esc(policyText(p))}</td><td>${(p.Alarms || []).map((a) => `<a href="#/alarms/${enc(a.AlarmName)}">${esc(a.AlarmName)}</a>`).join('<br>')}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No scaling policies.</p>') +
    `<h2>Activities</h2>` + (acts.length ? `<table id="scalingactivities"><thead><tr><th>Started</th><th>Resource</th><th>Status</th><th>Description</th><th>Cause</th><th>Message</th></tr></thead><tbody>` +
      acts.map((a) => `<tr><td>${esc(time(a.StartTime))}</td><td>${svcLink(a.ResourceId)}</td><td>${badge(a.StatusCode)}</td><td>${esc(a.Description)}</td><td>${esc(a.Cause)}</td><td>${esc(a.StatusMessage || '')}${(a.NotScaledReasons || []).map((r) => `<br>${esc(r.Code)}`).join('')}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No scaling activities.</p>');
}
function viewScaling() {
  stopStream();
  const W = {};
  watchLive(W, () => scalingCalls(''));
  page('<h1>Scaling <span class="muted">(Application Auto Scaling, ECS services)</span></h1>', () => scalingHTML(W, true));
}

// --- EventBridge ---------------------------------------------------------------------
const EV = 'events';
function viewEventBuses() {
  stopStream();
  const W = {};
  watchLive(W, (W) => [call('buses', EV, 'ListEventBuses', {})].concat(((W.r.buses || {}).EventBuses || []).slice(0, 20).map((b) => call('rules:' + b.Name, EV, 'ListRules', { EventBusName: b.Name }))));
  page('<h1>EventBridge</h1>', () => {
    if (loading(W, 'buses')) return '<p class="muted">Loading…</p>';
    const buses = ((W.r.buses || {}).EventBuses || []).slice().sort((a, b) => (a.Name === 'default' ? -1 : b.Name === 'default' ? 1 : a.Name.localeCompare(b.Name)));
    return errBox(W, 'buses') + buses.map((b) => {
      const rules = ((W.r['rules:' + b.Name] || {}).Rules || []).slice().sort((x, y) => x.Name.localeCompare(y.Name));
      return `<div class="bus" data-bus="${esc(b.Name)}"><h2>Bus ${esc(b.Name)}</h2>${errBox(W, 'rules:' + b.Name)}` + (rules.length ? `<table class="rules"><thead><tr><th>Rule</th><th>State</th><th>Schedule or pattern</th><th>Description</th></tr></thead><tbody>` +
        rules.map((r) => `<tr><td><a href="#/events/${enc(b.Name)}/${enc(r.Name)}">${esc(r.Name)}</a></td><td>${badge(r.State)}</td><td><code>${esc(r.ScheduleExpression || r.EventPattern || '')}</code></td><td>${esc(r.Description || '')}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No rules.</p>') + '</div>';
    }).join('');
  });
}

function viewEventRule(bus, name) {
  stopStream();
  const W = {};
  const win = 10800, period = 60;
  const q = ['Invocations', 'FailedInvocations', 'TriggeredRules'].map((m, i) => ({ Id: `m${i}`, Label: m, MetricStat: { Metric: { Namespace: 'AWS/Events', MetricName: m, Dimensions: [{ Name: 'RuleName', Value: name }] }, Period: period, Stat: 'Sum' } }));
  watchLive(W, () => [call('rule', EV, 'DescribeRule', { Name: name, EventBusName: bus }), call('targets', EV, 'ListTargetsByRule', { Rule: name, EventBusName: bus }),
    call('data', CW, 'GetMetricData', { MetricDataQueries: q }, win), call('deliveries', BERTH, 'ListRuleDeliveries', { EventBusName: bus, Rule: name })]);
  page(`<h1>Rule ${esc(name)} <span class="muted">on ${esc(bus)}</span></h1>`, () => {
    if (loading(W, 'rule')) return '<p class="muted">Loading…</p>';
    if (W.e.rule) return errBox(W, 'rule');
    const r = W.r.rule;
    const ts = (W.r.targets || {}).Targets || [];
    let pattern = r.EventPattern || '';
    try { pattern = JSON.stringify(JSON.parse(pattern), null, 2); } catch (e) { /* as stored */ }
    return errBox(W, 'targets', 'data', 'deliveries') + `<div class="cards"><div class="card"><div class="k">State</div><div class="v">${badge(r.State)}</div></div>${r.ScheduleExpression ? `<div class="card"><div class="k">Schedule</div><div class="v sm"><code>${esc(r.ScheduleExpression)}</code></div></div>` : ''}</div>` +
      (pattern ? `<h2>Event pattern</h2><pre id="pattern">${esc(pattern)}</pre>` : '') +
      `<h2>Targets</h2>${ts.length ? `<table id="ruletargets"><thead><tr><th>Id</th><th>Target</th><th>Input</th><th>Retry / dead-letter</th></tr></thead><tbody>` +
        ts.map((t) => `<tr><td>${esc(t.Id)}</td><td><code>${esc(t.Arn)}</code>${t.EcsParameters ? `<br><span class="muted">task ${esc(last(t.EcsParameters.TaskDefinitionArn))} ×${esc(t.EcsParameters.TaskCount || 1)}</span>` : ''}</td>` +
          `<td><code>${esc(t.Input || t.InputPath || (t.InputTransformer ? t.InputTransformer.InputTemplate : '') || 'the event')}</code></td><td>${t.RetryPolicy ? `${esc(t.RetryPolicy.MaximumRetryAttempts ?? '')} retries, ${esc(t.RetryPolicy.MaximumEventAgeInSeconds ?? '')} s` : 'default'}${t.DeadLetterConfig ? `<br>${esc(t.DeadLetterConfig.Arn)}` : ''}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">No targets.</p>'}` +
      `<h2>Recent deliveries</h2>` + deliveriesHTML(W) +
      `<h3>Per minute <span class="muted">(the rule's AWS/Events metrics)</span></h3>` +
      lineChart(metricSeries(W.r.data), { id: 'rulechart', width: 900, height: 240, from: Date.now() - win * 1000, to: Date.now(), unit: 'per minute' });
  });
}

// deliveriesHTML lists a rule's delivery records (Berth's own read
// ListRuleDeliveries): every attempt to invoke a target, newest first.
function deliveriesHTML(W) {
  if (!W.r.deliveries) return W.e.deliveries ? '' : '<p class="muted">Loading…</p>';
  const ds = W.r.deliveries.Deliveries || [];
  if (!ds.length) return '<p class="muted" id="deliveries">No deliveries yet.</p>';
  const iso = (t) => String(t || '').replace('T', ' ').replace(/(\.\d{3})\d*Z$/, '$1Z');
  const msf = (v) => (v === undefined || v === null ? '' : v < 10 ? v.toFixed(1) : Math.round(v));
  return `<p class="muted">Every attempt to invoke a target, newest first (${ds.length} shown; Berth keeps the newest 100 per rule). Duration: the invocation; latency: from the event's acceptance to the attempt's end.</p>` +
    `<table id="deliveries"><thead><tr><th>Time</th><th>Event</th><th>Target</th><th>Outcome</th><th class="num">Attempt</th><th class="num">Duration ms</th><th class="num">Latency ms</th><th>Error</th></tr></thead><tbody>` +
    ds.map((d) => `<tr data-outcome="${esc(d.outcome)}"><td>${esc(iso(d.time))}</td><td><code>${esc(d.eventId)}</code></td><td title="${esc(d.targetArn)}">${esc(d.targetId)}</td><td>${badge(d.outcome)}</td>` +
      `<td class="num">${esc(d.attempt)}</td><td class="num">${msf(d.durationMs)}</td><td class="num">${msf(d.sinceAcceptedMs)}</td>` +
      `<td>${esc(d.error || '')}${d.nextAttempt ? `<br><span class="muted">next attempt ${esc(iso(d.nextAttempt))}</span>` : ''}</td></tr>`).join('') + '</tbody></table>';
}

// --- routing -----------------------------------------------------------------------
async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  current = null;
  stopWatch();
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
    if (parts[0] === 'loadbalancers' && parts[1]) return viewLoadBalancer(parts[1], parts[2] || '');
    if (parts[0] === 'loadbalancers') return viewLoadBalancers();
    if (parts[0] === 'cloudmap' && parts[1]) return viewNamespace(parts[1], parts[2] || '', parts[3]);
    if (parts[0] === 'cloudmap') return viewNamespaces();
    if (parts[0] === 'metrics') return await viewMetrics();
    if (parts[0] === 'alarms' && parts[1]) return viewAlarm(parts[1]);
    if (parts[0] === 'alarms') return viewAlarms();
    if (parts[0] === 'scaling') return viewScaling();
    if (parts[0] === 'events' && parts[1] && parts[2]) return viewEventRule(parts[1], parts[2]);
    if (parts[0] === 'events') return viewEventBuses();
    return viewClusters();
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
