import * as z from 'zod/mini';

/**
 * The request the server sends to the client (SPEC §9.3): the host's
 * ChatGPT tokens were refused with a 401, so the server asks for new ones.
 */

/** Params of `account/chatgptAuthTokens/refresh`. */
export const ChatgptAuthTokensRefreshParamsSchema = z.object({
  reason: z.literal('unauthorized'),
  /** The workspace the refused tokens were for. */
  previousAccountId: z.nullable(z.string()),
});
export type ChatgptAuthTokensRefreshParams = z.infer<typeof ChatgptAuthTokensRefreshParamsSchema>;

/** The host's answer to `account/chatgptAuthTokens/refresh`. */
export const ChatgptAuthTokensRefreshResultSchema = z.object({
  accessToken: z.string(),
  chatgptAccountId: z.string(),
  chatgptPlanType: z.optional(z.nullable(z.string())),
});
