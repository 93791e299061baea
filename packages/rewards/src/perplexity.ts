// perplexity source, supplied-logprob mode: exp(−NLL/τ) with NLL the mean token negative log-likelihood.
import { absent, type ComponentValue, failed, ok } from "./components.ts";

export const DEFAULT_PERPLEXITY_TAU = 1;

/**
 * exp(−NLL/τ) = exp(mean(logprobs)/τ). No logprobs → ABSENT (the reference-model mode fills it
 * later). A NaN or a positive log-probability (beyond 1e-6 of rounding) is an ERROR naming the token.
 */
export function perplexityComponent(
  logprobs: readonly number[] | undefined,
  tau = DEFAULT_PERPLEXITY_TAU,
): ComponentValue {
  if (!logprobs || logprobs.length === 0) return absent("no logprobs supplied");
  let sum = 0;
  for (let i = 0; i < logprobs.length; i++) {
    const lp = logprobs[i];
    if (Number.isNaN(lp) || lp > 1e-6) return failed(`logprobs[${i}] = ${lp} is not a log-probability`);
    sum += lp;
  }
  const nll = -sum / logprobs.length;
  return ok(Math.exp(-nll / tau));
}
