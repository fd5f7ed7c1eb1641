// Apollo Client 4 with its normalized InMemoryCache, over HTTP and graphql-ws, against a
// Meridian URL: the README's dashboard is watched from the cache, a `priceUpdated`
// subscription runs beside it, and ticks are ingested until the subscription delivers
// one. The watched dashboard must then show the new price with no second dashboard
// request. Prints one JSON line with the cache's keys, the prices seen and every warning.
//   node apollo-cache.mjs http://127.0.0.1:PORT/graphql ws://127.0.0.1:PORT/graphql/ws TOKEN
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, wsUrl, token] = process.argv.slice(2);
const warnings = [];
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => { warnings.push(args.map(String).join(' ')); original(...args); };
}
const fail = (message) => {
  console.log(JSON.stringify({ failed: message, warnings }));
  process.exit(1);
};
const deadline = setTimeout(() => fail('no priceUpdated event reached the cache in 30 s'), 30_000);

// Counts the dashboard requests that reach the network.
let dashboardFetches = 0;
const countingFetch = (input, init) => {
  if (String(init?.body ?? '').includes('"operationName":"Dashboard"')) dashboardFetches += 1;
  return fetch(input, init);
};
const authorization = { authorization: `Bearer ${token}` };
const http = new HttpLink({ uri: url, fetch: countingFetch, headers: authorization });
const ws = new GraphQLWsLink(createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: authorization,
  retryAttempts: 0,
}));
const link = ApolloLink.split(
  ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
  },
  ws,
  http,
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

const DASHBOARD = gql`query Dashboard {
  leaderboard(name: "volume", top: 10) {
    id size
    entries {
      rank score
      user {
        id username
        profile { displayName avatarUrl }
        portfolioValue
        holdings {
          id quantity costBasis value pnl
          asset { id symbol name metadata { tags } price { id price at source } }
        }
      }
    }
  }
}`;

// The price the watched dashboard shows for `symbol` (every holding of it agrees).
const shownPrices = (data, symbol) => new Set(
  data.leaderboard.entries.flatMap((entry) => entry.user?.holdings ?? [])
    .filter((holding) => holding.asset.symbol === symbol)
    .map((holding) => holding.asset.price?.price),
);

const watched = client.watchQuery({ query: DASHBOARD, fetchPolicy: 'cache-first' });
const results = [];
let onResult = () => {};
watched.subscribe({
  next: (result) => {
    if (result.data?.leaderboard) {
      results.push(result.data);
      onResult(result.data);
    }
  },
  error: (error) => fail(`dashboard: ${error.message}`),
});
const first = await new Promise((resolve) => { onResult = resolve; });
const holding = first.leaderboard.entries.flatMap((entry) => entry.user?.holdings ?? [])
  .find((h) => h.asset.price);
if (!holding) fail('no holding with a price on the dashboard');
const symbol = holding.asset.symbol;
const before = holding.asset.price.price;
const cacheKeys = Object.keys(client.cache.extract()).sort();

// The event's price differs from every price shown so far.
const target = Math.round(before * 1.37 * 100) / 100 + 0.01;
let event = null;
const updated = new Promise((resolve) => {
  onResult = (data) => {
    if (event && shownPrices(data, symbol).has(event.price)) resolve(data);
  };
});
client.subscribe({
  query: gql`subscription Prices($symbols: [String!]!) { priceUpdated(symbols: $symbols) { id symbol price at } }`,
  variables: { symbols: [symbol] },
}).subscribe({
  next: (result) => { event = event ?? result.data.priceUpdated; },
  error: (error) => fail(`subscription: ${error.message}`),
});

// The subscription starts asynchronously: ingest one tick at a time (each a little
// newer) until its event arrives.
const INGEST = gql`mutation Tick($ticks: [PriceTickInput!]!) { ingestPrices(ticks: $ticks) { accepted } }`;
for (let second = 1; !event; second += 1) {
  const at = new Date(Date.now() + second * 1000).toISOString();
  await client.mutate({ mutation: INGEST, variables: { ticks: [{ symbol, price: target, at }] } });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const after = await updated;
clearTimeout(deadline);
console.log(JSON.stringify({
  symbol,
  before,
  event,
  shown: [...shownPrices(after, symbol)],
  priceEntry: client.cache.extract()[`Price:${event.id}`] ?? null,
  cacheKeys,
  dashboardFetches,
  warnings,
}));
await client.clearStore();
process.exit(0);
