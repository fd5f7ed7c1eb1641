// Subscribes with the graphql-ws client (graphql-transport-ws) and prints one JSON line
// per event: {"event":"ready"} once acknowledged, {"event":"next","payload":...},
// {"event":"error",...}, {"event":"complete"}. Exits after COUNT next events.
//   node subscribe.mjs ws://127.0.0.1:PORT/graphql/ws 'subscription { ... }' COUNT [connectionParamsJSON]
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, query, countText, params] = process.argv.slice(2);
const count = Number(countText ?? 1);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: params ? JSON.parse(params) : undefined,
  retryAttempts: 0,
  on: { connected: () => print({ event: 'ready' }) },
});

let seen = 0;
client.subscribe(
  { query },
  {
    next: (payload) => {
      print({ event: 'next', payload });
      seen += 1;
      if (seen >= count) {
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      print({ event: 'error', error: error?.message ?? String(error?.code ?? error) });
      process.exit(1);
    },
    complete: () => {
      print({ event: 'complete' });
      process.exit(0);
    },
  },
);
