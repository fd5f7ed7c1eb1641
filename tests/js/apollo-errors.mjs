// Apollo Client 4 with its InMemoryCache, anonymous, against a Meridian URL: a query whose
// private field errors. With errorPolicy "all" Apollo keeps the partial data only when the
// errored field is present as null; a missing key makes it warn "Missing field" and drop
// the result. Prints one JSON line with what Apollo returned and every warning it logged.
//   node apollo-errors.mjs http://127.0.0.1:PORT/graphql
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';

const url = process.argv[2];
const warnings = [];
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => { warnings.push(args.map(String).join(' ')); original(...args); };
}
const client = new ApolloClient({ link: new HttpLink({ uri: url, fetch }), cache: new InMemoryCache() });
const result = await client.query({
  query: gql`query Board { me { username } users(first: 2) { edges { node { id username holdings { quantity } } } } }`,
  errorPolicy: 'all',
  fetchPolicy: 'network-only',
});
console.log(JSON.stringify({
  data: result.data ?? null,
  errors: (result.error?.errors ?? []).map((e) => ({ path: e.path, code: e.extensions?.code })),
  warnings,
}));
