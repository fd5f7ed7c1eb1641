// graphql-codegen pointed at a live Meridian URL, as a newcomer would run it: introspects
// the schema and writes TypeScript types for it and for one operation. Prints one JSON
// line: whether it worked, and what the output declares.
//   node codegen.mjs http://127.0.0.1:PORT/graphql OUTPUT_DIR
import { generate } from '@graphql-codegen/cli';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [url, dir] = process.argv.slice(2);
const operation = join(dir, 'dashboard.graphql');
writeFileSync(operation, 'query Dashboard { leaderboard(name: "volume", top: 5) { entries { rank score user { id username } } } }\n');
try {
  const [output] = await generate({
    schema: url,
    documents: operation,
    generates: { [join(dir, 'types.ts')]: { plugins: ['typescript', 'typescript-operations'] } },
    silent: true,
  }, true);
  const text = output.content;
  console.log(JSON.stringify({
    ok: true,
    bytes: text.length,
    declares: ['export type Query', 'export type User', 'export type DashboardQuery', 'DateTime']
      .filter((needle) => text.includes(needle)),
  }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.message ?? err) }));
  process.exitCode = 1;
}
