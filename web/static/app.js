// tote dashboard: one hand-written ES module, no framework, no build step.
// The page is rendered by the server (Go templates); this module fills the
// charts (the vendored ECharts, loaded before it as window.echarts) and the
// tables beside them from the JSON API, keeps the whole state in the URL,
// and refreshes when the server says a batch was loaded.

const $ = (sel, el = document) => el.querySelector(sel);
const $$ = (sel, el = document) => [...el.querySelectorAll(sel)];
const view = document.documentElement.dataset.view;
const charts = new Map(); // id -> echarts instance
const tables = new Map(); // id -> the Table the chart and its table show
const pick = new Map(); // id -> the currency a ranking chart shows
let last = null; // the last business or pipeline data

// ---- theme: follows the system until the toggle is used -------------------
const themeKey = 'tote-theme';
const dark = () => {
  const t = localStorage.getItem(themeKey);
  return t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
};
function applyTheme() {
  const d = dark();
  if (localStorage.getItem(themeKey)) document.documentElement.dataset.theme = d ? 'dark' : 'light';
  else delete document.documentElement.dataset.theme;
  const b = $('#theme');
  b.setAttribute('aria-pressed', String(d));
  b.textContent = d ? 'Light mode' : 'Dark mode';
  for (const [id, c] of charts) { c.dispose(); charts.delete(id); }
  if (last) render(last);
}
$('#theme').addEventListener('click', () => {
  localStorage.setItem(themeKey, dark() ? 'light' : 'dark');
  applyTheme();
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (!localStorage.getItem(themeKey)) applyTheme();
});

// ---- small helpers ----------------------------------------------------------
const num = (v) => (v === null || v === undefined || v === '' ? 0 : Number(v));
const fmtInt = (n) => Number(n).toLocaleString('en-GB');
const fmtMoney = (s, cur) => {
  const n = Number(s);
  return (cur ? cur + ' ' : '') + n.toLocaleString('en-GB', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
};
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
async function getJSON(url, signal) {
  const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function download(name, href) {
  const a = el('a', { href, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}
function csvOf(t) {
  const q = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
  };
  return [t.columns.map((c) => q(c.label)), ...t.rows.map((r) => t.columns.map((c) => q(r[c.key])))].map((r) => r.join(',')).join('\r\n') + '\r\n';
}
const cell = (c, v) => {
  if (v === null || v === undefined) return '';
  if (c.kind === 'bool') return v ? 'yes' : 'no';
  return String(v);
};

// ---- state: all of it in the URL ---------------------------------------------
const params = () => new URLSearchParams(location.search);
function go(p, push = true) {
  const q = p.toString();
  history[push ? 'pushState' : 'replaceState'](null, '', q ? '?' + q : location.pathname);
  syncForm();
  refresh();
}
function formParams() {
  const f = $('#filters');
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(f)) if (v !== '') p.append(k, v);
  if (p.get('from') || p.get('to')) {
    if (p.get('preset') !== 'custom' && f.dataset.dates === 'typed') p.set('preset', 'custom');
  }
  if (p.get('preset') !== 'custom') { p.delete('from'); p.delete('to'); }
  if (p.get('preset') === '12m') p.delete('preset');
  return p;
}
function syncForm() {
  const f = $('#filters');
  if (!f) return;
  const p = params();
  for (const s of $$('select', f)) {
    const vals = p.getAll(s.name);
    for (const o of s.options) o.selected = s.multiple ? vals.includes(o.value) : o.value === (vals[0] ?? (s.name === 'preset' ? '12m' : ''));
  }
  for (const i of $$('input[type=date], input[type=datetime-local]', f)) i.value = p.get(i.name) || '';
  $$('input[name=xf]', f).forEach((i) => i.remove());
  for (const x of p.getAll('xf')) f.append(el('input', { type: 'hidden', name: 'xf', value: x }));
  const chosen = $('#design-chosen');
  const keep = new Map($$('li', chosen).map((li) => [$('input', li).value, $('span', li).textContent]));
  chosen.replaceChildren();
  for (const id of p.getAll('design')) addDesignChip(id, keep.get(id) || designNames.get(id) || 'design ' + id);
  delete f.dataset.dates;
}

// Cross-filters: chips that remove themselves.
const xfNames = { country: 'Country', city: 'City', design: 'Design', staff: 'Staff', dept: 'Department', cur: 'Currency', cp: 'Counterparty', period: 'Period', lead: 'Lead time' };
// The lead-time buckets' names, by index, as the server defines them.
const leadLabels = () => ((last && last.lead_buckets) || []).map((b) => b.label);
const designNames = new Map();
function xfLabel(x) {
  const [dim, ...rest] = x.split(':');
  const v = rest.join(':');
  let shown = v;
  if (dim === 'lead') shown = leadLabels()[Number(v)] ?? v;
  if (dim === 'design') shown = designNames.get(v) || v;
  if (dim === 'staff' || dim === 'cp') {
    const o = $(`select[name=${dim}] option[value="${CSS.escape(v)}"]`);
    if (o) shown = o.textContent;
  }
  if (dim === 'period') shown = v.replace('..', ' to ');
  return `${xfNames[dim] || dim}: ${shown}`;
}
function renderChips() {
  const ul = $('#chips');
  if (!ul) return;
  ul.replaceChildren();
  for (const x of params().getAll('xf')) {
    const label = xfLabel(x);
    ul.append(el('li', { 'data-xf': x }, label, el('button', {
      type: 'button', 'aria-label': `Remove cross-filter ${label}`, onclick: () => {
        const p = params();
        const rest = p.getAll('xf').filter((y) => y !== x);
        p.delete('xf');
        rest.forEach((y) => p.append('xf', y));
        go(p);
      },
    }, '×')));
  }
}
function crossFilter(x) {
  const p = params();
  if (!p.getAll('xf').includes(x)) p.append('xf', x);
  go(p);
}

// ---- charts -------------------------------------------------------------------
function chartFor(id) {
  let c = charts.get(id);
  const node = $('#c-' + id);
  if (!node || !window.echarts) return null;
  if (!c) {
    c = echarts.init(node, dark() ? 'dark' : null, { renderer: 'canvas' });
    c.on('click', (e) => onChartClick(id, e));
    charts.set(id, c);
  }
  return c;
}
const base = () => ({
  backgroundColor: 'transparent',
  animation: !matchMedia('(prefers-reduced-motion: reduce)').matches,
  aria: { enabled: true },
  tooltip: { trigger: 'item', confine: true },
  grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
  legend: { top: 0, type: 'scroll' },
});
const currenciesOf = (t) => [...new Set(t.rows.map((r) => r.currency))];
// The currency a ranking chart shows (money is never summed across currencies).
function shownCurrency(id, t) {
  const curs = currenciesOf(t);
  let c = pick.get(id);
  if (!curs.includes(c)) c = curs[0];
  const tools = $(`#p-${id} .tools`);
  let sel = $('select.cur', tools);
  if (curs.length > 1) {
    if (!sel) {
      sel = el('select', { class: 'cur', 'aria-label': 'Currency shown in the chart', onchange: (e) => { pick.set(id, e.target.value); render(last); } });
      tools.prepend(sel);
    }
    sel.replaceChildren(...curs.map((x) => el('option', { value: x, selected: x === c }, x)));
  } else if (sel) sel.remove();
  return c;
}

// Each chart of the business view: its option from its table, and what a
// click on it (or a row of its table) filters by.
const businessCharts = {
  series: {
    option(t) {
      const curs = currenciesOf(t);
      const periods = [...new Set(t.rows.map((r) => r.period))].sort();
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: periods },
        yAxis: { type: 'value', name: 'Revenue' },
        series: curs.map((c) => ({
          name: c, type: 'line', smooth: true, showSymbol: periods.length < 60,
          data: periods.map((p) => { const r = t.rows.find((x) => x.period === p && x.currency === c); return r ? num(r.revenue) : 0; }),
        })),
      };
    },
    click: (e) => periodXF(e.name),
    rowXF: (r) => [periodXF(r.period), 'cur:' + r.currency],
  },
  countries: {
    option(t, id) {
      const cur = shownCurrency(id, t);
      const rows = t.rows.filter((r) => r.currency === cur);
      const max = Math.max(1, ...rows.map((r) => num(r.revenue)));
      return {
        ...base(), legend: { show: false },
        tooltip: { trigger: 'item', formatter: (p) => `${p.name}: ${p.value ? fmtMoney(p.value, cur) : 'no sales'}` },
        visualMap: { min: 0, max, left: 8, bottom: 8, text: ['more', 'less'], calculable: true, inRange: { color: ['#c6dbef', '#08519c'] } },
        series: [{
          name: 'Revenue ' + cur, type: 'map', map: 'world', roam: true, nameMap: worldNames,
          emphasis: { label: { show: false } },
          data: rows.map((r) => ({ name: r.country, value: num(r.revenue) })),
        }],
      };
    },
    click: (e) => (e.name ? 'country:' + e.name : null),
    rowXF: (r) => ['country:' + r.country, 'cur:' + r.currency],
  },
  cities: rankBars((r) => r.city, (r) => 'city:' + r.city),
  designs: rankBars((r) => `${r.design} (${r.rank})`, (r) => 'design:' + r.design_id),
  counterparties: rankBars((r) => r.counterparty, (r) => 'cp:' + r.cp),
  staff: rankBars((r) => r.name, (r) => 'staff:' + r.staff),
  departments: {
    option(t, id) {
      const cur = shownCurrency(id, t);
      const rows = t.rows.filter((r) => r.currency === cur);
      return {
        ...base(),
        series: [{ name: 'Revenue ' + cur, type: 'pie', radius: ['35%', '70%'], data: rows.map((r) => ({ name: r.dept, value: num(r.revenue), xf: 'dept:' + r.dept })) }],
      };
    },
    click: (e) => e.data && e.data.xf,
    rowXF: (r) => ['dept:' + r.dept, 'cur:' + r.currency],
  },
  currency_mix: {
    option(t) {
      return { ...base(), series: [{ name: 'Orders', type: 'pie', radius: ['35%', '70%'], data: t.rows.map((r) => ({ name: r.currency, value: num(r.orders), xf: 'cur:' + r.currency })) }] };
    },
    click: (e) => e.data && e.data.xf,
    rowXF: (r) => ['cur:' + r.currency],
  },
  payments: {
    option(t) {
      const curs = currenciesOf(t);
      const statuses = ['paid', 'due', 'overdue'];
      const cats = [];
      for (const c of curs) for (const ty of new Set(t.rows.filter((r) => r.currency === c).map((r) => r.type))) cats.push(`${c} ${ty}`);
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'value', name: 'Amount' }, yAxis: { type: 'category', data: cats },
        color: ['#1a7f37', '#bf8700', '#cf222e'],
        series: statuses.map((s) => ({
          name: s, type: 'bar', stack: 'status',
          data: cats.map((k) => { const r = t.rows.find((x) => `${x.currency} ${x.type}` === k && x.status === s); return r ? num(r.amount) : 0; }),
        })),
      };
    },
    click: (e) => { openDrill({ kind: 'payments', xf: ['cur:' + e.name.split(' ')[0]], status: e.seriesName }); return null; },
    drill: (r) => ({ kind: 'payments', xf: ['cur:' + r.currency], status: r.status }),
  },
  purchases_vs_sales: {
    option(t, id) {
      const cur = shownCurrency(id, t);
      const rows = t.rows.filter((r) => r.currency === cur);
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: rows.map((r) => r.period) }, yAxis: { type: 'value', name: cur },
        series: [
          { name: 'Sales', type: 'bar', data: rows.map((r) => num(r.sales)) },
          { name: 'Purchases', type: 'bar', data: rows.map((r) => num(r.purchases)) },
        ],
      };
    },
    click: (e) => periodXF(e.name),
    drill: (r) => ({ kind: 'purchases', xf: [periodXF(r.period), 'cur:' + r.currency] }),
  },
  lead_time: {
    option(t) {
      const curs = currenciesOf(t);
      const labels = leadLabels();
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: labels }, yAxis: { type: 'value', name: 'Orders' },
        series: curs.map((c) => ({ name: c, type: 'bar', data: labels.map((l, i) => { const r = t.rows.find((x) => x.bucket === i && x.currency === c); return r ? num(r.orders) : 0; }) })),
      };
    },
    click: (e) => 'lead:' + e.dataIndex,
    rowXF: (r) => ['lead:' + r.bucket, 'cur:' + r.currency],
  },
};

// rankBars is a horizontal bar chart of one currency's rows by revenue,
// largest on top; a bar or a row of its table filters by xf.
function rankBars(label, xf) {
  return {
    option(t, id) {
      const cur = shownCurrency(id, t);
      const rows = t.rows.filter((r) => r.currency === cur).slice(0, 20).reverse();
      return {
        ...base(), legend: { show: false }, tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
        xAxis: { type: 'value', name: cur }, yAxis: { type: 'category', data: rows.map(label), axisLabel: { width: 160, overflow: 'truncate' } },
        series: [{ name: 'Revenue ' + cur, type: 'bar', data: rows.map((r) => ({ value: num(r.revenue), xf: xf(r) })) }],
      };
    },
    click: (e) => e.data && e.data.xf,
    rowXF: (r) => [xf(r), 'cur:' + r.currency],
  };
}

// The names in the world map for the countries totesys spells otherwise.
const worldNames = {
  'Bosnia and Herz.': 'Bosnia and Herzegovina', 'Cayman Is.': 'Cayman Islands', 'Antigua and Barb.': 'Antigua and Barbuda',
  'Falkland Is.': 'Falkland Islands (Malvinas)', 'South Korea': 'Republic of Korea', 'Korea': 'Republic of Korea',
  'United States of America': 'United States', 'Dominican Rep.': 'Dominican Republic', 'Czechia': 'Czech Republic',
};

function periodXF(start) {
  const g = (last && last.period && last.period.grain) || 'day';
  const d = new Date(start + 'T00:00:00Z');
  const e = new Date(d);
  if (g === 'week') e.setUTCDate(e.getUTCDate() + 6);
  if (g === 'month') { e.setUTCMonth(e.getUTCMonth() + 1); e.setUTCDate(0); }
  if (g === 'quarter') { e.setUTCMonth(e.getUTCMonth() + 3); e.setUTCDate(0); }
  return `period:${start}..${e.toISOString().slice(0, 10)}`;
}

function onChartClick(id, e) {
  const spec = (view === 'business' ? businessCharts : pipelineCharts)[id];
  if (!spec || !spec.click) return;
  const x = spec.click(e);
  if (x) crossFilter(x);
}

// ---- tables beside the charts ---------------------------------------------------
function renderTable(id, t, spec) {
  const wrap = $('#t-' + id);
  if (!wrap) return;
  const title = $('#h-' + id)?.textContent || id;
  const table = el('table', { class: 'data' }, el('caption', {}, title));
  const actions = spec && (spec.rowXF || spec.drill);
  table.append(el('thead', {}, el('tr', {}, t.columns.map((c) => el('th', { scope: 'col', class: c.kind === 'int' || c.kind === 'money' ? 'num' : null }, c.label)),
    actions ? el('th', { scope: 'col' }, 'Actions') : null)));
  const body = el('tbody');
  for (const r of t.rows) {
    const tr = el('tr', {}, t.columns.map((c) => el('td', { class: c.kind === 'int' || c.kind === 'money' ? 'num' : null }, cell(c, r[c.key]))));
    if (actions) {
      const td = el('td');
      const name = String(r[t.columns[0].key]);
      const second = t.columns[1] ? r[t.columns[1].key] ?? '' : '';
      if (spec.rowXF) {
        const xf = spec.rowXF(r);
        td.append(el('button', { type: 'button', 'aria-label': `Filter every chart by ${name}`, onclick: () => crossFilter(xf[0]) }, 'Filter'), ' ');
        td.append(el('button', { type: 'button', 'aria-label': `Show the rows behind ${name} ${second}`, onclick: () => openDrill({ kind: 'sales', xf }) }, 'Rows'));
      } else {
        td.append(el('button', { type: 'button', 'aria-label': `Show the rows behind ${name} ${second}`, onclick: () => openDrill(spec.drill(r)) }, 'Rows'));
      }
      tr.append(td);
    }
    body.append(tr);
  }
  if (!t.rows.length) body.append(el('tr', {}, el('td', { colspan: t.columns.length + (actions ? 1 : 0) }, 'No data for these filters.')));
  table.append(body);
  wrap.replaceChildren(table);
}

// Panel tools: CSV of the table, PNG of the chart, the table shown or not.
document.addEventListener('click', (e) => {
  const b = e.target.closest('[data-act]');
  if (!b) return;
  const id = b.closest('[data-chart]').dataset.chart;
  const t = tables.get(id);
  if (b.dataset.act === 'csv' && t) {
    download(`tote-${id}.csv`, URL.createObjectURL(new Blob([csvOf(t)], { type: 'text/csv' })));
  } else if (b.dataset.act === 'png') {
    const c = charts.get(id);
    if (c) download(`tote-${id}.png`, c.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: getComputedStyle(document.body).backgroundColor }));
  } else if (b.dataset.act === 'table') {
    const wrap = $('#t-' + id);
    const shown = wrap.classList.toggle('sr-only') === false;
    b.setAttribute('aria-expanded', String(shown));
  }
});

// ---- KPI cards -----------------------------------------------------------------
function change(now, before) {
  const a = Number(now), b = Number(before);
  if (!b) return { text: 'no previous period', cls: '' };
  const pct = ((a - b) / Math.abs(b)) * 100;
  const up = pct >= 0;
  return { text: `${up ? '▲' : '▼'} ${Math.abs(pct).toFixed(1)}% vs previous period`, cls: up ? 'up' : 'down' };
}
function renderKPIs(b) {
  const box = $('#kpis');
  for (const c of $$('.spark', box)) echarts.getInstanceByDom(c)?.dispose();
  box.replaceChildren();
  const series = b.charts.series;
  const pseries = b.charts.payment_series;
  if (!b.kpis.length) box.append(el('p', { class: 'hint' }, 'No sales in this period for these filters.'));
  for (const k of b.kpis) {
    const cards = [
      { key: 'revenue', label: 'Revenue', value: fmtMoney(k.revenue, k.currency), now: k.revenue, prev: k.prev_revenue, spark: (r) => num(r.revenue), drill: { kind: 'sales' } },
      { key: 'orders', label: 'Orders', value: fmtInt(k.orders), now: k.orders, prev: k.prev_orders, spark: (r) => num(r.orders), drill: { kind: 'sales' } },
      { key: 'units', label: 'Units sold', value: fmtInt(k.units), now: k.units, prev: k.prev_units, spark: (r) => num(r.units), drill: { kind: 'sales' } },
      { key: 'aov', label: 'Average order value', value: k.aov ? fmtMoney(k.aov, k.currency) : '—', now: k.aov, prev: k.prev_aov, spark: (r) => num(r.revenue) / Math.max(1, num(r.orders)), drill: { kind: 'sales' } },
      { key: 'overdue', label: 'Unpaid, overdue', value: `${fmtInt(k.overdue)} · ${fmtMoney(k.overdue_amount, k.currency)}`, now: k.overdue_amount, prev: k.prev_overdue_amount, drill: { kind: 'payments', status: 'overdue' }, note: k.oldest_overdue ? `oldest due ${k.oldest_overdue}` : '' },
    ];
    for (const c of cards) {
      const ch = change(c.now, c.prev);
      const card = el('button', {
        type: 'button', class: 'kpi', 'data-kpi': `${c.key}:${k.currency}`,
        'aria-label': `${c.label} ${k.currency}: ${c.value}, ${ch.text}. Show the rows behind it.`,
        onclick: () => openDrill({ ...c.drill, xf: ['cur:' + k.currency] }),
      },
      el('div', { class: 'label' }, `${c.label} · ${k.currency}`),
      el('div', { class: 'value', 'data-value': String(c.now ?? '') }, c.value),
      el('div', { class: 'change ' + ch.cls }, ch.text), c.note ? el('div', { class: 'change' }, c.note) : null,
      el('div', { class: 'spark', 'aria-hidden': 'true' }));
      box.append(card);
      const pts = c.spark
        ? series.rows.filter((r) => r.currency === k.currency).map(c.spark)
        : pseries.rows.filter((r) => r.currency === k.currency && r.paid === false).map((r) => num(r.amount));
      if (pts.length > 1 && window.echarts) {
        const sc = echarts.init($('.spark', card), dark() ? 'dark' : null);
        sc.setOption({ backgroundColor: 'transparent', animation: false, grid: { left: 0, right: 0, top: 2, bottom: 2 }, xAxis: { type: 'category', show: false }, yAxis: { type: 'value', show: false, scale: true }, series: [{ type: 'line', data: pts, showSymbol: false, lineStyle: { width: 1.5 }, areaStyle: { opacity: 0.15 } }] });
      }
    }
  }
}

// ---- drill-down ------------------------------------------------------------------
let drill = null;
function drillURL(d, page, csv) {
  const p = params();
  for (const x of d.xf || []) p.append('xf', x);
  p.set('kind', d.kind);
  if (d.status) p.set('status', d.status);
  if (page) p.set('page', String(page));
  return (csv ? '/api/drill.csv?' : '/api/drill?') + p;
}
async function openDrill(d, page = 1) {
  drill = { ...d, page };
  const dlg = $('#drill');
  if (!dlg) return;
  if (!dlg.open) dlg.showModal();
  const what = (d.xf || []).map(xfLabel).join(', ');
  $('#drill-title').textContent = `${d.kind === 'sales' ? 'Sales orders' : d.kind === 'payments' ? 'Payments' : 'Purchase orders'}${d.status ? ' (' + d.status + ')' : ''}${what ? ' · ' + what : ''}`;
  $('#drill-csv').href = drillURL(d, 0, true);
  $('#drill-summary').textContent = 'Loading…';
  try {
    const r = await getJSON(drillURL(d, page));
    const sum = { sales: 'revenue', payments: 'amount', purchases: 'value' }[r.kind];
    const totals = r.totals.rows.map((t) => `${t.currency}: ${fmtInt(t.rows)} rows, ${fmtMoney(t[sum], t.currency)}`).join('; ');
    const s = $('#drill-summary');
    s.dataset.total = String(r.total);
    s.textContent = `${fmtInt(r.total)} rows (${r.period.from} to ${r.period.to}, as of batch ${r.period.seq}). ${totals}`;
    const t = r.rows;
    const table = el('table', { class: 'data' }, el('caption', {}, `Page ${r.page} of ${Math.max(1, r.pages)}`),
      el('thead', {}, el('tr', {}, t.columns.map((c) => el('th', { scope: 'col' }, c.label)))),
      el('tbody', {}, t.rows.map((row) => el('tr', {}, t.columns.map((c) => {
        if (c.key === 'id' && r.kind === 'sales') return el('td', {}, el('button', { type: 'button', 'aria-label': `Version history of order ${row.id}`, onclick: () => { showHistory(row.id); dlg.close(); } }, String(row.id)));
        return el('td', {}, cell(c, row[c.key]));
      })))));
    $('#drill-table').replaceChildren(table);
    $('#drill-page').textContent = `Page ${r.page} of ${Math.max(1, r.pages)}`;
    $('#drill-prev').disabled = r.page <= 1;
    $('#drill-next').disabled = r.page >= r.pages;
  } catch (err) {
    $('#drill-summary').textContent = 'Could not load the rows: ' + err.message;
  }
}
if ($('#drill')) {
  $('#drill-close').addEventListener('click', () => $('#drill').close());
  $('#drill-prev').addEventListener('click', () => drill && openDrill(drill, drill.page - 1));
  $('#drill-next').addEventListener('click', () => drill && openDrill(drill, drill.page + 1));
}

// ---- an order's history ----------------------------------------------------------
async function showHistory(id) {
  $('#history-id').value = id;
  const box = $('#history-table');
  box.textContent = 'Loading…';
  try {
    const r = await getJSON('/api/history?order=' + encodeURIComponent(id));
    const t = r.versions;
    tables.set('history', t);
    if (!t.rows.length) { box.textContent = `The warehouse has no sales order ${id}.`; return; }
    const gone = t.rows[t.rows.length - 1].change === 'deleted' ? '; deleted in the source, so no figure counts it' : '';
    box.replaceChildren(el('table', { class: 'data' }, el('caption', {}, `Sales order ${id}: ${t.rows.length} version(s), in the order they were loaded${gone}`),
      el('thead', {}, el('tr', {}, t.columns.map((c) => el('th', { scope: 'col' }, c.label)))),
      el('tbody', {}, t.rows.map((row) => el('tr', row.change ? { class: 'deleted' } : {}, t.columns.map((c) => el('td', {}, cell(c, row[c.key]))))))));
    $('#history').scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (err) {
    box.textContent = 'Could not load the history: ' + err.message;
  }
}
$('#history-form')?.addEventListener('submit', (e) => { e.preventDefault(); showHistory($('#history-id').value); });

// ---- designs: search, choose, remove ---------------------------------------------
function addDesignChip(id, name) {
  designNames.set(String(id), name);
  const ul = $('#design-chosen');
  if ($$('input', ul).some((i) => i.value === String(id))) return;
  ul.append(el('li', {}, el('input', { type: 'hidden', name: 'design', value: id }), el('span', {}, name),
    el('button', { type: 'button', 'aria-label': `Remove design ${name}`, onclick: (e) => { e.target.closest('li').remove(); go(formParams()); } }, '×')));
}
const dq = $('#f-design-q');
if (dq) {
  for (const li of $$('#design-chosen li')) {
    const id = $('input', li).value, name = $('span', li).textContent;
    li.remove();
    addDesignChip(id, name);
  }
  let timer;
  dq.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const found = await getJSON('/api/designs?q=' + encodeURIComponent(dq.value)).catch(() => []);
      $('#design-list').replaceChildren(...found.map((d) => el('option', { value: `${d.name} #${d.id}` })));
      for (const d of found) designNames.set(d.id, d.name);
    }, 200);
  });
  const choose = () => {
    const m = /#(\d+)$/.exec(dq.value.trim()) || /^(\d+)$/.exec(dq.value.trim());
    if (!m) return;
    addDesignChip(m[1], designNames.get(m[1]) || 'design ' + m[1]);
    dq.value = '';
    go(formParams());
  };
  dq.addEventListener('change', choose);
  dq.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); choose(); } });
}

// ---- the filter form ---------------------------------------------------------------
const form = $('#filters');
if (form) {
  form.addEventListener('submit', (e) => { e.preventDefault(); go(formParams()); });
  form.addEventListener('change', (e) => {
    if (e.target === dq) return;
    if (e.target.type === 'date') { form.dataset.dates = 'typed'; $('#f-preset').value = 'custom'; }
    go(formParams());
  });
}
addEventListener('popstate', () => { syncForm(); refresh(); });

// ---- fetching and rendering ----------------------------------------------------------
let inflight = null;
async function refresh() {
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const signal = inflight.signal;
  renderChips();
  try {
    const data = view === 'business'
      ? await getJSON('/api/business?' + params(), signal)
      : await getJSON('/api/pipeline', signal);
    last = data;
    render(data);
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    if (err.name === 'AbortError') return;
    const p = $('#period') || $('#run-status');
    if (p) p.textContent = 'Could not load: ' + err.message;
  }
  freshness();
}

function render(data) {
  if (view === 'business') {
    const p = data.period;
    $('#period').textContent = `${p.from} to ${p.to} (by ${p.grain}; previous period ${p.prev_from} to ${p.prev_to})` +
      (p.as_of_time ? ` · as of ${p.as_of_time}, batch ${p.as_of}` : ` · figures as of batch ${p.seq}`);
    renderKPIs(data);
    renderChips();
    for (const [id, spec] of Object.entries(businessCharts)) draw(id, spec, data.charts[id]);
  } else {
    renderPipeline(data);
  }
}
// nothingToShow is a chart that says so, rather than bare axes.
const nothingToShow = () => ({
  ...base(),
  title: { text: 'Nothing to show', left: 'center', top: 'middle', textStyle: { fontSize: 14, fontWeight: 'normal', color: '#888' } },
});
function draw(id, spec, t) {
  if (!t) return;
  tables.set(id, t);
  renderTable(id, t, spec);
  const c = chartFor(id);
  if (!c) return;
  try {
    c.setOption(t.rows.length ? spec.option(t, id) : nothingToShow(), true);
  } catch (err) {
    console.error(`chart ${id}:`, err);
  }
}
addEventListener('resize', () => { for (const c of charts.values()) c.resize(); });

// ---- freshness badge and live updates --------------------------------------------------
let fresh = null;
async function freshness() {
  try {
    fresh = await getJSON('/api/freshness');
    fresh.fetched = Date.now();
    showFreshness();
  } catch (err) {
    $('#freshness').textContent = 'freshness unknown: ' + err.message;
  }
}
function ago(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} days`;
}
function showFreshness() {
  const b = $('#freshness');
  if (!fresh) return;
  if (!fresh.as_of) { b.textContent = 'nothing loaded yet'; return; }
  const lag = fresh.lag_ns / 1e9 + (Date.now() - fresh.fetched) / 1000;
  const at = new Date(fresh.as_of).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  const s = fresh.summaries || {};
  b.textContent = `data as of ${at} · lag ${ago(lag)}` + (fresh.basis === 'newest load' ? ' (time of the newest load: no lake given)' : '') +
    (s.newest > s.seq ? ` · figures catching up: batch ${s.seq} of ${s.newest}` : '');
  b.dataset.lag = String(lag);
  // Stale past the server's threshold (--freshness-threshold; 0: never).
  b.classList.toggle('stale', fresh.stale_after_seconds > 0 && lag > fresh.stale_after_seconds);
}
setInterval(showFreshness, 1000);

let debounce;
function connect() {
  const live = $('#live');
  const es = new EventSource('/events');
  es.addEventListener('open', () => { live.textContent = 'live'; live.classList.add('on'); });
  es.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.classList.remove('on'); });
  const again = (e) => {
    live.textContent = e.type === 'loaded' ? `live · figures as of batch ${JSON.parse(e.data).seq}` : 'live';
    clearTimeout(debounce);
    debounce = setTimeout(refresh, 250);
  };
  es.addEventListener('loaded', again);
  es.addEventListener('resync', again);
}

// ---- the pipeline view -------------------------------------------------------------------
const secs = (ns) => (num(ns) / 1e9).toFixed(2);
const stamp = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : '');
const pipelineCharts = {
  stage_times: {
    option(t) {
      const stages = ['extract', 'transform', 'load'];
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: t.rows.map((r) => '#' + r.run) }, yAxis: { type: 'value', name: 'seconds' },
        series: stages.map((s) => ({ name: s, type: 'bar', stack: 'run', data: t.rows.map((r) => num(r[s])) })),
      };
    },
  },
  lag: {
    option(t) {
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: t.rows.map((r) => r.loaded) }, yAxis: { type: 'value', name: 'seconds' },
        series: [{ name: 'lag', type: 'line', data: t.rows.map((r) => (r.lag === '' ? null : num(r.lag))) }],
      };
    },
  },
  table_rows: {
    option(t) {
      const stages = [...new Set(t.rows.map((r) => r.stage))];
      const names = [...new Set(t.rows.map((r) => r.table))];
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'value' }, yAxis: { type: 'category', data: names },
        series: stages.map((s) => ({ name: s, type: 'bar', data: names.map((n) => { const r = t.rows.find((x) => x.stage === s && x.table === n); return r ? num(r.rows) : 0; }) })),
      };
    },
  },
  runs: {
    option(t) {
      return {
        ...base(), tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: t.rows.map((r) => '#' + r.run).reverse() }, yAxis: { type: 'value', name: 'seconds' },
        series: [{ name: 'duration', type: 'bar', data: t.rows.map((r) => ({ value: num(r.seconds), itemStyle: { color: r.outcome === 'success' ? '#1a7f37' : r.outcome === 'failure' ? '#cf222e' : '#8c959f' } })).reverse() }],
      };
    },
  },
  failures: countChart('stage', 'failures'),
  rejects: countChart('table', 'rejects'),
  alerts: countChart('kind', 'alerts'),
};
// countChart counts a table's rows by the value of field key.
function countChart(key, name) {
  return {
    option(t) {
      const counts = new Map();
      for (const r of t.rows) counts.set(r[key] || '—', (counts.get(r[key] || '—') || 0) + 1);
      return { ...base(), tooltip: { trigger: 'axis' }, xAxis: { type: 'category', data: [...counts.keys()] }, yAxis: { type: 'value', minInterval: 1 }, series: [{ name, type: 'bar', data: [...counts.values()] }] };
    },
  };
}
// T is a table of rows by column key, as the server sends its own.
const T = (columns, rows) => ({ columns: columns.map(([key, label, kind]) => ({ key, label, kind: kind || 'text' })), rows });
// deletedIn is how many source rows deleted run r's load carried into the
// warehouse (deletion versions and flagged dimension rows).
const deletedIn = (r) => Object.values(((r.stages || []).find((x) => x.stage === 'load') || {}).deleted || {}).reduce((a, n) => a + n, 0);
// runsIn counts the runs rows stand for: a row of quiet runs stands for
// r.coalesced of them.
const runsIn = (rows) => rows.reduce((a, r) => a + (r.coalesced || 1), 0);
// quietNote says what a row of runs that found nothing new stands for.
const quietNote = (r) => (!r.quiet ? '' : r.coalesced > 1 ? `${fmtInt(r.coalesced)} runs since ${stamp(r.first_started_at)} (from #${r.first_id})` : 'yes');
function renderPipeline(v) {
  const runs = v.runs;
  const stage = (r, s) => (r.stages || []).find((x) => x.stage === s) || {};
  const dur = (r) => (r.finished_at ? ((new Date(r.finished_at) - new Date(r.started_at)) / 1000).toFixed(2) : '');
  const byRun = [...runs].reverse();
  draw('stage_times', pipelineCharts.stage_times, T([['run', 'Run', 'int'], ['trigger', 'Trigger'], ['started', 'Started (UTC)'], ['outcome', 'Outcome'], ['extract', 'Extract s'], ['transform', 'Transform s'], ['load', 'Load s']],
    byRun.map((r) => ({ run: r.id, trigger: r.trigger, started: stamp(r.started_at), outcome: r.outcome || 'running', extract: secs(stage(r, 'extract').elapsed_ns), transform: secs(stage(r, 'transform').elapsed_ns), load: secs(stage(r, 'load').elapsed_ns) }))));
  draw('lag', pipelineCharts.lag, T([['batch', 'Batch'], ['loaded', 'Loaded (UTC)'], ['rows', 'Rows', 'int'], ['deleted', 'Deleted', 'int'], ['lag', 'Lag s']],
    v.loads.map((l) => ({ batch: l.batch, loaded: stamp(l.loaded_at), rows: l.rows, deleted: l.deleted, lag: l.lag_seconds === undefined || l.lag_seconds === null ? '' : l.lag_seconds.toFixed(1) }))));
  const moved = runs.find((r) => (r.stages || []).some((s) => s.rows > 0));
  const tr = [];
  if (moved) for (const s of moved.stages) for (const [name, n] of Object.entries(s.tables || {})) tr.push({ stage: s.stage, table: name, rows: n });
  draw('table_rows', pipelineCharts.table_rows, T([['stage', 'Stage'], ['table', 'Table'], ['rows', 'Rows', 'int']], tr));
  // A row of quiet runs (nothing new, coalesced by the history) shows its
  // newest run, and how many runs it stands for since when.
  draw('runs', pipelineCharts.runs, T([['run', 'Run', 'int'], ['trigger', 'Trigger'], ['started', 'Started (UTC)'], ['outcome', 'Outcome'], ['seconds', 'Seconds'], ['attempts', 'Attempts', 'int'], ['batches', 'Batches', 'int'], ['deleted', 'Deleted', 'int'], ['quiet', 'Nothing new'], ['error', 'Error']],
    runs.map((r) => ({ run: r.id, trigger: r.trigger, started: stamp(r.started_at), outcome: r.outcome || 'running', seconds: dur(r), attempts: r.attempts, batches: (r.batches || []).length, deleted: deletedIn(r), quiet: quietNote(r), error: r.error || '' }))));
  const failed = runs.filter((r) => r.error);
  draw('failures', pipelineCharts.failures, T([['run', 'Run', 'int'], ['started', 'Started (UTC)'], ['stage', 'Stage'], ['table', 'Table'], ['batch', 'Batch'], ['error', 'Error']],
    failed.map((r) => ({ run: r.id, started: stamp(r.started_at), stage: (r.where || {}).stage || '', table: (r.where || {}).table || '', batch: (r.where || {}).batch || '', error: r.error }))));
  draw('rejects', pipelineCharts.rejects, T([['id', 'Id', 'int'], ['table', 'Table'], ['source_id', 'Source id', 'int'], ['column', 'Column'], ['value', 'Value'], ['reason', 'Reason'], ['batch', 'Batch'], ['found', 'Found (UTC)'], ['resolved', 'Resolved by']],
    v.rejects.map((x) => ({ id: x.id, table: x.table, source_id: x.source_id, column: x.column || '', value: x.value ?? '', reason: x.reason, batch: x.batch, found: stamp(x.found_at), resolved: x.resolved_batch || '' }))));
  draw('alerts', pipelineCharts.alerts, T([['run', 'Run', 'int'], ['notifier', 'Notifier'], ['kind', 'Kind'], ['at', 'At (UTC)'], ['error', 'Delivery error']],
    v.alerts.map((a) => ({ run: a.run, notifier: a.notifier, kind: a.kind, at: stamp(a.at), error: a.error || '' }))));
  const box = $('#pkpis');
  box.replaceChildren();
  const lastRun = runs[0];
  const day = runs.filter((r) => Date.now() - new Date(r.started_at) < 86400e3);
  const open = v.rejects.filter((x) => !x.resolved_batch).length;
  const card = (label, value, note) => el('div', { class: 'kpi', role: 'group', 'aria-label': `${label}: ${value}` }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value), note ? el('div', { class: 'change' }, note) : null);
  box.append(
    card('Last run', lastRun ? `#${lastRun.id} ${lastRun.outcome || 'running'}` : 'none', lastRun ? stamp(lastRun.started_at) + ' UTC' : ''),
    card('Runs, last 24 h', `${fmtInt(runsIn(day.filter((r) => r.outcome === 'success')))} ok · ${fmtInt(runsIn(day.filter((r) => r.outcome === 'failure')))} failed`,
      `${fmtInt(day.filter((r) => (r.batches || []).length > 0).length)} moved data`),
    card('Lag now', v.freshness.as_of ? ago(v.freshness.lag_ns / 1e9) : '—', v.freshness.basis),
    card('Open rejects', fmtInt(open)),
    card('Deleted, last 24 h', fmtInt(day.reduce((a, r) => a + deletedIn(r), 0)), 'source rows deleted, carried as deletions'),
    card('Lake', v.lake ? `${(v.lake.bytes / 1048576).toFixed(1)} MiB` : '—', v.lake ? `${fmtInt(v.lake.objects)} objects` : 'no lake given'),
  );
  if (v.slot) { // logical capture: the replication slot, as tote serve last read it
    const s = v.slot;
    const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
    box.append(card(`Slot ${s.slot}`, s.problem ? s.problem.toUpperCase() : (s.wal_status || 'missing'),
      s.exists ? `lag ${mib(s.lag_bytes)} · holds ${mib(s.retained_bytes)} of WAL` + (s.safe_wal_bytes == null ? ' · unbounded' : ` · safe ${mib(s.safe_wal_bytes)}`) : 'no slot'));
  }
}
$('#run-now')?.addEventListener('click', async () => {
  const s = $('#run-status');
  s.textContent = 'asking…';
  try {
    const r = await fetch('/api/run', { method: 'POST', headers: { 'X-Requested-With': 'tote' } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    s.textContent = body.queued ? 'Run queued: it starts as soon as the current one ends.' : 'A run is already queued.';
  } catch (err) {
    s.textContent = 'Run now refused: ' + err.message;
  }
});

// ---- start ----------------------------------------------------------------------------------
async function start() {
  applyTheme();
  if (view === 'business' && window.echarts) {
    try {
      const world = await fetch('/static/vendor/world.json').then((r) => r.json());
      echarts.registerMap('world', world);
    } catch (err) {
      console.warn('world map unavailable', err);
    }
  }
  syncForm();
  connect();
  await refresh();
}
start();
