/** Pages the callback server serves to the browser. */

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const page = (title: string, body: string) =>
  `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:12vh auto;padding:0 1rem;color:#111}h1{font-size:1.4rem}p{line-height:1.5}</style>
</head>
<body>${body}</body>
</html>
`;

/** `GET /success` (SPEC §6.1: titled `Sign into Codex`). */
export const SUCCESS_PAGE = page(
  'Sign into Codex',
  '<h1>Signed in to Codex</h1><p>You may close this window and return to your application.</p>',
);

/** Answer to a callback that could not be completed; `message` is user text, never a secret. */
export function errorPage(message: string): string {
  return page(
    'Sign-in could not be completed',
    `<h1>Sign-in could not be completed</h1><p>${escapeHtml(message)}</p><p>Return to your application to try again.</p>`,
  );
}
