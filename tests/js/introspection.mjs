// Sends graphql-js's own introspection query, with every option of graphql-js 16 on, to a
// Meridian URL without credentials, and builds a client schema from the answer, as
// GraphiQL, graphql-codegen and Apollo's tooling do. Prints one JSON line; exits 1 when
// the server refuses the query or the answer is not a usable schema.
import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

const url = process.argv[2];
if (!url) {
  console.error('usage: node introspection.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}
const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});
const response = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
  body: JSON.stringify({ query }),
});
const body = await response.json();
if (body.errors || !body.data) {
  console.log(JSON.stringify({ status: response.status, errors: body.errors }));
  process.exit(1);
}
const schema = buildClientSchema(body.data);
console.log(
  JSON.stringify({
    status: response.status,
    queryFields: Object.keys(schema.getQueryType().getFields()),
    dateTime: schema.getType('DateTime')?.description,
    description: schema.description,
    sdlBytes: printSchema(schema).length,
  }),
);
