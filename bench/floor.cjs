// The start-up floor: the least a Node process can do to answer `initialize`.
// Reads one line, prints a valid answer (SPEC §2 shape), exits when stdin closes.
// CommonJS and no requires, so it measures Node itself and nothing else.
'use strict';
let buffer = '';
let answered = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  if (answered) return; // only the first line is answered
  buffer += chunk;
  const nl = buffer.indexOf('\n');
  if (nl === -1) return;
  const request = JSON.parse(buffer.slice(0, nl));
  answered = true;
  const { name, version } = request.params.clientInfo;
  const result = {
    userAgent: `${name}/0.169.0 (Linux; x86_64) unknown (${name}; ${version})`,
    codexHome: process.env.CODEX_HOME,
    platformFamily: 'unix',
    platformOs: 'linux',
  };
  process.stdout.write(`${JSON.stringify({ id: request.id, result })}\n`);
});
process.stdin.on('end', () => process.exit(0));
