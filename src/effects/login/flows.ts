/**
 * Everything the sign-in needs at run time, behind one dynamic import
 * (`actors.ts` loads it on the first login): the callback server, the issuer
 * calls, jose. Nothing here runs at start-up.
 */
export { openBrowserChannel, openDeviceChannel } from './channels.js';
export { exchangeApiKey, exchangeCode } from './token-endpoint.js';
export { buildChatgptRecord } from './auth-record.js';
export { refreshChatgptTokens } from './refresh.js';
