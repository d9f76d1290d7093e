/**
 * Transitions no outside action can cause, each with the reason. Keep it
 * short: an entry that a path does take fails the test (remove it then).
 */
export const EXCLUDED: Record<string, string> = {
  'loginAttempt: loginAttempt.open.reporting on xstate.after.finishGrace.loginAttempt.open.reporting #0':
    'both channels answer channel.finish at once (device: synchronously; browser: once the error page is written or the socket closed), so the 2 s grace only fires if the process stalls',
  'session: session on xstate.error.actor.call.* #0':
    'the backend-call effect catches every failure and resolves with it; only a bug in it rejects',
  'account: account.login.chatgptPending on xstate.done.actor.attempt #1':
    'the attempt refuses a forbidden workspace before saving with the same policy and account id, and the policy is fixed for the life of the process',
  'account: account.login.chatgptPending on xstate.error.actor.attempt #0':
    'the login attempt machine only fails if one of its own actions throws (a bug)',
};
