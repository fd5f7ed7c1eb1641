// Runs graphql-http's server audits (the GraphQL-over-HTTP spec) against a Meridian URL.
// Prints one line per audit that is not ok, then a JSON summary; exits 1 when a MUST fails.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node http-audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}

const summary = { ok: 0 };
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  if (result.status === 'ok') {
    summary.ok += 1;
  } else {
    const line = `${audit.id} ${audit.name}: ${result.reason}`;
    (summary[result.status] ??= []).push(line);
    console.log(`${result.status.toUpperCase()} ${line}`);
  }
}
console.log(JSON.stringify(summary));
process.exit(summary.error?.length ? 1 : 0);
