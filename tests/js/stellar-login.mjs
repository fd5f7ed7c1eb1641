// A Stellar farmer signs in the way a Stellar wallet does: the Stellar SDK's keypair
// (@stellar/stellar-base) signs the SEP-53 digest, sha256("Stellar Signed Message:\n" +
// message), as Freighter's signMessage and `stellar message sign` do (this SDK version has
// no message signer of its own): register (as the admin), ask for a challenge, sign it,
// log in, and read `me` with the session. Prints one JSON line.
//   node stellar-login.mjs http://127.0.0.1:PORT/graphql <admin bearer token>
import { createHash } from 'node:crypto';
import { Keypair } from '@stellar/stellar-base';

const [url, adminToken] = process.argv.slice(2);

async function graphql(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return response.json();
}

// A fixed seed, so the account id is the same on every run.
const keypair = Keypair.fromRawEd25519Seed(Buffer.alloc(32, 21));
const address = keypair.publicKey();
const sep53 = (message) => {
  const digest = createHash('sha256').update(Buffer.concat([Buffer.from('Stellar Signed Message:\n'), Buffer.from(message, 'utf8')])).digest();
  return keypair.sign(digest).toString('base64');
};

const registered = await graphql(
  'mutation($a: String!) { registerUser(input: { address: $a, username: "stellar_farmer", chain: STELLAR }) { id chain address } }',
  { a: address }, adminToken);
const challenge = await graphql('mutation($a: String!) { loginChallenge(address: $a) { message } }', { a: address });
const message = challenge.data.loginChallenge.message;
const signature = sep53(message);
const login = await graphql(
  'mutation($a: String!, $s: String!) { login(address: $a, signature: $s) { token user { id chain address } } }',
  { a: address, s: signature });
const token = login.data?.login?.token;
const me = token ? await graphql('{ me { id chain address } }', {}, token) : null;
// A signature over another message is refused.
const again = await graphql('mutation($a: String!) { loginChallenge(address: $a) { message } }', { a: address });
const forged = await graphql(
  'mutation($a: String!, $s: String!) { login(address: $a, signature: $s) { token } }',
  { a: address, s: sep53(`${again.data.loginChallenge.message}!`) });
console.log(JSON.stringify({
  address,
  registered,
  login: login.data?.login ?? login,
  me,
  forged: forged.errors?.map((e) => e.extensions?.code) ?? forged,
}));
