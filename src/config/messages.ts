/**
 * How problem and warning messages quote what they received (`show`) and
 * propose the name that was probably meant (`closest`). Used by config/
 * (file keys, value checks) and by cli/args.ts (flags); pure functions, no state.
 */

/** A received value as messages print it: JSON (strings quoted), `nothing` for undefined. */
export function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (v === undefined) return 'nothing'
  return JSON.stringify(v) ?? String(v)
}

/** Levenshtein distance: insertions, deletions and substitutions, each costing 1. */
export function editDistance (a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
  }
  return dp[a.length]![b.length]!
}

/**
 * The name in `names` nearest to `word`, if it is at most 2 edits away (one
 * typo, or a swapped pair of letters; further away the guess is more often
 * wrong than right); on a tie the earlier name wins. null when none is close.
 */
export function closest (word: string, names: Iterable<string>): string | null {
  let best: string | null = null
  let bestD = 3
  for (const n of names) {
    const d = editDistance(word, n)
    if (d < bestD) { bestD = d; best = n }
  }
  return best
}
