// Drives a raw websocket through a script of steps, for protocol checks the graphql-ws
// client would never do. Prints one JSON line per received message ({"message": ...}),
// {"close": code, "reason": ...} when the server closes, {"opened": true} on connect.
//   node ws-script.mjs URL PROTOCOL STEPS_JSON
// Steps: {"send": object-or-string}, {"wait": "type"} (until a message of that type).
// After the last step the socket stays open until the server closes it or the script is
// killed.
import WebSocket from 'ws';

const [url, protocol, stepsText] = process.argv.slice(2);
const steps = JSON.parse(stepsText);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');
// WS_AUTHORIZATION, when set, is sent as the upgrade request's Authorization header.
const headers = process.env.WS_AUTHORIZATION ? { Authorization: process.env.WS_AUTHORIZATION } : {};
const socket = new WebSocket(url, protocol, { headers });
const waiting = [];

socket.on('message', (data) => {
  let message;
  try { message = JSON.parse(data.toString()); } catch { message = data.toString(); }
  print({ message });
  for (const w of waiting.splice(0)) {
    if (message?.type === w.type) w.resolve(); else waiting.push(w);
  }
});
socket.on('close', (code, reason) => {
  print({ close: code, reason: reason.toString() });
  process.exit(0);
});
socket.on('error', (error) => {
  print({ error: String(error?.message ?? error) });
  process.exit(1);
});
socket.on('open', async () => {
  print({ opened: true });
  for (const step of steps) {
    if (step.send !== undefined) {
      socket.send(typeof step.send === 'string' ? step.send : JSON.stringify(step.send));
    } else if (step.wait) {
      await new Promise((resolve) => waiting.push({ type: step.wait, resolve }));
    }
  }
});
