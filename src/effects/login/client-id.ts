/** Codex's OAuth client (SPEC §6.2); in its own module so start-up need not load the OAuth helpers. */
export const OAUTH_CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';
