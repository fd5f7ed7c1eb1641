// Meridian's reference dashboard: everything it shows comes from the public schema.
// Queries go over HTTP to /graphql; live updates come over graphql-transport-ws from
// /graphql/ws (the vendored graphql-ws client). A token in the page's fragment
// (/dashboard#token=...) is sent as `Authorization: Bearer ...`, which the positions need.
'use strict';

const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth = token ? { Authorization: `Bearer ${token}` } : {};
const wsUrl = new URL('/graphql/ws', location.href);
wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
const ws = graphqlWs.createClient({ url: wsUrl.toString(), connectionParams: auth, lazy: false });

const $ = (selector) => document.querySelector(selector);
const fmt = (n, digits = 2) =>
  n == null ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits });
const text = (value) => document.createTextNode(String(value));

async function query(document, variables = {}) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ query: document, variables }),
  });
  return response.json();
}

function setStatus(state, label) {
  const status = $('#status');
  status.dataset.state = state;
  status.textContent = label;
}

function countUpdate() {
  const updates = $('#updates');
  const count = Number(updates.dataset.count) + 1;
  updates.dataset.count = String(count);
  updates.textContent = `${count} live update${count === 1 ? '' : 's'}`;
}

function sparkline(points) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 160 28');
  if (points.length > 1) {
    const min = Math.min(...points);
    const span = Math.max(...points) - min || 1;
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute(
      'points',
      points.map((p, i) => `${(i / (points.length - 1)) * 160},${26 - ((p - min) / span) * 24}`).join(' '),
    );
    svg.appendChild(line);
  }
  return svg;
}

// Prices: a row per asset, with its 24 h change and a sparkline of hourly closes.
async function loadPrices() {
  const to = new Date();
  const from = new Date(to.getTime() - 24 * 3600 * 1000);
  const { data, errors } = await query(
    `query Market($from: DateTime!, $to: DateTime!) {
      assets(first: 10) { edges { node {
        symbol name
        price { price at }
        stats24h { changePercent }
        candles(interval: HOUR, from: $from, to: $to) { close }
      } } }
    }`,
    { from: from.toISOString(), to: to.toISOString() },
  );
  if (!data) throw new Error(JSON.stringify(errors));
  const body = $('#prices tbody');
  body.replaceChildren();
  const symbols = [];
  for (const { node } of data.assets.edges) {
    symbols.push(node.symbol);
    const row = document.createElement('tr');
    row.dataset.symbol = node.symbol;
    const change = node.stats24h?.changePercent;
    const cells = [
      text(`${node.symbol} · ${node.name}`),
      text(fmt(node.price?.price, 4)),
      text(change == null ? '–' : `${change >= 0 ? '+' : ''}${fmt(change)} %`),
      sparkline(node.candles.map((c) => c.close)),
    ];
    for (const content of cells) {
      const cell = document.createElement('td');
      cell.appendChild(content);
      row.appendChild(cell);
    }
    row.children[1].className = 'price';
    if (change != null) row.children[2].className = change >= 0 ? 'up' : 'down';
    body.appendChild(row);
  }
  return symbols;
}

function showPrice({ symbol, price }) {
  const cell = document.querySelector(`#prices tr[data-symbol="${CSS.escape(symbol)}"] .price`);
  if (!cell) return;
  cell.textContent = fmt(price, 4);
  cell.classList.remove('flash');
  void cell.offsetWidth; // restart the animation
  cell.classList.add('flash');
  countUpdate();
}

function showBoard(board) {
  const list = $('#board');
  list.replaceChildren();
  for (const entry of board.entries) {
    const item = document.createElement('li');
    item.appendChild(text(`${entry.user?.username ?? 'unknown'} · ${fmt(entry.score)}`));
    list.appendChild(item);
  }
  return board.entries[0]?.user;
}

// Positions of the board's top trader: private, so they show only with a token that may
// see them (an admin's, or that trader's own).
async function loadPositions(trader) {
  const note = $('#positions-note');
  const body = $('#positions tbody');
  body.replaceChildren();
  if (!trader) return;
  $('#trader').textContent = trader.username;
  if (!token) {
    note.textContent = 'Positions are private: open this page as /dashboard#token=<token> (scripts/demo prints the link with an admin token).';
    return;
  }
  const { data, errors } = await query(
    `query Positions($id: ID!) { user(id: $id) { id portfolioValue holdings { quantity value pnl asset { symbol } } } }`,
    { id: trader.id },
  );
  const holdings = data?.user?.holdings;
  if (!holdings) {
    note.textContent = `Positions: ${errors?.[0]?.message ?? 'not available'}`;
    return;
  }
  note.textContent = `Portfolio value: ${fmt(data.user.portfolioValue)} USD`;
  for (const h of holdings) {
    const row = document.createElement('tr');
    for (const value of [h.asset.symbol, fmt(h.quantity, 6), fmt(h.value), fmt(h.pnl)]) {
      const cell = document.createElement('td');
      cell.appendChild(text(value));
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
}

function subscribe(document, variables, onData) {
  ws.subscribe(
    { query: document, variables },
    {
      next: ({ data, errors }) => (data ? onData(data) : setStatus('error', errors?.[0]?.message ?? 'error')),
      error: (err) => setStatus('error', `subscription failed: ${err?.message ?? err}`),
      complete: () => {},
    },
  );
}

async function main() {
  ws.on('connected', () => setStatus('live', 'live'));
  ws.on('closed', () => setStatus('connecting', 'reconnecting…'));
  const symbols = await loadPrices();
  if (symbols.length) {
    subscribe(
      'subscription Prices($symbols: [String!]!) { priceUpdated(symbols: $symbols) { symbol price at } }',
      { symbols },
      (data) => showPrice(data.priceUpdated),
    );
  }
  let first = true;
  subscribe(
    'subscription Board { leaderboardUpdated(name: "volume", top: 10) { name entries { rank score user { id username } } } }',
    {},
    (data) => {
      const top = showBoard(data.leaderboardUpdated);
      if (first) {
        first = false;
        loadPositions(top);
      } else {
        countUpdate();
      }
    },
  );
}

main().catch((err) => setStatus('error', String(err?.message ?? err)));
