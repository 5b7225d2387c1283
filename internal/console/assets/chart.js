// Charts and graphs drawn as SVG strings: no library, nothing fetched.
// Every label goes through esc; callers insert the string with innerHTML.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v) => (v === undefined || v === null ? '' : String(v).replace(/[&<>"']/g, (c) => ESC[c]));

export const PALETTE = ['#1f6feb', '#cf222e', '#1a7f37', '#b08800', '#8250df', '#0a7ea4', '#d4570b', '#57606a'];

// fmt shows a number with three significant digits and a k/M/G suffix.
export function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3).replace(/\.?0+$/, '') + 'G';
  if (a >= 1e6) return (v / 1e6).toPrecision(3).replace(/\.?0+$/, '') + 'M';
  if (a >= 1e4) return (v / 1e3).toPrecision(3).replace(/\.?0+$/, '') + 'k';
  if (a === 0) return '0';
  if (a >= 100) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

// niceStep is a 1, 2 or 5 times a power of ten near range/n.
function niceStep(range, n) {
  const raw = range / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);
const hhmmss = (ms) => new Date(ms).toISOString().slice(11, 19);

// lineChart draws series [{name, t: [epoch ms], v: [number]}] as lines over
// time. Options: width, height, from and to (epoch ms; else the data's),
// unit (shown by the axis), threshold ({value, label}) as a dashed line, id.
export function lineChart(series, opts = {}) {
  const W = opts.width || 640, H = opts.height || 200;
  const L = 52, R = 12, T = 18, B = 38 + 16 * Math.ceil(series.length / 3);
  const pw = W - L - R, ph = H - T - B;
  let t0 = opts.from, t1 = opts.to;
  let vmax = 0, vmin = 0;
  for (const s of series) {
    for (let i = 0; i < s.t.length; i++) {
      if (t0 === undefined || s.t[i] < t0) t0 = opts.from ?? s.t[i];
      if (t1 === undefined || s.t[i] > t1) t1 = opts.to ?? s.t[i];
      vmax = Math.max(vmax, s.v[i]);
      vmin = Math.min(vmin, s.v[i]);
    }
  }
  if (opts.threshold && Number.isFinite(opts.threshold.value)) {
    vmax = Math.max(vmax, opts.threshold.value);
    vmin = Math.min(vmin, opts.threshold.value);
  }
  const now = Date.now();
  if (t0 === undefined) { t0 = now - 3600e3; t1 = now; }
  if (t1 <= t0) t1 = t0 + 60e3;
  if (vmax === vmin) vmax = vmin + 1;
  const step = niceStep(vmax - vmin, 4);
  vmax = Math.ceil(vmax / step) * step;
  vmin = Math.floor(vmin / step) * step;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * pw;
  const y = (v) => T + ph - ((v - vmin) / (vmax - vmin)) * ph;
  const out = [`<svg class="chart" ${opts.id ? `id="${esc(opts.id)}"` : ''} viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" xmlns="http://www.w3.org/2000/svg">`];
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#fff" stroke="#dde1e6"/>`);
  for (let v = vmin; v <= vmax + step / 2; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}" stroke="#eef1f4"/><text x="${L - 6}" y="${yy}" dy="4" text-anchor="end" font-size="11" fill="#6b7480">${esc(fmt(v))}</text>`);
  }
  const tstep = niceStep(t1 - t0, 5);
  const span = t1 - t0;
  for (let t = Math.ceil(t0 / tstep) * tstep; t <= t1; t += tstep) {
    const xx = x(t).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${T}" y2="${T + ph}" stroke="#f3f4f6"/><text x="${xx}" y="${T + ph + 14}" text-anchor="middle" font-size="11" fill="#6b7480">${span < 600e3 ? hhmmss(t) : hhmm(t)}</text>`);
  }
  if (opts.unit) out.push(`<text x="4" y="11" font-size="11" fill="#6b7480">${esc(opts.unit)}</text>`);
  if (opts.threshold && Number.isFinite(opts.threshold.value)) {
    const yy = y(opts.threshold.value).toFixed(1);
    out.push(`<line class="threshold" x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}" stroke="#cf222e" stroke-dasharray="5 4"/><text x="${L + pw - 4}" y="${yy}" dy="-4" text-anchor="end" font-size="11" fill="#cf222e">${esc(opts.threshold.label || '')} ${esc(fmt(opts.threshold.value))}</text>`);
  }
  series.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length];
    const idx = s.t.map((_, i) => i).sort((a, b) => s.t[a] - s.t[b]);
    const pts = idx.map((i) => `${x(s.t[i]).toFixed(1)},${y(s.v[i]).toFixed(1)}`);
    if (pts.length > 1) out.push(`<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${color}" stroke-width="1.8" points="${pts.join(' ')}"/>`);
    if (pts.length && pts.length <= 60) {
      for (const i of idx) out.push(`<circle cx="${x(s.t[i]).toFixed(1)}" cy="${y(s.v[i]).toFixed(1)}" r="2.2" fill="${color}"><title>${esc(s.name)} ${hhmmss(s.t[i])}: ${esc(fmt(s.v[i]))}</title></circle>`);
    }
    const lx = L + (k % 3) * (pw / 3), ly = T + ph + 30 + 16 * Math.floor(k / 3);
    const lastV = idx.length ? s.v[idx[idx.length - 1]] : undefined;
    out.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${ly + 1}" font-size="11" fill="#1d232b">${esc(s.name)}${lastV !== undefined ? ` (${esc(fmt(lastV))})` : ' (no data)'}</text>`);
  });
  if (!series.some((s) => s.t.length)) out.push(`<text x="${L + pw / 2}" y="${T + ph / 2}" text-anchor="middle" font-size="12" fill="#6b7480">no datapoints in this window</text>`);
  out.push('</svg>');
  return out.join('');
}

// trafficGraph draws services as nodes on a circle and traffic between
// them as arrows. nodes: [{id, label, sub, bad}], edges: [{from, to,
// label, bad}]. A node with bad set, or an edge with bad set, is drawn red.
export function trafficGraph(nodes, edges, opts = {}) {
  const W = opts.width || 900, H = opts.height || Math.max(340, Math.min(640, 200 + nodes.length * 40));
  // Nodes on an ellipse that leaves room for the boxes.
  const cx = W / 2, cy = H / 2, rx = W / 2 - 100, ry = H / 2 - 45;
  const pos = new Map();
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    pos.set(n.id, nodes.length === 1 ? { x: cx, y: cy } : { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) });
  });
  const out = [`<svg class="graph" ${opts.id ? `id="${esc(opts.id)}"` : ''} viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" xmlns="http://www.w3.org/2000/svg">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker>',
    '<marker id="arrowbad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#cf222e"/></marker></defs>',
    `<rect width="${W}" height="${H}" fill="#fff" stroke="#dde1e6"/>`];
  const bw = 150, bh = 42;
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b || a === b) continue;
    // From box edge to box edge, along the centre line.
    const dx = b.x - a.x, dy = b.y - a.y;
    const clip = (p, sx, sy) => {
      const k = Math.min(Math.abs((bw / 2 + 4) / (dx || 1e-9)), Math.abs((bh / 2 + 4) / (dy || 1e-9)));
      return { x: p.x + sx * dx * k, y: p.y + sy * dy * k };
    };
    const p = clip(a, 1, 1), q = clip(b, -1, -1);
    const color = e.bad ? '#cf222e' : '#57606a';
    // The label sits beside the line (left of its direction), so the two
    // directions between a pair of services do not overlap.
    const len = Math.hypot(dx, dy) || 1;
    const off = { x: (dy / len) * 16, y: (-dx / len) * 16 };
    out.push(`<g class="edge" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><line x1="${p.x.toFixed(1)}" y1="${p.y.toFixed(1)}" x2="${q.x.toFixed(1)}" y2="${q.y.toFixed(1)}" stroke="${color}" stroke-width="1.6" marker-end="url(#${e.bad ? 'arrowbad' : 'arrow'})"/>` +
      `<text x="${((p.x + q.x) / 2 + off.x).toFixed(1)}" y="${((p.y + q.y) / 2 + off.y).toFixed(1)}" text-anchor="middle" font-size="11" fill="${color}" paint-order="stroke" stroke="#fff" stroke-width="3">${esc(e.label)}</text></g>`);
  }
  for (const n of nodes) {
    const c = pos.get(n.id);
    out.push(`<g class="node" data-node="${esc(n.id)}"><rect x="${(c.x - bw / 2).toFixed(1)}" y="${(c.y - bh / 2).toFixed(1)}" width="${bw}" height="${bh}" rx="6" fill="${n.bad ? '#ffebe9' : '#f6f8fa'}" stroke="${n.bad ? '#cf222e' : '#8c959f'}"/>` +
      `<text x="${c.x.toFixed(1)}" y="${(c.y - 4).toFixed(1)}" text-anchor="middle" font-size="12" font-weight="600" fill="#1d232b">${esc(n.label)}</text>` +
      `<text x="${c.x.toFixed(1)}" y="${(c.y + 12).toFixed(1)}" text-anchor="middle" font-size="11" fill="${n.bad ? '#cf222e' : '#6b7480'}">${esc(n.sub || '')}</text></g>`);
  }
  if (!nodes.length) out.push(`<text x="${cx}" y="${cy}" text-anchor="middle" font-size="12" fill="#6b7480">no services</text>`);
  out.push('</svg>');
  return out.join('');
}
